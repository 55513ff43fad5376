"""A local stand-in for an API Gateway WebSocket API in front of the app's websocket Lambdas.

    python -m scripts.localcloud.websocket --host 127.0.0.1 --port 8391 --management-port 8392

- Browsers connect to `ws://HOST:PORT/?check_id=<uuid>` (what `WS_URL?check_id=` means on AWS)
  or to the seed's path form `ws://HOST:PORT/api/ws/checks/<uuid>`, which is mapped to the same
  `$connect` event (`queryStringParameters.check_id`).
- Each connection gets an id, and the app's handlers (app.py, imported in-process as the
  Lambda runtime would, with the stage's environment from .chalice/config.json) are invoked
  with API-Gateway-shaped events: `$connect` before the handshake completes (a non-2xx answer
  refuses the handshake with that status, as on AWS), `$default` per message, `$disconnect`.
- The `@connections` management API is served over plain HTTP on MANAGEMENT_PORT, with the
  status codes of AWS: POST `/@connections/{id}` sends (200), DELETE closes (204), GET describes
  (200); a connection that is gone is 410 (GoneException). Any stage prefix before
  `/@connections` is accepted. A DELETE may carry `X-Hc-Close-Code` (the emulator's extension;
  chalicelib/live.py sends it, AWS ignores it) for the close code; otherwise 1000.
- A client that never reads cannot block a POST: each connection has a bounded send queue, and
  the POST that would overflow it closes the connection and answers 410.

The app is told its management endpoint with HC_WS_MANAGEMENT_URL (set here unless given).
Self-contained: it needs only the app and the `websockets` library.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib
import json
import logging
import os
import re
import secrets
import socket
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

log = logging.getLogger("websocket-emulator")

ROOT = Path(__file__).resolve().parents[2]
PATH_FORM = re.compile(r"^/api/ws/checks/(?P<check_id>[^/?]+)/?$")
MANAGEMENT_PATH = re.compile(r"^(?:/[^@]*)?/@connections/(?P<id>[^/?]+)$")
API_ID = "local"
CLOSE_CODE_HEADER = "X-Hc-Close-Code"
DEFAULT_MAX_QUEUED = 256
WORKERS = 16


def _now_ms() -> int:
    return int(time.time() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Connection:
    """One client socket and its bounded outgoing queue (messages and, last, a close)."""

    id: str
    ws: ServerConnection
    source_ip: str
    user_agent: str
    max_queued: int
    connected_at: int = field(default_factory=_now_ms)
    last_active_at: int = field(default_factory=_now_ms)
    outbox: asyncio.Queue = field(default_factory=asyncio.Queue)
    queued: int = 0
    closing: bool = False


class App:
    """The app's websocket handlers, resolved from their handler strings as Lambda would."""

    def __init__(self, app_dir: Path, stage: str):
        self.stage = stage
        _apply_stage_environment(app_dir, stage)
        sys.path.insert(0, str(app_dir))
        module = importlib.import_module("app")
        self.handlers = {
            route: getattr(module, config.handler_string.rsplit(".", 1)[-1])
            for route, config in module.app.websocket_handlers.items()
        }

    def invoke(self, route: str, event: dict) -> dict:
        handler = self.handlers.get(route)
        if handler is None:
            return {"statusCode": 200}
        try:
            return handler(event, None) or {"statusCode": 200}
        except Exception:
            log.exception("handler for %s raised", route)
            return {"statusCode": 500}


def _apply_stage_environment(app_dir: Path, stage: str) -> None:
    """The stage's environment_variables from .chalice/config.json, as `chalice local` sets them."""
    path = app_dir / ".chalice" / "config.json"
    if not path.is_file():
        return
    config = json.loads(path.read_text())
    env = dict(config.get("environment_variables") or {})
    env.update((config.get("stages", {}).get(stage) or {}).get("environment_variables") or {})
    os.environ.update({k: str(v) for k, v in env.items()})


class Emulator:
    """The WebSocket endpoint and the management endpoint, on one asyncio loop (plus a thread
    for the management HTTP server and a pool that runs the handlers)."""

    def __init__(
        self,
        app: App,
        host: str,
        port: int,
        management_port: int,
        max_queued: int = DEFAULT_MAX_QUEUED,
        send_buffer: int | None = None,
    ):
        self.app = app
        self.host, self.port, self.management_port = host, port, management_port
        self.max_queued = max_queued
        self.send_buffer = send_buffer
        self.connections: dict[str, Connection] = {}
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="ws-lambda")
        self.loop: asyncio.AbstractEventLoop | None = None
        self.http: ThreadingHTTPServer | None = None

    # -- events (API Gateway's shapes)

    def _context(
        self, connection_id: str, route: str, event_type: str, connected_at: int, source_ip: str, user_agent: str
    ) -> dict:
        now = _now_ms()
        return {
            "routeKey": route,
            "eventType": event_type,
            "messageDirection": "IN",
            "connectionId": connection_id,
            "connectedAt": connected_at,
            "apiId": API_ID,
            "domainName": f"{self.host}:{self.port}",
            "stage": self.app.stage,
            "requestId": uuid.uuid4().hex,
            "extendedRequestId": uuid.uuid4().hex,
            "requestTimeEpoch": now,
            "requestTime": _iso(now),
            "identity": {"sourceIp": source_ip, "userAgent": user_agent},
        }

    def connect_event(self, connection_id: str, request: Request, source_ip: str) -> dict:
        headers = {k: v for k, v in request.headers.raw_items()}
        return {
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": query_parameters(request.path) or None,
            "isBase64Encoded": False,
            "requestContext": self._context(
                connection_id, "$connect", "CONNECT", _now_ms(), source_ip, headers.get("User-Agent", "")
            ),
        }

    def message_event(self, conn: Connection, body: str | bytes) -> dict:
        binary = isinstance(body, bytes)
        context = self._context(conn.id, "$default", "MESSAGE", conn.connected_at, conn.source_ip, conn.user_agent)
        context["messageId"] = secrets.token_urlsafe(9)
        return {
            "body": base64.b64encode(body).decode() if binary else body,
            "isBase64Encoded": binary,
            "requestContext": context,
        }

    def disconnect_event(self, conn: Connection, code: int | None, reason: str) -> dict:
        context = self._context(
            conn.id, "$disconnect", "DISCONNECT", conn.connected_at, conn.source_ip, conn.user_agent
        )
        context.update({"disconnectStatusCode": code, "disconnectReason": reason})
        return {"headers": {}, "isBase64Encoded": False, "requestContext": context}

    async def invoke(self, route: str, event: dict) -> dict:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.app.invoke, route, event)

    # -- the WebSocket side

    async def process_request(self, ws: ServerConnection, request: Request):
        """$connect runs before the handshake completes, so a refusal is an HTTP status, as on AWS."""
        connection_id = secrets.token_urlsafe(12)
        ws.hc_id = connection_id
        if self.send_buffer:
            ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)
        source_ip = (ws.remote_address or ("", 0))[0]
        reply = await self.invoke("$connect", self.connect_event(connection_id, request, source_ip))
        status = int(reply.get("statusCode") or 200)
        if not 200 <= status < 300:
            return ws.respond(HTTPStatus(status), str(reply.get("body") or HTTPStatus(status).phrase) + "\n")
        return None

    async def handle(self, ws: ServerConnection) -> None:
        conn = Connection(
            ws.hc_id, ws, (ws.remote_address or ("", 0))[0], ws.request.headers.get("User-Agent", ""), self.max_queued
        )
        self.connections[conn.id] = conn
        writer = asyncio.create_task(self._write(conn))
        try:
            async for body in ws:
                conn.last_active_at = _now_ms()
                await self.invoke("$default", self.message_event(conn, body))
        except ConnectionClosed:
            pass
        finally:
            self.connections.pop(conn.id, None)
            writer.cancel()
            await self.invoke("$disconnect", self.disconnect_event(conn, ws.close_code or 1006, ws.close_reason or ""))

    async def _write(self, conn: Connection) -> None:
        """Send queued messages in order; a close entry sends what came before it first."""
        try:
            while True:
                kind, payload = await conn.outbox.get()
                if kind == "close":
                    await conn.ws.close(*payload)
                    return
                conn.queued -= 1
                await conn.ws.send(payload)
        except ConnectionClosed:
            pass

    # -- the management side (called from the HTTP thread)

    def post(self, connection_id: str, data: bytes) -> int:
        return self._on_loop(self._post, connection_id, data)

    def delete(self, connection_id: str, code: int) -> int:
        return self._on_loop(self._delete, connection_id, code)

    def info(self, connection_id: str) -> dict | None:
        conn = self.connections.get(connection_id)
        if conn is None or conn.closing:
            return None
        return {
            "ConnectedAt": _iso(conn.connected_at),
            "LastActiveAt": _iso(conn.last_active_at),
            "Identity": {"SourceIp": conn.source_ip, "UserAgent": conn.user_agent},
        }

    def _on_loop(self, fn, *args) -> int:
        return asyncio.run_coroutine_threadsafe(fn(*args), self.loop).result(timeout=10)

    async def _post(self, connection_id: str, data: bytes) -> int:
        conn = self.connections.get(connection_id)
        if conn is None or conn.closing:
            return 410
        if conn.queued >= conn.max_queued:
            # The client stopped reading: drop it rather than let senders wait on it.
            log.warning("connection %s: %d messages unread; closing it", connection_id, conn.queued)
            conn.closing = True
            conn.ws.transport.abort()
            return 410
        try:
            text: str | bytes = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data
        conn.queued += 1
        conn.outbox.put_nowait(("message", text))
        return 200

    async def _delete(self, connection_id: str, code: int) -> int:
        conn = self.connections.get(connection_id)
        if conn is None or conn.closing:
            return 410
        conn.closing = True
        conn.outbox.put_nowait(("close", (code, "")))
        return 204

    # -- running

    async def serve_forever(self, ready: threading.Event | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self.http = ThreadingHTTPServer((self.host, self.management_port), _management_handler(self))
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, name="ws-management", daemon=True).start()
        async with serve(
            self.handle,
            self.host,
            self.port,
            process_request=self.process_request,
            compression=None,
            max_size=128 * 1024,
        ) as server:
            self._server = server
            print(
                f"websocket emulator: WS_URL=ws://{self.host}:{self.port} management={self.management_url()}",
                flush=True,
            )
            if ready is not None:
                ready.set()
            await server.serve_forever()

    def management_url(self) -> str:
        return f"http://{self.host}:{self.management_port}"

    def stop(self) -> None:
        if self.http is not None:
            self.http.shutdown()
        if self.loop is not None and getattr(self, "_server", None) is not None:
            self.loop.call_soon_threadsafe(self._server.close)


def query_parameters(path: str) -> dict[str, str]:
    """`?check_id=` as given, or the path form `/api/ws/checks/<id>` mapped onto it."""
    parts = urlsplit(path)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    match = PATH_FORM.match(parts.path)
    if match:
        params.setdefault("check_id", unquote(match["check_id"]))
    return params


def _management_handler(emulator: Emulator):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Each answer leaves in one segment, at once: headers and body buffered together (flushed
        # after every request) and no Nagle. Written in two sends, the body waited for the client's
        # delayed ACK, and every post_to_connection held the API's worker 44 ms.
        wbufsize = 64 * 1024
        disable_nagle_algorithm = True

        def log_message(self, fmt, *args):  # quiet: one line per request is noise here
            log.debug(fmt, *args)

        def _connection_id(self) -> str | None:
            match = MANAGEMENT_PATH.match(urlsplit(self.path).path)
            return unquote(match["id"]) if match else None

        def _answer(self, status: int, body: dict | None = None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            if status == 410:
                self.send_header("x-amzn-ErrorType", "GoneException")
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _gone(self, connection_id: str) -> None:
            self._answer(410, {"message": f"connection {connection_id} is gone"})

        def _route(self):
            connection_id = self._connection_id()
            if connection_id is None:
                self._answer(404, {"message": f"no route for {self.command} {self.path}"})
            return connection_id

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length)
            connection_id = self._route()
            if connection_id is None:
                return
            status = emulator.post(connection_id, data)
            self._answer(status) if status == 200 else self._gone(connection_id)

        def do_DELETE(self):
            connection_id = self._route()
            if connection_id is None:
                return
            try:
                code = int(self.headers.get(CLOSE_CODE_HEADER) or 1000)
            except ValueError:
                code = 1000
            status = emulator.delete(connection_id, code)
            self._answer(status) if status == 204 else self._gone(connection_id)

        def do_GET(self):
            connection_id = self._route()
            if connection_id is None:
                return
            info = emulator.info(connection_id)
            self._answer(200, info) if info is not None else self._gone(connection_id)

    return Handler


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.websocket",
        description="Local API Gateway WebSocket emulator: runs app.py's websocket handlers "
        "in-process and serves the @connections management API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="WebSocket port (WS_URL)")
    parser.add_argument(
        "--management-port",
        type=int,
        required=True,
        help="port of the @connections management API (HC_WS_MANAGEMENT_URL)",
    )
    parser.add_argument("--stage", default="local", help="Chalice stage whose environment to apply (local)")
    parser.add_argument("--app-dir", type=Path, default=ROOT, help="folder holding app.py and .chalice/")
    parser.add_argument(
        "--max-queued",
        type=int,
        default=DEFAULT_MAX_QUEUED,
        help="unsent messages per connection before it is closed (default %(default)s)",
    )
    parser.add_argument(
        "--send-buffer",
        type=int,
        default=None,
        help="SO_SNDBUF of each connection in bytes (default: the OS's autotuning, up to "
        "megabytes); small values make a client that stops reading show quickly",
    )
    return parser.parse_args(argv)


def build(args: argparse.Namespace) -> Emulator:
    """The emulator for parsed arguments; the app learns the management URL before it loads."""
    os.environ.setdefault("HC_WS_MANAGEMENT_URL", f"http://{args.host}:{args.management_port}")
    app = App(args.app_dir.resolve(), args.stage)
    return Emulator(app, args.host, args.port, args.management_port, args.max_queued, args.send_buffer)


def command(
    port: int,
    management_port: int,
    host: str = "127.0.0.1",
    stage: str = "local",
    python: str = sys.executable,
    **options: object,
) -> list[str]:
    """The argv that runs the emulator as its own process (for the local stack's launcher);
    `options` are further flags by name, e.g. max_queued=64."""
    argv = [
        python,
        "-m",
        "scripts.localcloud.websocket",
        "--host",
        host,
        "--port",
        str(port),
        "--management-port",
        str(management_port),
        "--stage",
        stage,
    ]
    for name, value in options.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv


def start(
    port: int,
    management_port: int,
    host: str = "127.0.0.1",
    stage: str = "local",
    timeout: float = 30,
    **options: object,
) -> Emulator:
    """Run the emulator in this process, on a background thread; returns once it listens.
    `emulator.stop()` ends it. (A separate process, see `command`, is what the stack uses.)"""
    argv = command(port, management_port, host, stage, **options)[3:]
    emulator = build(parse_args(argv))
    ready = threading.Event()
    threading.Thread(target=lambda: asyncio.run(emulator.serve_forever(ready)), name="ws-emulator", daemon=True).start()
    if not ready.wait(timeout):
        raise RuntimeError(f"the websocket emulator did not listen on {host}:{port} within {timeout:.0f} s")
    return emulator


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s websocket-emulator %(levelname)s %(message)s")
    args = parse_args(argv)
    emulator = build(args)
    with suppress(KeyboardInterrupt):
        asyncio.run(emulator.serve_forever())
    return 0


if __name__ == "__main__":
    sys.exit(main())
