"""HTTP/2 for the http check (options.http.http_version "2"): the `h2` state machine over the
TLS connection the hop already opened (http._TlsConn, on the agent's event loop), connected
to the approved address and timed phase by phase by http.py, so DNS, connect and TLS mean
what they mean for HTTP/1.1 and the connection goes nowhere else. Every wait is bounded by
the check's deadline, which http._fetch holds over the whole exchange (asyncio.timeout_at).

h2 is offered in ALPN next to http/1.1; when the server picks http/1.1 the hop goes on as
HTTP/1.1 (data.http_version says which was spoken). Plain http:// is always HTTP/1.1 (no
h2c). One request per connection, one stream, as the HTTP/1.1 path does.

ttfb is from the last request byte sent to the response's HEADERS frame (the server's
SETTINGS frame, which usually comes first, is not the response).
"""

from __future__ import annotations

import http.client
import time
from email.message import Message

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from .base import ms_since

READ_CHUNK = 64 * 1024


class HTTP2Error(http.client.HTTPException):
    """The server reset the stream or ended the connection (classified http_error)."""


async def exchange(conn, t, request, hop: dict, started: float, keep_body: bool, cap: int, reported) -> dict:
    """One request over `conn` (TLS, ALPN h2); fills `hop` as http._exchange does for HTTP/1.1."""
    timings = hop["timings"]
    h2conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    h2conn.initiate_connection()
    stream_id = h2conn.get_next_available_stream_id()
    h2conn.send_headers(stream_id, request.header_list(t, http2=True), end_stream=request.body is None)
    if request.body is not None:
        h2conn.send_data(stream_id, request.body, end_stream=True)
    await conn.sendall(h2conn.data_to_send())
    sent = time.monotonic()
    first_byte = None
    body = [] if keep_body and request.method != "HEAD" else None
    body_bytes, truncated, ended = 0, False, False
    while not ended:
        data = await conn.recv(READ_CHUNK)
        if not data:
            raise HTTP2Error("the server closed the connection before the response ended")
        try:
            events = h2conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            raise HTTP2Error(f"HTTP/2 protocol error: {exc}") from exc
        for event in events:
            if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                first_byte = time.monotonic()
                timings["ttfb"] = ms_since(sent, first_byte)
                _headers(hop, event.headers, reported)
            elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                h2conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
                room = cap - body_bytes
                if len(event.data) > room:
                    truncated = True
                body_bytes += min(len(event.data), room)
                if body is not None and room > 0:
                    body.append(event.data[:room])
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream_id:
                ended = True
            elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream_id:
                raise HTTP2Error(f"the server reset the stream (error code {event.error_code!s})")
            elif isinstance(event, h2.events.ConnectionTerminated):
                raise HTTP2Error(f"the server ended the connection (GOAWAY, error code {event.error_code!s})")
        pending = h2conn.data_to_send()
        if pending:
            await conn.sendall(pending)
        if truncated:
            break  # the cap is reached: as HTTP/1.1 does, stop reading
    if first_byte is None:
        raise HTTP2Error("the stream ended without a response")
    hop["body_bytes"] = body_bytes
    hop["body_truncated"] = truncated
    hop["body"] = b"".join(body) if body is not None else None
    timings["download"] = ms_since(first_byte)
    timings["total"] = ms_since(started)
    return hop


def _headers(hop: dict, headers, reported) -> None:
    message = Message()
    status = None
    for name, value in headers:
        if name == ":status":
            status = int(value)
        elif not name.startswith(":"):
            message[name] = value
    hop["status_code"] = status
    hop["reason"] = http.client.responses.get(status, "")
    hop["http_version"] = "HTTP/2"
    hop["headers"] = {name: message[name] for name in reported if name in message}
    hop["all_headers"] = message
