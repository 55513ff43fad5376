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
http_version 2 and ALPN h2 the exchange is http2.py's, over the same TLS connection; the
TLS view (full chain, OCSP stapling, hostname match) is tlsview.py's.

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

import asyncio
import http.client
import io
import os
import re
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
    connect_checked_async,
    ip_version_of,
    ms_since,
    resolve_checked_async,
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
    """Hands http.client.HTTPResponse the response head, already read, to parse."""

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


async def run(ctx: CheckContext) -> dict:
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
            hop = await _fetch(ctx, url, request, keep_body=expect.wants_body(opts.get("expect")))
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


async def _fetch(ctx: CheckContext, url: str, request: httpreq.Request, keep_body: bool = False) -> dict:
    """One request/response. Raises _HopError carrying the partial hop.

    Every wait is bounded by the check's deadline (asyncio.timeout_at): past it, the
    wait in progress is cancelled and the socket closed, whatever the server drips.
    """
    timings = {phase: None for phase in PHASES}
    hop: dict = {"url": url, "address": None, "timings": timings, "tls": None}
    where = {"phase": "dns"}
    started = time.monotonic()
    try:
        async with asyncio.timeout_at(ctx.deadline):
            await _exchange(ctx, url, request, keep_body, hop, where, started)
        return hop
    except _HopError:
        raise
    except Exception as exc:  # noqa: BLE001 - classified by the caller, with the hop so far
        timings["total"] = ms_since(started)
        raise _HopError(exc, hop, where["phase"]) from exc
    finally:
        conn = hop.pop("_conn", None)
        if conn is not None:
            conn.close()


async def _exchange(
    ctx: CheckContext, url: str, request: httpreq.Request, keep_body: bool, hop: dict, where: dict, started: float
) -> None:
    """The phases of one hop, recorded in `hop` as they happen; the connection in hop["_conn"]."""
    timings = hop["timings"]
    # The first URL is usually the target itself, parsed already (a parse is a good part of a probe's CPU).
    t = ctx.target if url == ctx.target.url else targets.parse_target(url, ctx.allow_private)
    https = t.scheme == "https"
    port = t.port or (443 if https else 80)
    addresses = await resolve_checked_async(ctx, t.host)
    timings["dns"] = ms_since(started)
    hop["address"] = addresses[0]

    where["phase"] = "connect"
    mark = time.monotonic()
    sock, address = await connect_checked_async(ctx, addresses, port)
    conn = _Conn(sock)
    hop["_conn"] = conn  # closed by _fetch whatever happens next
    timings["connect"] = ms_since(mark)
    hop["address"] = address

    if https:
        where["phase"] = "tls"
        conn = await _handshake(ctx, sock, t.host, hop)
        hop["_conn"] = conn

    where["phase"] = "request"
    keep = keep_body and request.method != "HEAD"
    if https and conn.sslobj.selected_alpn_protocol() == "h2":
        where["phase"] = "the HTTP/2 response"
        await http2.exchange(conn, t, request, hop, started, keep, BODY_CAP_BYTES, REPORTED_HEADERS)
        return
    await conn.sendall(request.http11(t, _request_target(t.path)))
    sent = time.monotonic()

    where["phase"] = "the first response byte"
    reader = _Reader(conn)
    if not await reader.fill():
        raise http.client.RemoteDisconnected("the server closed the connection without a response")
    first_byte = time.monotonic()
    timings["ttfb"] = ms_since(sent, first_byte)

    where["phase"] = "the response"
    response = http.client.HTTPResponse(_BufferedSock(io.BytesIO(await reader.read_head())), method=request.method)
    response.begin()
    hop["status_code"] = response.status
    hop["reason"] = response.reason
    hop["http_version"] = {9: "HTTP/0.9", 10: "HTTP/1.0", 11: "HTTP/1.1"}.get(response.version, str(response.version))
    # One pass over the head (each `name in headers` of email.message scans and lowercases them all).
    first: dict[str, str] = {}
    for name, value in response.headers.items():
        first.setdefault(name.lower(), value)
    hop["headers"] = {name: first[name] for name in REPORTED_HEADERS if name in first}
    hop["all_headers"] = response.headers  # for expect.headers; not reported as such

    reader.kept = [] if keep else None
    body_bytes, truncated = await _read_body(reader, response, request.method)
    hop["body"] = b"".join(reader.kept) if reader.kept is not None else None
    hop["body_bytes"] = body_bytes
    hop["body_truncated"] = truncated
    timings["download"] = ms_since(first_byte)
    timings["total"] = ms_since(started)


async def _read_body(reader: _Reader, response: http.client.HTTPResponse, method: str) -> tuple[int, bool]:
    """(bytes of the body, read and discarded up to BODY_CAP_BYTES; whether there was more).

    The framing is the one http.client parsed from the head: nothing for HEAD, 1xx,
    204 and 304 (length 0), chunked, a Content-Length, or everything until the close.
    """
    if method == "HEAD" or response.length == 0:
        return 0, False
    if response.chunked:
        return await reader.count_chunked(BODY_CAP_BYTES)
    return await reader.count(response.length, BODY_CAP_BYTES)


class _Conn:
    """A plain TCP connection on the event loop: what the TLS one offers, without TLS."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.loop = asyncio.get_running_loop()

    async def sendall(self, data: bytes) -> None:
        await self.loop.sock_sendall(self.sock, data)

    async def recv(self, size: int) -> bytes:
        return await self.loop.sock_recv(self.sock, size)

    def close(self) -> None:
        self.sock.close()


class _TlsConn(_Conn):
    """TLS over a non-blocking socket through memory BIOs (ssl.SSLObject).

    Not the event loop's own TLS transport: the SSLObject stays ours after a handshake
    that failed verification, so the certificates the server sent can still be read
    from it (tls_details), and the handshake is a phase of its own.
    """

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, host: str):
        super().__init__(sock)
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.sslobj = context.wrap_bio(self._incoming, self._outgoing, server_hostname=host)

    async def _flush(self) -> None:
        data = self._outgoing.read()
        if data:
            await self.loop.sock_sendall(self.sock, data)

    async def _fill(self) -> None:
        data = await self.loop.sock_recv(self.sock, READ_CHUNK)
        if data:
            self._incoming.write(data)
        else:
            self._incoming.write_eof()

    async def handshake(self) -> None:
        while True:
            try:
                self.sslobj.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
        await self._flush()

    async def sendall(self, data: bytes) -> None:
        self.sslobj.write(data)
        await self._flush()

    async def recv(self, size: int) -> bytes:
        while True:
            try:
                return self.sslobj.read(size)
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""  # close_notify, or a close without it (as SSLSocket's suppress_ragged_eofs)


# As http.client: a line of the head longer than this, or more header lines, is an error.
_MAX_LINE = 65536
_MAX_HEADERS = 100
_CONTINUE = re.compile(rb"HTTP/1\.\d 100\b")


class _Reader:
    """Buffered reads of a response from a _Conn: lines of the head, then counted body bytes."""

    def __init__(self, conn: _Conn):
        self.conn = conn
        self.buf = bytearray()
        self.eof = False
        self.kept: list[bytes] | None = None  # the body bytes read, when expect looks at the body

    async def fill(self) -> bool:
        """One more recv into the buffer; False at the end of the stream."""
        if self.eof:
            return False
        data = await self.conn.recv(READ_CHUNK)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    async def readline(self, limit: int) -> bytes:
        """Up to and including b"\\n", at most `limit` bytes; less at the end of the stream."""
        scanned = 0
        while True:
            end = self.buf.find(b"\n", scanned, limit)
            if end >= 0:
                return self._take(end + 1)
            scanned = len(self.buf)
            if scanned >= limit or not await self.fill():
                return self._take(min(limit, len(self.buf)))

    def _take(self, n: int) -> bytes:
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def read_head(self) -> bytes:
        """The status line and headers (after any 100 Continue), for http.client to parse.

        Stops early at a line or a count http.client refuses, so that it raises its own
        error (LineTooLong, "got more than 100 headers") without us holding more.
        """
        head = bytearray()
        for _ in range(10):  # 100 Continue heads before the real one; more is absurd
            status = await self.readline(_MAX_LINE + 1)
            head += status
            if len(status) > _MAX_LINE or not status:
                return bytes(head)
            for _ in range(_MAX_HEADERS + 1):
                line = await self.readline(_MAX_LINE + 1)
                head += line
                if len(line) > _MAX_LINE or not line:
                    return bytes(head)
                if line in (b"\r\n", b"\n"):
                    break
            else:
                return bytes(head)  # too many headers
            if not _CONTINUE.match(status):
                return bytes(head)
        return bytes(head)

    async def _discard(self, n: int) -> int:
        """Read and drop up to n bytes (at least one unless at the end); how many."""
        if not self.buf and not await self.fill():
            return 0
        got = min(n, len(self.buf))
        if self.kept is not None:
            self.kept.append(bytes(self.buf[:got]))
        del self.buf[:got]
        return got

    async def count(self, length: int | None, cap: int) -> tuple[int, bool]:
        """A body of `length` bytes (None: until the close), read up to `cap`."""
        want = cap if length is None else min(length, cap)
        total = 0
        while total < want:
            got = await self._discard(want - total)
            if not got:
                return total, False  # closed early: as http.client's read1, a shorter body
            total += got
        if total >= cap and (length is None or length > cap):
            return total, bool(await self._discard(1))
        return total, False

    async def count_chunked(self, cap: int) -> tuple[int, bool]:
        """A chunked body's decoded size up to `cap`; IncompleteRead for a broken framing."""
        total = 0
        while True:
            line = await self.readline(_MAX_LINE + 1)
            if len(line) > _MAX_LINE:
                raise http.client.LineTooLong("chunk size")
            try:
                size = int(line.split(b";", 1)[0], 16)
            except ValueError:
                raise http.client.IncompleteRead(b"") from None
            if size == 0:
                return total, False  # trailers, if any, are not read: the connection closes anyway
            left = size
            while left:
                if total >= cap:
                    return total, True
                got = await self._discard(min(left, cap - total))
                if not got:
                    raise http.client.IncompleteRead(b"", left)
                left -= got
                total += got
            if (await self.readline(_MAX_LINE + 1)).strip():
                raise http.client.IncompleteRead(b"")


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


async def _handshake(ctx: CheckContext, sock: socket.socket, host: str, hop: dict) -> _TlsConn:
    """TLS over `sock`, the hop's only connection; returns the TLS connection. Fills hop["tls"] and timings.tls.

    See the module docstring for why verification happens in this handshake.
    """
    verify = bool(ctx.options["verify_tls"])
    alpn = ("h2", "http/1.1") if ctx.options.get("http_version") == "2" else ("http/1.1",)
    conn = _TlsConn(sock, _tls_context(verify, alpn), host)
    hop["_conn"] = conn
    # the SSLObject wraps the same _ssl._SSLSocket an SSLSocket does (sslobj._sslobj): tlsview reaches its SSL*
    ocsp_asked = bool(ctx.options.get("ocsp")) and tlsview.request_ocsp(conn.sslobj, host)
    mark = time.monotonic()
    try:
        await conn.handshake()
    except ssl.SSLCertVerificationError as exc:
        hop["timings"]["tls"] = ms_since(mark)
        verify_error = exc.verify_message or exc.reason or str(exc)
        hop["tls"] = tls_details(conn.sslobj, verified=False, verify_error=verify_error)
        tlsview.extend(hop["tls"], conn.sslobj, peer_chain(conn.sslobj), host, ocsp_asked)
        raise CheckFailure("tls_error", f"certificate verification failed: {verify_error}") from exc
    hop["timings"]["tls"] = ms_since(mark)
    hop["tls"] = tls_details(conn.sslobj, verified=True if verify else None, verify_error=None)
    tlsview.extend(hop["tls"], conn.sslobj, peer_chain(conn.sslobj), host, ocsp_asked)
    return conn


def peer_chain(tls_sock: ssl.SSLSocket | ssl.SSLObject) -> list[bytes]:
    """The certificates the server sent (DER, leaf first), also after a handshake that failed verification."""
    if hasattr(tls_sock, "get_unverified_chain"):  # Python 3.13+
        chain = tls_sock.get_unverified_chain()
    else:  # 3.10-3.12: the same method, on the private _ssl object
        sslobj = getattr(tls_sock, "_sslobj", None)
        chain = sslobj.get_unverified_chain() if sslobj is not None else None
    return [c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER) for c in chain or ()]


def tls_details(tls_sock: ssl.SSLSocket | ssl.SSLObject, *, verified: bool | None, verify_error: str | None) -> dict:
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
