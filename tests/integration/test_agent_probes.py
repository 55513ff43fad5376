"""A real agent process (python -m agent) runs TCP ping and mtr tasks from the API, end to end:
it advertises mtr, and the results the API stores are what the local listener answered."""

from __future__ import annotations

import socket

import requests

from tests.integration.agent_harness import (  # noqa: F401 (pytest fixtures)
    create_check,
    db,
    start_agent,
    wait_online,
    wait_until,
)


def run(api_server, db, agent_id, agent, check_type, options):
    created = create_check(api_server, "127.0.0.1", check_type, agent_id, options)
    check_id = created["check_id"]
    wait_until(lambda: db.task_of(check_id)["status"] == "completed", "the task to complete", diagnostics=agent.tail)
    (result,) = requests.get(f"{api_server}/api/checks/{check_id}", timeout=10).json()["results"]
    return result


def test_agent_runs_tcp_ping_and_mtr_against_a_local_listener(start_agent, api_server, db):
    agent = start_agent("Frankfurt")
    row = wait_online(db, agent)
    agent_id = str(row["id"])
    (ours,) = [a for a in requests.get(f"{api_server}/api/agents", timeout=10).json()["items"] if a["id"] == agent_id]
    assert {"ping", "traceroute", "mtr"} <= set(ours["capabilities"])
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        ping = run(
            api_server, db, agent_id, agent, "ping", {"protocol": "tcp", "port": port, "count": 3, "interval": 0.2}
        )
        mtr = run(
            api_server, db, agent_id, agent, "mtr", {"protocol": "tcp", "port": port, "count": 2, "interval": 0.2}
        )
    assert ping["success"] is True, ping["error"]
    assert ping["data"]["replies"] == {"syn_ack": 3} and ping["data"]["port"] == port
    assert ping["data"]["packets_received"] == 3
    assert mtr["success"] is True, mtr["error"]
    (hop,) = mtr["data"]["hops"]  # loopback: the target is the first hop
    assert hop["address"] == "127.0.0.1" and hop["sent"] == hop["received"] == 2
    assert mtr["data"]["rtt_ms"] == hop["rtt_ms"]
