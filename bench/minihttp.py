"""A tiny asyncio HTTP/1.1 server protocol for the bench's own loopback servers (targets, stub API).

They must cost far less per request than what they serve, so they parse only what they need
(request line, Content-Length, Connection) and answer with prebuilt bytes. Not for anything else.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

# handler(method, path, body) -> (status, body bytes, keep_alive) or an awaitable of it
Handler = Callable[[str, str, bytes], "tuple[int, bytes] | Awaitable[tuple[int, bytes]]"]
REASONS = {200: "OK", 201: "Created", 404: "Not Found", 400: "Bad Request"}


def response(status: int, body: bytes, keep_alive: bool, content_type: str = "application/json") -> bytes:
    head = (
        f"HTTP/1.1 {status} {REASONS.get(status, 'OK')}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode() + body


def json_body(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class HttpProtocol(asyncio.Protocol):
    def __init__(self, handler: Handler):
        self.handler = handler
        self.buffer = b""
        self.transport = None
        self.busy = False

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes):
        self.buffer += data
        if not self.busy:
            self._next()

    def _next(self):
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].decode("latin-1").split("\r\n")
        method, path, version = (head[0].split(" ") + ["", "", ""])[:3]
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        if len(self.buffer) < end + 4 + length:
            return
        body = self.buffer[end + 4 : end + 4 + length]
        self.buffer = self.buffer[end + 4 + length :]
        keep_alive = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
        result = self.handler(method, path, body)
        if asyncio.iscoroutine(result):
            self.busy = True
            task = asyncio.ensure_future(result)
            task.add_done_callback(lambda t: self._answer(t.result(), keep_alive))
        else:
            self._answer(result, keep_alive)

    def _answer(self, result, keep_alive: bool):
        self.busy = False
        status, body = result[0], result[1]
        if len(result) > 2:
            keep_alive = keep_alive and result[2]
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(response(status, body, keep_alive))
        if keep_alive:
            if self.buffer:
                self._next()
        else:
            self.transport.close()

    def connection_lost(self, exc):
        self.transport = None


async def serve(handler: Handler, host: str, port: int) -> asyncio.AbstractServer:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: HttpProtocol(handler), host, port, backlog=4096, reuse_address=True)
