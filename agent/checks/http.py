"""http: fetch a URL and report each phase of it, hop by hop through redirects.

Why not `requests` (or urllib3): they hide the phases. A requests.Response
knows only `elapsed` (request sent until headers parsed); DNS, connect and
TLS happen inside urllib3's pool with no hook to time them, and they resolve
the host name themselves, so the address they connect to is not the one our
target policy approved (a DNS-rebinding hole). So each hop is done by hand:

    resolve (targets.resolve: policy applied to every address)
      -> socket connect to the approved address          (timings.connect)
      -> TLS handshake, SNI = the URL's host name        (timings.tls)
      -> hand-written HTTP/1.1 request, Connection: close
      -> first response byte (BufferedReader.peek)      (timings.ttfb)
      -> headers parsed by http.client.HTTPResponse, body read and discarded,
         capped at BODY_CAP_BYTES                        (timings.download)

The request itself (method, custom headers, basic auth, a small body, what follows a
redirect) is built by httpreq.py; `expect` assertions are evaluated by expect.py; with
http_version 2 and ALPN h2 the exchange is http2.py's, over the same socket; the TLS
view (full chain, OCSP stapling, hostname match) is tlsview.py's.

`timings_ms` at the top level is the sum over all hops, as Prometheus
blackbox_exporter reports it; each entry of `redirects` carries its own hop's
timings. `redirects` lists the responses that redirected, in order
(`[{url, status_code, location, timings_ms}]`); the last response is in
`final_url` / `status_code`.

Sockets use TCP_NODELAY, as curl does, so the request is not held back by
Nagle behind the unacknowledged end of the TLS handshake (it costs an RTT).

`hops` lists every request in order (the redirects and the last one), each
with its own `{url, status_code, address, ip_version, timings_ms}`, so a
timeline can show three connects as three; `scheme` and `port` are those of
the first request and `assumed` says which of them the target left open
(a bare host is https on 443: chalicelib/targets.py).

Each hop's `total` is its wall time from start to last byte: the phases plus
the little measured between them (building the request, parsing certificate
details), so it is never less than their sum. It agrees with curl's
`time_total` (tests/integration/test_check_http_tls.py compares them).

TLS: one TCP connection and one handshake per hop, whatever the outcome.
- verify_tls on (the default): OpenSSL verifies the chain and the host name
  *in the handshake*, against the system trust store (OpenSSL honours
  SSL_CERT_FILE / SSL_CERT_DIR), exactly as curl does, so our verdict and
  curl's agree. When verification fails the handshake is aborted, and the
  certificates the server sent are read from that same aborted handshake
  (`get_unverified_chain`: public in Python 3.13, a private method of the
  `_ssl` object since 3.10), so the result still carries their details. The
  check fails with `tls_error` and no request is sent.
- verify_tls off: the handshake is made with CERT_NONE and the request goes
  over it; `tls.verified` is null (not checked).
Why not handshake with CERT_NONE always and verify the chain afterwards with
`cryptography`'s X.509 verifier? It was tried: its WebPKI policy is stricter
than OpenSSL's (it refuses, for instance, a critical subjectAltName or
extendedKeyUsage, which private CAs such as trustme issue and curl accepts),
so its verdicts would differ from curl's and from browsers' for such
certificates; relaxing it extension by extension would be a verifier of our
own. The old way (verify, and on failure a second, unverified connection to
read the certificate) put two connections into one hop's `total`.
Certificates are parsed with `cryptography` (the stdlib returns nothing for
a certificate that did not verify).
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import time
from datetime import UTC, datetime
from urllib.parse import quote, urljoin

# At import, not in the first check's measured TLS phase (importing takes tens of ms).
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from chalicelib import protocol, targets

from . import expect, http2, httpreq, tlsview
from .base import (
    CheckContext,
    CheckFailure,
    classify,
    connect_checked,
    ip_version_of,
    ms_since,
    resolve_checked,
)

BODY_CAP_BYTES = 1 << 20
READ_CHUNK = 64 * 1024
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
REPORTED_HEADERS = (
    "server",
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "location",
    "cache-control",
    "date",
    "last-modified",
    "etag",
    "expires",
    "strict-transport-security",
    "alt-svc",
    "via",
    "x-powered-by",
)
PHASES = ("dns", "connect", "tls", "ttfb", "download", "total")


class _HopError(Exception):
    """An exception raised mid-hop, with what the hop measured until then."""

    def __init__(self, cause: BaseException, hop: dict, phase: str):
        super().__init__(str(cause))
        self.cause = cause
        self.hop = hop
        self.phase = phase


class _BufferedSock:
    """Hands http.client.HTTPResponse a reader that already holds the first byte."""

    def __init__(self, reader):
        self._reader = reader

    def makefile(self, *_args, **_kwargs):
        return self._reader


def initial_url(ctx: CheckContext) -> str:
    """The URL to fetch first: the target itself when it is a URL, else built from the options."""
    t = ctx.target
    if t.url:
        return t.url
    opts = ctx.options
    scheme, port, _ = targets.http_endpoint(t, opts)
    host = f"[{t.host}]" if ":" in t.host else t.host
    shown_port = "" if port == targets.DEFAULT_PORTS[scheme] else f":{port}"
    return f"{scheme}://{host}{shown_port}{opts['path']}"


def run(ctx: CheckContext) -> dict:
    opts = ctx.options
    request = httpreq.Request.from_options(opts)
    method = request.method
    low, high = opts["expected_status"]
    url = initial_url(ctx)
    redirects: list[dict] = []
    hops: list[dict] = []

    scheme, port, assumed = targets.http_endpoint(ctx.target, opts)

    def data_for(final: dict | None) -> dict:
        final = final or {}
        return {
            "method": method,
            "url": initial_url(ctx),
            "scheme": scheme,
            "port": port,
            "assumed": assumed,
            "final_url": final.get("url", url),
            "status_code": final.get("status_code"),
            "reason": final.get("reason"),
            "http_version": final.get("http_version"),
            "redirects": redirects,
            "timings_ms": _sum_timings(hops),
            "hops": [_hop_view(h) for h in hops],
            "tls": final.get("tls"),
            "headers": final.get("headers", {}),
            "body_bytes": final.get("body_bytes"),  # None: no response body was read
            "body_truncated": final.get("body_truncated", False),
            "address": final.get("address"),
            "request": request.view(),
        }

    while True:
        try:
            hop = _fetch(ctx, url, request, keep_body=expect.wants_body(opts.get("expect")))
        except _HopError as err:
            hops.append(err.hop)
            kind, message = classify(err.cause)
            if kind == "timeout" or ctx.expired:
                kind = "timeout"
                message = f"timed out after {ctx.timeout_s:g} s waiting for {err.phase}"
            elif kind not in ("blocked_target", "dns_failure"):
                message = f"{message} (during {err.phase})"
            raise CheckFailure(
                kind, f"{url}: {message}", data=data_for(err.hop), address=err.hop.get("address")
            ) from err.cause
        hops.append(hop)
        status = hop["status_code"]
        location = hop["headers"].get("location")
        if not (opts["follow_redirects"] and status in REDIRECT_STATUSES and location):
            break
        redirects.append({"url": url, "status_code": status, "location": location, "timings_ms": hop["timings"]})
        if len(redirects) > opts["max_redirects"]:
            raise CheckFailure(
                "http_error",
                f"stopped after {opts['max_redirects']} redirects (max_redirects)",
                data=data_for(hop),
                address=hop["address"],
            )
        next_url = urljoin(url, location)
        try:
            targets.parse_target(next_url, ctx.allow_private)  # literal check before any lookup
        except targets.BlockedTarget as exc:
            raise CheckFailure(
                "blocked_target",
                f"redirect to {next_url} refused: {exc.message}",
                data=data_for(hop),
                address=hop["address"],
            ) from exc
        except targets.TargetError as exc:
            raise CheckFailure(
                "http_error",
                f"redirect to an unusable URL {next_url!r}: {exc.message}",
                data=data_for(hop),
                address=hop["address"],
            ) from exc
        url = next_url
        request = request.after_redirect(status)

    data = data_for(hop)
    if opts.get("expect"):
        data["assertions"] = expect.evaluate(
            opts["expect"], status, hop.get("all_headers"), hop.get("body"), hop.get("body_truncated", False)
        )
        expect.check(data["assertions"], data, hop["address"])
    if not (opts.get("expect") or {}).get("status") and not low <= status <= high:
        raise CheckFailure(
            "http_error",
            f"status {status} {hop['reason']} is outside the expected {low}-{high}",
            data=data,
            address=hop["address"],
        )
    return protocol.result_envelope(True, ctx.elapsed_ms(), hop["address"], data)


def _hop_view(hop: dict) -> dict:
    return {
        "url": hop["url"],
        "status_code": hop.get("status_code"),
        "address": hop.get("address"),
        "ip_version": ip_version_of(hop.get("address")),
        "timings_ms": hop["timings"],
    }


def _sum_timings(hops: list[dict]) -> dict:
    out: dict = {phase: None for phase in PHASES}
    for hop in hops:
        for phase, value in hop.get("timings", {}).items():
            if value is not None:
                out[phase] = round((out[phase] or 0) + value, 3)
    return out


def _fetch(ctx: CheckContext, url: str, request: httpreq.Request, keep_body: bool = False) -> dict:
    """One request/response. Raises _HopError carrying the partial hop."""
    timings = {phase: None for phase in PHASES}
    hop: dict = {"url": url, "address": None, "timings": timings, "tls": None}
    phase = "dns"
    started = time.monotonic()
    sock = None
    try:
        t = targets.parse_target(url, ctx.allow_private)
        https = t.scheme == "https"
        port = t.port or (443 if https else 80)
        addresses = resolve_checked(ctx, t.host)
        timings["dns"] = ms_since(started)
        hop["address"] = addresses[0]

        phase = "connect"
        mark = time.monotonic()
        sock, address = connect_checked(ctx, addresses, port)
        timings["connect"] = ms_since(mark)
        hop["address"] = address

        if https:
            phase = "tls"
            sock = _handshake(ctx, sock, t.host, hop)

        phase = "request"
        if https and sock.selected_alpn_protocol() == "h2":
            phase = "the HTTP/2 response"
            keep = keep_body and request.method != "HEAD"
            return http2.exchange(ctx, sock, t, request, hop, started, keep, BODY_CAP_BYTES, REPORTED_HEADERS)
        sock.settimeout(ctx.remaining())
        sock.sendall(request.http11(t, _request_target(t.path)))
        sent = time.monotonic()

        phase = "the first response byte"
        reader = sock.makefile("rb")
        sock.settimeout(ctx.remaining())
        if not reader.peek(1):
            raise http.client.RemoteDisconnected("the server closed the connection without a response")
        first_byte = time.monotonic()
        timings["ttfb"] = ms_since(sent, first_byte)

        phase = "the response"
        response = http.client.HTTPResponse(_BufferedSock(reader), method=request.method)
        response.begin()
        hop["status_code"] = response.status
        hop["reason"] = response.reason
        hop["http_version"] = {9: "HTTP/0.9", 10: "HTTP/1.0", 11: "HTTP/1.1"}.get(
            response.version, str(response.version)
        )
        hop["headers"] = {name: response.headers[name] for name in REPORTED_HEADERS if name in response.headers}
        hop["all_headers"] = response.headers  # for expect.headers; not reported as such
        kept = [] if keep_body and request.method != "HEAD" else None

        body_bytes, truncated = 0, False
        while body_bytes < BODY_CAP_BYTES:
            sock.settimeout(ctx.remaining())
            # read1: at most one recv, so the deadline is checked between reads (the reaper
            # bounds the rest: headers, TLS records).
            chunk = response.read1(min(READ_CHUNK, BODY_CAP_BYTES - body_bytes))
            if not chunk:
                break
            body_bytes += len(chunk)
            if kept is not None:
                kept.append(chunk)
        if body_bytes >= BODY_CAP_BYTES:
            sock.settimeout(ctx.remaining())
            truncated = bool(response.read(1))
        hop["body_bytes"] = body_bytes
        hop["body"] = b"".join(kept) if kept is not None else None
        hop["body_truncated"] = truncated
        timings["download"] = ms_since(first_byte)
        timings["total"] = ms_since(started)
        return hop
    except _HopError:
        raise
    except Exception as exc:  # noqa: BLE001 - classified by the caller, with the hop so far
        timings["total"] = ms_since(started)
        raise _HopError(exc, hop, phase) from exc
    finally:
        if sock is not None:
            ctx.close(sock)


def _request_target(path: str) -> str:
    try:
        path.encode("ascii")
        return path
    except UnicodeEncodeError:
        return quote(path, safe="/?&=%:@!$'()*+,;~-._#[]")


_contexts: dict[tuple, ssl.SSLContext] = {}


def _tls_context(verify: bool, alpn: tuple[str, ...] = ("http/1.1",)) -> ssl.SSLContext:
    """A client context, made once: loading the system trust store takes tens of ms.

    Verifying contexts are kept per SSL_CERT_FILE/SSL_CERT_DIR setting, and per ALPN offer
    (http_version 2 offers h2 first).
    """
    key = (verify, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")) if verify else (False,)
    key += alpn
    context = _contexts.get(key)
    if context is None:
        if verify:
            context = ssl.create_default_context()
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(list(alpn))
        _contexts[key] = context
    return context


def _handshake(ctx: CheckContext, sock: socket.socket, host: str, hop: dict) -> ssl.SSLSocket:
    """TLS over `sock`, the hop's only connection; returns the TLS socket. Fills hop["tls"] and timings.tls.

    See the module docstring for why verification happens in this handshake.
    """
    verify = bool(ctx.options["verify_tls"])
    alpn = ("h2", "http/1.1") if ctx.options.get("http_version") == "2" else ("http/1.1",)
    context = _tls_context(verify, alpn)
    tls_sock = ctx.track(context.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False))
    hop["ocsp_asked"] = bool(ctx.options.get("ocsp")) and tlsview.request_ocsp(tls_sock, host)
    mark = time.monotonic()
    try:
        tls_sock.settimeout(ctx.remaining())
        tls_sock.do_handshake()
    except ssl.SSLCertVerificationError as exc:
        hop["timings"]["tls"] = ms_since(mark)
        verify_error = exc.verify_message or exc.reason or str(exc)
        hop["tls"] = tls_details(tls_sock, verified=False, verify_error=verify_error)
        tlsview.extend(hop["tls"], tls_sock, peer_chain(tls_sock), host, hop["ocsp_asked"])
        ctx.close(tls_sock)
        raise CheckFailure("tls_error", f"certificate verification failed: {verify_error}") from exc
    except BaseException:
        ctx.close(tls_sock)
        raise
    hop["timings"]["tls"] = ms_since(mark)
    hop["tls"] = tls_details(tls_sock, verified=True if verify else None, verify_error=None)
    tlsview.extend(hop["tls"], tls_sock, peer_chain(tls_sock), host, hop["ocsp_asked"])
    return tls_sock


def peer_chain(tls_sock: ssl.SSLSocket) -> list[bytes]:
    """The certificates the server sent (DER, leaf first), also after a handshake that failed verification."""
    if hasattr(tls_sock, "get_unverified_chain"):  # Python 3.13+
        chain = tls_sock.get_unverified_chain()
    else:  # 3.10-3.12: the same method, on the private _ssl object
        sslobj = getattr(tls_sock, "_sslobj", None)
        chain = sslobj.get_unverified_chain() if sslobj is not None else None
    return [c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER) for c in chain or ()]


def tls_details(tls_sock: ssl.SSLSocket, *, verified: bool | None, verify_error: str | None) -> dict:
    """What a user wants to compare across regions about the server's TLS. `verified` None: not checked."""
    cipher = tls_sock.cipher() or (None, None)
    info = {
        "version": tls_sock.version() or cipher[1],  # after a failed verification, only cipher() knows it
        "cipher": cipher[0],
        "alpn": tls_sock.selected_alpn_protocol(),
        "verified": verified,
        "verify_error": verify_error,
        "subject": None,
        "issuer": None,
        "not_before": None,
        "not_after": None,
        "days_left": None,
        "san": [],
        "serial": None,
        "fingerprint_sha256": None,
        "chain_length": 0,
    }
    chain = peer_chain(tls_sock)
    info["chain_length"] = len(chain)
    if not chain:
        return info
    cert = x509.load_der_x509_certificate(chain[0])
    not_after = cert.not_valid_after_utc
    try:
        san_ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        san = san_ext.get_values_for_type(x509.DNSName) + [
            str(ip) for ip in san_ext.get_values_for_type(x509.IPAddress)
        ]
    except x509.ExtensionNotFound:
        san = []
    info.update(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc.isoformat(),
        not_after=not_after.isoformat(),
        days_left=int((not_after - datetime.now(UTC)).total_seconds() // 86400),
        san=san,
        serial=format(cert.serial_number, "x"),
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(":").upper(),
    )
    return info
