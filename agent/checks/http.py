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

`timings_ms` at the top level is the sum over all hops, as Prometheus
blackbox_exporter reports it; each entry of `redirects` carries its own hop's
timings. `redirects` lists the responses that redirected, in order
(`[{url, status_code, location, timings_ms}]`); the last response is in
`final_url` / `status_code`.

Sockets use TCP_NODELAY, as curl does, so the request is not held back by
Nagle behind the unacknowledged end of the TLS handshake (it costs an RTT).

TLS: the handshake is first made with verification on (system trust store;
OpenSSL honours SSL_CERT_FILE). When the certificate does not verify we keep
the reason, then make a second, unverified handshake to the same address only
to read the certificate, so the result still carries its details. With
verify_tls on the check then fails with `tls_error` and no request is sent
over the unverified connection; with verify_tls off the request goes over it
and `tls.verified` says false; the hop's connect/tls timings are then those
of the second connection and `total` includes the first. Certificates are parsed with `cryptography`
(the stdlib returns nothing for an unverified peer's certificate).
"""
from __future__ import annotations

import http.client
import os
import socket
import ssl
import time
from datetime import datetime, timezone
from urllib.parse import quote, urljoin

from chalicelib import protocol, targets

from .base import USER_AGENT, CheckContext, CheckFailure, classify, connect_checked, ms_since, resolve_checked

BODY_CAP_BYTES = 1 << 20
READ_CHUNK = 64 * 1024
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
REPORTED_HEADERS = (
    "server", "content-type", "content-length", "content-encoding", "transfer-encoding",
    "location", "cache-control", "date", "last-modified", "etag", "expires",
    "strict-transport-security", "alt-svc", "via", "x-powered-by",
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
    host = f"[{t.host}]" if ":" in t.host else t.host
    port = opts.get("port") or t.port
    return f"{opts['scheme']}://{host}{f':{port}' if port else ''}{opts['path']}"


def run(ctx: CheckContext) -> dict:
    opts = ctx.options
    method = opts["method"]
    low, high = opts["expected_status"]
    url = initial_url(ctx)
    redirects: list[dict] = []
    hops: list[dict] = []

    def data_for(final: dict | None) -> dict:
        final = final or {}
        return {
            "method": method,
            "url": initial_url(ctx),
            "final_url": final.get("url", url),
            "status_code": final.get("status_code"),
            "reason": final.get("reason"),
            "http_version": final.get("http_version"),
            "redirects": redirects,
            "timings_ms": _sum_timings(hops),
            "tls": final.get("tls"),
            "headers": final.get("headers", {}),
            "body_bytes": final.get("body_bytes"),  # None: no response body was read
            "body_truncated": final.get("body_truncated", False),
            "address": final.get("address"),
        }

    while True:
        try:
            hop = _fetch(ctx, url, method)
        except _HopError as err:
            hops.append(err.hop)
            kind, message = classify(err.cause)
            if kind == "timeout":
                message = f"timed out after {ctx.timeout_s:g} s waiting for {err.phase}"
            elif kind not in ("blocked_target", "dns_failure"):
                message = f"{message} (during {err.phase})"
            raise CheckFailure(kind, f"{url}: {message}", data=data_for(err.hop),
                               address=err.hop.get("address")) from err.cause
        hops.append(hop)
        status = hop["status_code"]
        location = hop["headers"].get("location")
        if not (opts["follow_redirects"] and status in REDIRECT_STATUSES and location):
            break
        redirects.append({"url": url, "status_code": status, "location": location,
                          "timings_ms": hop["timings"]})
        if len(redirects) > opts["max_redirects"]:
            raise CheckFailure("http_error", f"stopped after {opts['max_redirects']} redirects (max_redirects)",
                               data=data_for(hop), address=hop["address"])
        next_url = urljoin(url, location)
        try:
            targets.parse_target(next_url, ctx.allow_private)  # literal check before any lookup
        except targets.BlockedTarget as exc:
            raise CheckFailure("blocked_target", f"redirect to {next_url} refused: {exc.message}",
                               data=data_for(hop), address=hop["address"]) from exc
        except targets.TargetError as exc:
            raise CheckFailure("http_error", f"redirect to an unusable URL {next_url!r}: {exc.message}",
                               data=data_for(hop), address=hop["address"]) from exc
        url = next_url

    data = data_for(hop)
    if not low <= status <= high:
        raise CheckFailure("http_error", f"status {status} {hop['reason']} is outside the expected {low}-{high}",
                           data=data, address=hop["address"])
    return protocol.result_envelope(True, ctx.elapsed_ms(), hop["address"], data)


def _sum_timings(hops: list[dict]) -> dict:
    out: dict = {phase: None for phase in PHASES}
    for hop in hops:
        for phase, value in hop.get("timings", {}).items():
            if value is not None:
                out[phase] = round((out[phase] or 0) + value, 3)
    return out


def _fetch(ctx: CheckContext, url: str, method: str) -> dict:
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
            sock = _handshake(ctx, sock, t.host, address, port, hop)

        phase = "request"
        host_header = f"[{t.host}]" if ":" in t.host else t.host
        if t.port and t.port != (443 if https else 80):
            host_header += f":{t.port}"
        request = (
            f"{method} {_request_target(t.path)} HTTP/1.1\r\n"
            f"Host: {host_header}\r\n"
            f"User-Agent: {USER_AGENT}\r\n"
            "Accept: */*\r\n"
            "Accept-Encoding: identity\r\n"
            "Connection: close\r\n\r\n"
        )
        sock.settimeout(ctx.remaining())
        sock.sendall(request.encode("ascii"))
        sent = time.monotonic()

        phase = "the first response byte"
        reader = sock.makefile("rb")
        sock.settimeout(ctx.remaining())
        if not reader.peek(1):
            raise http.client.RemoteDisconnected("the server closed the connection without a response")
        first_byte = time.monotonic()
        timings["ttfb"] = ms_since(sent, first_byte)

        phase = "the response"
        response = http.client.HTTPResponse(_BufferedSock(reader), method=method)
        response.begin()
        hop["status_code"] = response.status
        hop["reason"] = response.reason
        hop["http_version"] = {9: "HTTP/0.9", 10: "HTTP/1.0", 11: "HTTP/1.1"}.get(response.version, str(response.version))
        hop["headers"] = {name: response.headers[name] for name in REPORTED_HEADERS if name in response.headers}

        body_bytes, truncated = 0, False
        while body_bytes < BODY_CAP_BYTES:
            sock.settimeout(ctx.remaining())
            chunk = response.read(min(READ_CHUNK, BODY_CAP_BYTES - body_bytes))
            if not chunk:
                break
            body_bytes += len(chunk)
        if body_bytes >= BODY_CAP_BYTES:
            sock.settimeout(ctx.remaining())
            truncated = bool(response.read(1))
        hop["body_bytes"] = body_bytes
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
            sock.close()


def _request_target(path: str) -> str:
    try:
        path.encode("ascii")
        return path
    except UnicodeEncodeError:
        return quote(path, safe="/?&=%:@!$'()*+,;~-._#[]")


_contexts: dict[tuple, ssl.SSLContext] = {}


def _verifying_context() -> ssl.SSLContext:
    """The system trust store, loaded once (it takes tens of ms) per SSL_CERT_FILE/DIR setting."""
    key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    context = _contexts.get(key)
    if context is None:
        context = ssl.create_default_context()
        context.set_alpn_protocols(["http/1.1"])
        _contexts[key] = context
    return context


def _handshake(ctx: CheckContext, sock: socket.socket, host: str, address: str, port: int, hop: dict):
    """TLS over `sock`; returns the TLS socket. Fills hop["tls"] and timings.tls."""
    timings = hop["timings"]
    verifying = _verifying_context()
    mark = time.monotonic()
    try:
        sock.settimeout(ctx.remaining())
        tls_sock = verifying.wrap_socket(sock, server_hostname=host)
        timings["tls"] = ms_since(mark)
        hop["tls"] = tls_details(tls_sock, verified=True, verify_error=None)
        return tls_sock
    except ssl.SSLCertVerificationError as exc:
        timings["tls"] = ms_since(mark)
        verify_error = exc.verify_message or exc.reason or str(exc)
        sock.close()

    # Look at the certificate that failed, on a second, unverified connection.
    mark = time.monotonic()
    retry_sock, _ = connect_checked(ctx, [address], port)
    retry_connect_ms = ms_since(mark)
    unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    unverified.set_alpn_protocols(["http/1.1"])
    mark = time.monotonic()
    try:
        retry_sock.settimeout(ctx.remaining())
        tls_sock = unverified.wrap_socket(retry_sock, server_hostname=host)
    except Exception:
        retry_sock.close()
        raise
    retry_tls_ms = ms_since(mark)
    hop["tls"] = tls_details(tls_sock, verified=False, verify_error=verify_error)
    if ctx.options["verify_tls"]:
        tls_sock.close()
        raise CheckFailure("tls_error", f"certificate verification failed: {verify_error}")
    # Report the connection that carried the request; `total` still includes
    # the failed verified attempt.
    timings["connect"], timings["tls"] = retry_connect_ms, retry_tls_ms
    return tls_sock


def tls_details(tls_sock: ssl.SSLSocket, *, verified: bool, verify_error: str | None) -> dict:
    """What a user wants to compare across regions about the server's TLS."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    info = {
        "version": tls_sock.version(),
        "cipher": (tls_sock.cipher() or (None,))[0],
        "alpn": tls_sock.selected_alpn_protocol(),
        "verified": verified,
        "verify_error": verify_error,
        "subject": None, "issuer": None, "not_before": None, "not_after": None,
        "days_left": None, "san": [], "serial": None, "fingerprint_sha256": None,
    }
    der = tls_sock.getpeercert(binary_form=True)
    if not der:
        return info
    cert = x509.load_der_x509_certificate(der)
    not_after = cert.not_valid_after_utc
    try:
        san_ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        san = san_ext.get_values_for_type(x509.DNSName) + [str(ip) for ip in san_ext.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        san = []
    info.update(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc.isoformat(),
        not_after=not_after.isoformat(),
        days_left=int((not_after - datetime.now(timezone.utc)).total_seconds() // 86400),
        san=san,
        serial=format(cert.serial_number, "x"),
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(":").upper(),
    )
    return info
