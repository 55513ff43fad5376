"""The tcp check: connect time to an open port, refused on a closed one."""

from __future__ import annotations

import socket
from contextlib import suppress

from agent.checks import run_check


def test_open_port_reports_connect_time():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        result = run_check("tcp", "127.0.0.1", {"port": port}, allow_private=True)
    assert result["success"] is True, result["error"]
    assert result["address"] == "127.0.0.1"
    assert result["data"]["port"] == port
    assert 0 <= result["data"]["connect_ms"] <= result["duration_ms"]


def test_closed_port_is_refused():
    with socket.socket() as bound_not_listening:
        bound_not_listening.bind(("127.0.0.1", 0))
        port = bound_not_listening.getsockname()[1]
        result = run_check("tcp", "127.0.0.1", {"port": port}, allow_private=True)
    assert result["success"] is False
    assert result["error"]["kind"] == "refused"
    assert result["data"]["connect_ms"] is None and result["data"]["port"] == port


def test_port_comes_from_the_url_when_not_given():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        result = run_check("tcp", f"http://127.0.0.1:{port}/path", {}, allow_private=True)
    assert result["success"] is True and result["data"]["port"] == port


def test_unanswered_syn_is_a_timeout():
    # A listener with a full accept queue drops further SYNs: nothing answers.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = []
        try:
            for _ in range(2):  # backlog 0 still queues one; fill it for sure
                filler = socket.socket()
                filler.settimeout(0.5)
                with suppress(OSError):
                    filler.connect(("127.0.0.1", port))
                fillers.append(filler)
            result = run_check("tcp", "127.0.0.1", {"port": port, "timeout": 1}, allow_private=True)
        finally:
            for filler in fillers:
                filler.close()
    assert result["success"] is False
    assert result["error"]["kind"] == "timeout"
    assert 1000 <= result["duration_ms"] < 1500
