"""The agent's API client honours the proxy its environment names, read once at start.

Reading every *_proxy variable on each request (what requests with trust_env did) was, in the
bench's profile, the largest part of the agent's CPU per task. The client reads them once: a
proxy set at start is still used, one set later is not; no_proxy and all_proxy count as they
did for requests."""

from __future__ import annotations

import http.server
import threading

import pytest

from agent.api import ApiClient, environ_proxy


class _Proxy(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self):  # noqa: N802 - the stdlib's name
        type(self).seen.append(self.path)
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def proxy():
    _Proxy.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Proxy.seen
    server.shutdown()
    server.server_close()


def test_a_proxy_named_at_start_carries_the_requests(monkeypatch, proxy):
    url, seen = proxy
    monkeypatch.setenv("HTTP_PROXY", url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = ApiClient("http://api.hostchecker.invalid")
    client._request("GET", "/health", None, {})
    assert seen == ["http://api.hostchecker.invalid/health"]


def test_the_environment_is_read_once_not_per_request(monkeypatch, proxy):
    url, seen = proxy
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    client = ApiClient(url)  # the "API" is the loopback server itself, reached directly
    client._request("GET", "/first", None, {})
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    client._request("GET", "/second", None, {})
    assert seen == ["/first", "/second"]


@pytest.fixture
def clean_proxy_env(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def test_no_proxy_exempts_the_api_host(clean_proxy_env):
    clean_proxy_env.setenv("HTTPS_PROXY", "http://proxy.hostchecker.invalid:3128")
    clean_proxy_env.setenv("NO_PROXY", "internal.example,.api.hostchecker.invalid")
    assert environ_proxy("https://eu.api.hostchecker.invalid/") is None
    assert environ_proxy("https://other.hostchecker.invalid/") == "http://proxy.hostchecker.invalid:3128"


def test_all_proxy_serves_a_scheme_without_its_own(clean_proxy_env):
    clean_proxy_env.setenv("ALL_PROXY", "http://all.hostchecker.invalid:3128")
    clean_proxy_env.setenv("HTTP_PROXY", "http://plain.hostchecker.invalid:3128")
    assert environ_proxy("https://api.hostchecker.invalid/") == "http://all.hostchecker.invalid:3128"
    assert environ_proxy("http://api.hostchecker.invalid/") == "http://plain.hostchecker.invalid:3128"
