"""The emulator's own contract, in-process (`start`): the management API's status codes, and a
`$connect` that answers non-2xx refusing the handshake with that status, as API Gateway does."""

from __future__ import annotations

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from chalicelib import config
from scripts.localcloud.websocket import start
from tests.conftest import free_port


@pytest.fixture
def emulator(settings):
    emu = start(free_port(), free_port(), stage="test")
    yield emu
    emu.stop()


def test_management_api_answers_like_aws_for_unknown_connections_and_routes(emulator):
    base = emulator.management_url()
    for method in ("GET", "POST", "DELETE"):
        reply = requests.request(method, f"{base}/v1/@connections/nope", data=b"{}", timeout=5)
        assert reply.status_code == 410 and reply.headers["x-amzn-ErrorType"] == "GoneException", method
    assert requests.get(f"{base}/elsewhere", timeout=5).status_code == 404


def test_get_describes_an_open_connection(emulator, redis_client):
    with connect(f"ws://127.0.0.1:{emulator.port}/?check_id=0b7c3c36-8c0e-4a6b-9d55-3d2a3b1c0f00"):
        connection_id = next(iter(redis_client.smembers("hc:ws:check:0b7c3c36-8c0e-4a6b-9d55-3d2a3b1c0f00")))
        info = requests.get(f"{emulator.management_url()}/@connections/{connection_id}", timeout=5)
    assert info.status_code == 200
    assert set(info.json()) == {"ConnectedAt", "LastActiveAt", "Identity"}
    assert info.json()["Identity"]["SourceIp"] == "127.0.0.1"


def test_a_refused_connect_fails_the_handshake_with_its_status(emulator, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "")
    config.reset_settings()
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{emulator.port}/?check_id=0b7c3c36-8c0e-4a6b-9d55-3d2a3b1c0f00").close()
    assert refused.value.response.status_code == 503


def test_each_management_answer_arrives_in_one_segment_on_a_kept_alive_connection(emulator):
    """Headers and body written in two sends without TCP_NODELAY made the body wait for the
    client's delayed ACK: every post_to_connection held the API's worker 44 ms. Each answer now
    leaves whole, so it arrives in one recv(), request after request."""
    import socket
    from urllib.parse import urlsplit

    from tests.localcloud.test_gateway import read_response

    url = urlsplit(emulator.management_url())
    request = (
        f"POST {url.path}/@connections/nope HTTP/1.1\r\nHost: {url.hostname}\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    ).encode()
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        recvs = []
        for _ in range(20):
            sock.sendall(request)
            status, _, body, count = read_response(sock)
            assert status == 410 and b"gone" in body
            recvs.append(count)
    assert recvs == [1] * 20
