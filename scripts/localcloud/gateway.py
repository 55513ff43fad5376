"""The local API Gateway + Lambda stand-in for the REST API: several single-request worker processes.

In AWS every request reaches a Lambda instance that serves one request at a time, and there are many
instances. `chalice local` is one process (one interpreter lock), with a listen queue of 5 and no
TCP_NODELAY, so under load it drops connections and a reused keep-alive connection pays ~44 ms per
request (Nagle plus delayed ACK). This is closer to Lambda, built on gunicorn:

- **Workers are Lambda instances.** Each of `--workers` processes (default 2 x cores + 1) imports
  app.py once, with the stage's environment from .chalice/config.json as `chalice local --stage`
  applies it, and serves one request at a time: gunicorn's gthread worker with a single request
  thread. (Its sync worker would too, but it closes every connection after one response and blocks
  on a slow client; gthread adds keep-alive and a poller that holds idle and unfinished
  connections.) Chalice's own `LocalGateway` turns the HTTP request into the API Gateway proxy
  event and calls the app, so routing, CORS preflights and the event shape are chalice local's.
- **Connections wait in the kernel, not in a busy worker.** The listen backlog is deep (2048). A
  worker takes new connections only while its request thread is idle, so a new connection goes to
  an idle instance; only when one has waited STARVED_S (50 ms) with no worker going idle, because
  keep-alive clients keep every one busy, does a busy worker take it, so none waits without bound.
  Idle keep-alive connections wait in their worker's poller, not in its request thread (keep-alive
  without a thread per connection); their next request is served by that worker.
- **No Nagle stall.** Accepted sockets get TCP_NODELAY, and each response is corked while gunicorn
  writes its headers and body, so it leaves in one segment (for responses under one MSS).
- **Slow clients cost a file descriptor, not a worker.** A request reaches the request thread only
  once its head (and a body up to 256 KiB) has arrived; until then it waits in the poller, and one
  not complete within `--request-timeout` is answered 408 and closed (a connection that never sent
  a byte is just closed). What the thread still reads itself (a larger or chunked body) is bounded
  by the same deadline. The count of threads and processes does not grow with open connections.
- **Every error is JSON in the project's shape** (chalicelib/errors.py), never HTML or a
  traceback: malformed requests (400), `Content-Length: abc` (400), oversized request lines and
  headers (414, 431), bodies over API Gateway's 10 MiB (413), methods API Gateway does not route,
  such as TRACE and CONNECT (405), slow requests (408).

`python -m scripts.gateway --help`; stack.py starts it for `make run`/`make up` (HC_API_SERVER=chalice
starts `chalice local` instead), and tests/conftest.py's `api_server` fixture serves the tests with it.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import select
import selectors
import socket
import sys
import time
from contextlib import suppress
from functools import partial
from http import HTTPStatus
from pathlib import Path

from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.http import errors as http_errors
from gunicorn.workers.gthread import TConn, ThreadWorker

from scripts.localcloud.procs import ROOT

BACKLOG = 2048
KEEPALIVE_S = 75  # how long an idle keep-alive connection is kept (nginx's default; API Gateway's is longer)
REQUEST_TIMEOUT_S = 10.0  # from a request's first byte to its last, else 408
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
BUFFERED_BODY_BYTES = 256 * 1024  # bodies up to this size are read before a worker is committed
MAX_HEAD_BYTES = 64 * 1024  # past this without the end of the head, the parser judges it (414/431)
WORKER_CONNECTIONS = 1000  # open connections per worker (waiting, idle or in flight)
# A new connection that has waited this long in the listen queue is taken by a busy worker: no
# worker went idle to take it, as keep-alive clients that always have a request queued keep every
# worker busy (before this, such a connection waited for as long as they kept sending, and bench
# scenario 2's agents, whose result requests needed a new connection, stalled for the whole run).
STARVED_S = 0.05
# The methods an API Gateway REST API routes (ANY); anything else is 405 before the app.
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer"}
SERVER_LOG = logging.getLogger("gunicorn.error")


def default_workers() -> int:
    """2 x cores + 1: one instance computing per core while others wait on PostgreSQL or Redis."""
    return 2 * (os.cpu_count() or 1) + 1


def error_response(status: int, code: str, message: str, extra_headers: dict | None = None) -> bytes:
    """A complete HTTP/1.1 error response in the project's error shape; the connection closes after it."""
    body = json.dumps({"error": {"code": code, "message": message, "details": []}}).encode()
    reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body)), "Connection": "close"}
    headers.update(extra_headers or {})
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode("latin-1") + body


class RequestTimeout(Exception):
    """The client did not deliver its request within the deadline (408)."""


class PayloadTooLarge(Exception):
    """The body is over API Gateway's limit (413)."""


# gunicorn's parse errors -> (status, code, what); the message adds the parser's own words, naming the cause.
_PARSE_ERRORS = [
    (http_errors.LimitRequestLine, 414, "uri_too_long", "request line too long"),
    (http_errors.LimitRequestHeaders, 431, "headers_too_large", "request headers too large"),
    (http_errors.UnsupportedTransferCoding, 501, "not_implemented", "unsupported transfer coding"),
    (http_errors.ExpectationFailed, 417, "expectation_failed", "expectation failed"),
    (http_errors.ForbiddenProxyRequest, 403, "forbidden", "proxy request forbidden"),
    (http_errors.ParseException, 400, "bad_request", "malformed request"),
]


def classify(exc: BaseException) -> tuple[int, str, str]:
    """(status, code, message) for an exception gunicorn hands to handle_error."""
    if isinstance(exc, RequestTimeout):
        return 408, "request_timeout", str(exc)
    if isinstance(exc, PayloadTooLarge):
        return 413, "payload_too_large", str(exc)
    if isinstance(exc, (http_errors.InvalidResponseHeader, http_errors.InvalidResponseHeaderName)):
        return 500, "internal_error", "the response could not be sent"
    for kind, status, code, what in _PARSE_ERRORS:
        if isinstance(exc, kind):
            return status, code, f"{what}: {exc}" if str(exc) else what
    return 500, "internal_error", "internal error in the local gateway"


# --- the Lambda instance: the app behind Chalice's LocalGateway, as a WSGI callable ---------------


class LambdaInstance:
    """The Chalice app, imported once in this worker, invoked through `chalice.local.LocalGateway`."""

    def __init__(self, project_dir: Path, stage: str):
        from chalice.cli import validate_routes
        from chalice.local import LocalGateway

        from scripts.localcloud.scheduler import load_app

        # As `chalice local` does: app logging to stdout, the stage's environment, routes checked.
        logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
        app, config = load_app(project_dir, stage)
        validate_routes(app.routes)
        self.gateway = LocalGateway(app, config)

    def __call__(self, environ, start_response):
        from chalice.local import LocalGatewayException

        method = environ["REQUEST_METHOD"]
        if method not in METHODS:
            return self._error(start_response, 405, "method_not_allowed", f"{method} is not routed by the API")
        try:
            body = self._body(environ)
        except PayloadTooLarge as exc:
            return self._error(start_response, 413, "payload_too_large", str(exc))
        try:
            response = self.gateway.handle_request(method, self._path(environ), self._headers(environ), body)
        except LocalGatewayException as exc:
            return self._send(start_response, exc.CODE, dict(exc.headers), exc.body)
        headers = dict(response.get("headers") or {})
        headers.update(response.get("multiValueHeaders") or {})
        payload = response.get("body")
        if payload is not None and response.get("isBase64Encoded"):
            import base64

            payload = base64.b64decode(payload)
        return self._send(start_response, response["statusCode"], headers, payload)

    @staticmethod
    def _path(environ) -> str:
        """The request target as the client sent it (chalice local passes it undecoded, with the query)."""
        raw = environ.get("RAW_URI") or environ.get("PATH_INFO") or "/"
        if not raw.startswith("/"):  # absolute form: keep the path and query
            from urllib.parse import urlsplit

            parts = urlsplit(raw)
            raw = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return raw

    @staticmethod
    def _headers(environ) -> dict[str, str]:
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        for key, name in (("CONTENT_TYPE", "Content-Type"), ("CONTENT_LENGTH", "Content-Length")):
            if environ.get(key):
                headers[name] = environ[key]
        return headers

    @staticmethod
    def _body(environ) -> bytes | None:
        """The whole body (API Gateway buffers it too), at most MAX_BODY_BYTES; None when empty.

        Over the limit, the rest is read and dropped, so the client gets the 413 instead of a reset."""
        stream = environ["wsgi.input"]
        body = stream.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            while stream.read(1024 * 1024):
                pass
            raise PayloadTooLarge(f"the body is over the {MAX_BODY_BYTES} byte limit of API Gateway")
        return body or None

    @staticmethod
    def _send(start_response, status: int, headers: dict, body):
        if body is None:
            body = b""
        else:  # as chalice local: a body without a Content-Type is JSON
            body = body if isinstance(body, bytes) else body.encode("utf-8")
            headers.setdefault("Content-Type", "application/json")
        pairs = []
        for name, value in headers.items():
            if name.lower() in HOP_BY_HOP or name.lower() == "content-length":
                continue
            for item in value if isinstance(value, list) else [value]:
                pairs.append((name, str(item)))
        pairs.append(("Content-Length", str(len(body))))
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Unknown"
        start_response(f"{status} {reason}", pairs)
        return [body]

    def _error(self, start_response, status: int, code: str, message: str):
        body = json.dumps({"error": {"code": code, "message": message, "details": []}}).encode()
        headers = {"Content-Type": "application/json"}
        if status == 405:
            headers["Allow"] = ", ".join(METHODS)
        return self._send(start_response, status, headers, body)


# --- the worker: gunicorn's gthread with one request thread, buffering and deadlines --------------


class _DeadlineSocket:
    """What gunicorn's parser reads through: each recv waits only for what is left of the request's
    deadline, so a client trickling bytes cannot hold the request thread past it."""

    def __init__(self, conn: GatewayConn):
        self._conn = conn
        self._sock = conn.sock

    def recv(self, size: int) -> bytes:
        remaining = self._conn.deadline - time.monotonic()
        if remaining <= 0:
            raise RequestTimeout(f"the request was not received within {GatewayWorker.request_timeout_s:g} s")
        self._sock.settimeout(remaining)
        try:
            return self._sock.recv(size)
        except TimeoutError:
            raise RequestTimeout(f"the request was not received within {GatewayWorker.request_timeout_s:g} s") from None
        finally:
            self._sock.settimeout(None)

    def __getattr__(self, name):
        return getattr(self._sock, name)


class GatewayConn(TConn):
    """A client connection: what arrived before the request thread took it, and the request's deadline."""

    def __init__(self, cfg, sock, client, server):
        super().__init__(cfg, sock, client, server)
        self.received = bytearray()
        self.deadline = 0.0

    def init(self):
        """In the request thread: hand gunicorn's parser the bytes the poller buffered, and the deadline."""
        super().init()
        unreader = self.parser.unreader
        if not isinstance(getattr(unreader, "sock", None), _DeadlineSocket):
            unreader.sock = _DeadlineSocket(self)
        if self.received:
            unreader.unread(bytes(self.received))
            self.received.clear()

    def close(self, graceful=False):
        """gunicorn lingers up to 2 s for the client to close after a final response, on the worker's
        main thread; a short linger still lets the response arrive before any reset."""
        if graceful:
            self.sock.setblocking(True)
            util.close_graceful(self.sock, timeout=0.2)
        else:
            util.close(self.sock)


def request_buffered(data: bytes | bytearray) -> bool:
    """Whether enough of a request has arrived to commit the request thread: its head, and a body
    of a plain Content-Length up to BUFFERED_BODY_BYTES. An oversized or odd head goes to the parser
    at once: refusing it is its job (414, 431, 400), and it needs no more bytes to do so."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return len(data) > MAX_HEAD_BYTES
    length = None
    for line in bytes(data[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip()
        if name == b"expect":
            return True  # the client waits for "100 Continue" before its body: the parser sends it
        if name == b"content-length":
            if not value.isdigit() or length is not None:
                return True  # the parser refuses it
            length = int(value)
    return len(data) - end - 4 >= min(length or 0, BUFFERED_BODY_BYTES)


class _ExclusiveAcceptSelector(selectors.EpollSelector):
    """epoll with the listening sockets registered EPOLLEXCLUSIVE: a new connection wakes one idle
    worker, not every one (with 5 workers, waking all cost about 10% more CPU per small request).
    It uses EpollSelector's epoll object (`_selector`): selectors has no way to pass the flag."""

    def __init__(self, listeners):
        super().__init__()
        self._listeners = {listener.fileno() for listener in listeners}

    def register(self, fileobj, events, data=None):
        key = super().register(fileobj, events, data)
        if key.fd in self._listeners:  # EPOLLEXCLUSIVE is only allowed when adding, not modifying
            self._selector.unregister(key.fd)
            self._selector.register(key.fd, select.EPOLLIN | select.EPOLLEXCLUSIVE)
        return key


class GatewayWorker(ThreadWorker):
    """gunicorn's gthread worker with one request thread: one request at a time, like a Lambda instance."""

    request_timeout_s = REQUEST_TIMEOUT_S  # main() sets it from --request-timeout before the fork

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.in_flight = 0
        self._queued_since: float | None = None  # when this worker first saw a connection waiting

    def run(self):
        if hasattr(select, "EPOLLEXCLUSIVE"):
            self.poller.close()
            self.poller = _ExclusiveAcceptSelector(self.sockets)
        super().run()

    # Accepting: only while idle, so a waiting connection goes to an instance that can serve it, or
    # when one has waited STARVED_S for that. gthread's loop asks again on every turn (each event,
    # at least once a second), so a busy worker looks at the listen queue as often as it works.
    def set_accept_enabled(self, enabled):
        super().set_accept_enabled(enabled and self.alive and (self.in_flight == 0 or self._starved()))

    def _starved(self) -> bool:
        """A connection has waited in the listen queue STARVED_S or more while this worker was busy."""
        if not select.select(self.sockets, [], [], 0)[0]:
            self._queued_since = None
            return False
        now = time.monotonic()
        if self._queued_since is None:
            self._queued_since = now
        return now - self._queued_since >= STARVED_S

    def accept(self, listener):
        try:
            sock, addr = listener.accept()
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return
            raise
        self.nr_conns += 1
        self._queued_since = None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.await_request(GatewayConn(self.cfg, sock, addr, listener.getsockname()))

    def on_client_socket_readable(self, conn, client):
        """A kept-alive connection speaks again: buffer its request in the poller like a new one's."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self.await_request(conn)

    def await_request(self, conn: GatewayConn) -> None:
        conn.sock.setblocking(False)
        conn.timeout = conn.deadline = time.monotonic() + self.request_timeout_s
        self.pending_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_request_bytes, conn))
        self.on_request_bytes(conn, conn.sock)  # a kept-alive client may have sent it already

    def on_request_bytes(self, conn: GatewayConn, _sock) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._forget_pending(conn)
            self.nr_conns -= 1
            conn.close()
            return
        conn.received += data
        if request_buffered(conn.received):
            self._forget_pending(conn)
            conn.data_ready = True
            self.enqueue_req(conn)

    def _forget_pending(self, conn) -> None:
        self.poller.unregister(conn.sock)
        self.pending_conns.remove(conn)

    def murder_pending(self):
        """Connections whose request did not arrive in time: 408 if they started one, then closed."""
        if not self.alive:  # stopping: a connection that has not started a request has none to finish
            for conn in [conn for conn in self.pending_conns if not conn.received]:
                self._forget_pending(conn)
                self.nr_conns -= 1
                conn.close()
        now = time.monotonic()
        while self.pending_conns and self.pending_conns[0].timeout <= now:
            conn = self.pending_conns.popleft()
            with suppress(KeyError, ValueError, OSError):
                self.poller.unregister(conn.sock)
            if conn.received:
                message = f"the request was not received within {self.request_timeout_s:g} s"
                with suppress(OSError):
                    conn.sock.send(error_response(408, "request_timeout", message))
            self.nr_conns -= 1
            conn.close()

    # The request thread.
    def enqueue_req(self, conn):
        self.in_flight += 1
        self.set_accept_enabled(False)
        super().enqueue_req(conn)

    def finish_request(self, conn, fs):
        self.in_flight -= 1
        conn.deadline = time.monotonic() + self.request_timeout_s  # for a request already pipelined behind
        super().finish_request(conn, fs)

    def handle_request(self, req, conn):
        """Cork the socket while gunicorn writes headers and body, so they leave in one segment."""
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        try:
            return super().handle_request(req, conn)
        finally:
            with suppress(OSError):
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)

    def _keepalive_after(self, conn, keepalive):
        try:
            return super()._keepalive_after(conn, keepalive)
        except RequestTimeout:  # an unread body that did not arrive in time: the response is out; close
            return False

    def handle_error(self, req, client, addr, exc):
        """Every refusal in the project's JSON error shape, never gunicorn's HTML page."""
        status, code, message = classify(exc)
        peer = (addr or ("", -1))[0]
        if status >= 500:
            self.log.exception("error handling a request from %s", peer)
        else:
            self.log.warning("refused a request from %s: %s %s", peer, status, message)
        try:
            client.setblocking(False)
            client.send(error_response(status, code, message))
        except OSError:
            self.log.debug("could not send the error response")


# --- the server --------------------------------------------------------------------------------


class Gateway(BaseApplication):
    """gunicorn configured in code (no config file, no control socket shared between checkouts)."""

    def __init__(self, project_dir: Path, stage: str, options: dict):
        self.project_dir, self.stage, self.options = project_dir, stage, options
        super().__init__(prog="python -m scripts.gateway")

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return LambdaInstance(self.project_dir, self.stage)


def gunicorn_options(args) -> dict:
    return {
        "bind": [f"{args.host}:{args.port}"],
        "workers": args.workers,
        "worker_class": f"{__name__}.GatewayWorker",
        "threads": 1,
        "worker_connections": WORKER_CONNECTIONS,
        "backlog": args.backlog,
        "keepalive": args.keepalive,
        # API Gateway takes about 10 KB of request line and headers; gunicorn's line default (4094)
        # refused queries the API itself answers 400, naming the field.
        "limit_request_line": 8190,
        "timeout": 0,  # a request runs as long as it runs (the worker's main thread stays responsive)
        "graceful_timeout": 10,
        "control_socket_disable": True,  # its default path is per user, shared by every checkout
        "accesslog": "-" if args.access_log else None,
        "access_log_format": '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms pid=%(p)s',  # no headers: they hold tokens
        "errorlog": "-",
        "proc_name": f"hostchecker-api-{args.stage}",
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m scripts.gateway",
        description="Local stand-in for API Gateway + Lambda: gunicorn workers, each one Lambda instance "
        "(app.py imported once, one request at a time), around Chalice's LocalGateway.",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--stage", default="local", help="Chalice stage whose environment is applied (local)")
    p.add_argument("--project-dir", type=Path, default=ROOT, help="the Chalice project (holds app.py)")
    p.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("HC_API_WORKERS") or default_workers()),
        help=f"worker processes, each a Lambda instance (default: $HC_API_WORKERS or 2 x cores + 1 = "
        f"{default_workers()})",
    )
    p.add_argument("--backlog", type=int, default=BACKLOG, help=f"listen queue length ({BACKLOG})")
    p.add_argument("--keepalive", type=float, default=KEEPALIVE_S, help=f"idle keep-alive seconds ({KEEPALIVE_S})")
    p.add_argument(
        "--request-timeout",
        type=float,
        default=REQUEST_TIMEOUT_S,
        help=f"seconds for a client to deliver a whole request, else 408 ({REQUEST_TIMEOUT_S:g})",
    )
    p.add_argument("--no-access-log", dest="access_log", action="store_false", help="no line per request")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.workers < 1 or args.request_timeout <= 0:
        print("gateway: --workers must be >= 1 and --request-timeout > 0", file=sys.stderr)
        return 2
    if not (args.project_dir / "app.py").is_file():
        print(f"gateway: no app.py in {args.project_dir}", file=sys.stderr)
        return 2
    GatewayWorker.request_timeout_s = args.request_timeout  # the workers are forked from here
    Gateway(args.project_dir.resolve(), args.stage, gunicorn_options(args)).run()
    return 0


def command(port: int, host: str, stage: str, *, workers: int | None = None, python: str = sys.executable) -> list:
    """The argv that starts the gateway (for stack.py and the tests)."""
    argv = [python, "-m", "scripts.gateway", "--host", host, "--port", str(port), "--stage", stage]
    return argv + (["--workers", str(workers)] if workers else [])
