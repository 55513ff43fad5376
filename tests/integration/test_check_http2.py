"""http_version 2: the h2 state machine over the check's own TLS connection, against an h2
server (trustme certificate, ALPN h2) the test runs; and the fallback to HTTP/1.1 when a
server does not offer h2."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading

import h2.config
import h2.connection
import h2.events
import pytest
import trustme

from agent.checks import run_check
from scripts.localcloud.demosite import serve_http

BODY = b'{"status": "ok", "proto": "h2"}'


class H2Server:
    """Answers every stream with 200, a JSON body and a few headers; records each request."""

    def __init__(self, context: ssl.SSLContext):
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[dict] = []
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._connection, args=(sock,), daemon=True).start()

    def _connection(self, raw):
        with contextlib.suppress(OSError, ssl.SSLError), raw:
            sock = self.context.wrap_socket(raw, server_side=True)
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
            conn.initiate_connection()
            sock.sendall(conn.data_to_send())
            pending: dict[int, dict] = {}
            while True:
                data = sock.recv(65535)
                if not data:
                    return
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        pending[event.stream_id] = {"headers": dict(event.headers), "body": b""}
                    elif isinstance(event, h2.events.DataReceived):
                        pending[event.stream_id]["body"] += event.data
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        self.requests.append(pending.pop(event.stream_id))
                        conn.send_headers(
                            event.stream_id,
                            [
                                (":status", "200"),
                                ("content-type", "application/json"),
                                ("server", "h2-test"),
                                ("content-length", str(len(BODY))),
                            ],
                        )
                        conn.send_data(event.stream_id, BODY, end_stream=True)
                sock.sendall(conn.data_to_send())

    def stop(self):
        self.listener.close()


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    authority = trustme.CA()
    bundle = tmp_path_factory.mktemp("h2ca") / "ca.pem"
    bundle.write_bytes(authority.cert_pem.bytes())
    return authority, str(bundle)


@pytest.fixture()
def h2_server(ca, monkeypatch):
    authority, bundle = ca
    monkeypatch.setenv("SSL_CERT_FILE", bundle)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    context.set_alpn_protocols(["h2"])
    server = H2Server(context)
    yield server
    server.stop()


def test_http2_is_spoken_over_alpn_h2_with_every_phase_timed(h2_server):
    url = f"https://localhost:{h2_server.port}/api?x=1"
    result = run_check("http", url, {"http_version": "2"}, allow_private=True)
    assert result["success"] is True, result["error"]
    data = result["data"]
    assert data["http_version"] == "HTTP/2" and data["status_code"] == 200 and data["reason"] == "OK"
    assert data["tls"]["alpn"] == "h2"
    assert data["headers"]["server"] == "h2-test" and data["headers"]["content-type"] == "application/json"
    assert data["body_bytes"] == len(BODY)
    timings = data["timings_ms"]
    for phase in ("dns", "connect", "tls", "ttfb", "download", "total"):
        assert timings[phase] is not None and timings[phase] >= 0, phase
    assert (
        timings["dns"] + timings["connect"] + timings["tls"] + timings["ttfb"] + timings["download"] <= timings["total"]
    )
    assert result["address"] == "127.0.0.1" and h2_server.accepted == 1
    [request] = h2_server.requests
    headers = request["headers"]
    assert (headers[":method"], headers[":scheme"], headers[":path"]) == ("GET", "https", "/api?x=1")
    assert headers[":authority"] == f"localhost:{h2_server.port}"
    assert headers["user-agent"].startswith("HostChecker/")


def test_http2_carries_the_method_body_headers_auth_and_assertions(h2_server):
    url = f"https://localhost:{h2_server.port}/submit"
    options = {
        "http_version": "2",
        "method": "POST",
        "body": "a=1",
        "headers": {"X-Trace": "7", "Host": "vhost.example.com"},
        "auth": {"username": "ada", "password": "pw"},
        "expect": {"status": 200, "headers": {"server": "^h2-"}, "json": {"$.proto": "h2"}},
    }
    result = run_check("http", url, options, allow_private=True)
    assert result["success"] is True, result["error"]
    assert all(a["passed"] for a in result["data"]["assertions"])
    [request] = h2_server.requests
    assert request["body"] == b"a=1"
    headers = request["headers"]
    assert headers[":method"] == "POST" and headers[":authority"] == "vhost.example.com"
    assert headers["x-trace"] == "7" and headers["authorization"] == "Basic YWRhOnB3"
    assert headers["content-length"] == "3" and "host" not in headers


def test_a_failed_assertion_over_http2_is_assertion_failed(h2_server):
    url = f"https://localhost:{h2_server.port}/"
    result = run_check("http", url, {"http_version": "2", "expect": {"json": {"$.proto": "h3"}}}, allow_private=True)
    assert result["error"]["kind"] == "assertion_failed"
    assert result["error"]["message"] == "expect.json.$.proto: expected h3, saw h2"


def test_http_version_2_falls_back_to_http11_when_the_server_does_not_offer_h2(ca, monkeypatch):
    authority, bundle = ca
    monkeypatch.setenv("SSL_CERT_FILE", bundle)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("localhost").configure_cert(context)
    context.set_alpn_protocols(["http/1.1"])
    server = serve_http("127.0.0.1", 0, context)
    try:
        result = run_check(
            "http", f"https://localhost:{server.server_address[1]}/ok", {"http_version": "2"}, allow_private=True
        )
    finally:
        server.shutdown()
    assert result["success"] is True, result["error"]
    assert result["data"]["http_version"] == "HTTP/1.1" and result["data"]["tls"]["alpn"] == "http/1.1"
