"""A real agent process against the real API, Redis and PostgreSQL: it registers,
heartbeats, runs a check created through the API, and keeps its identity across restarts."""

from __future__ import annotations

import os
import signal
import stat

import requests

from agent.state import AgentState, save_state
from tests.integration.agent_harness import (
    create_check,
    db,  # noqa: F401 (pytest fixture)
    start_agent,  # noqa: F401 (pytest fixture)
    stream_pending,  # noqa: F401 (pytest fixture)
    tcp_listener,  # noqa: F401 (pytest fixture)
    wait_online,
    wait_until,
)


def test_agent_registers_heartbeats_and_completes_a_check(start_agent, api_server, db, tcp_listener, stream_pending):
    agent = start_agent("Frankfurt")
    row = wait_online(db, agent)

    state = agent.state()
    assert state == {
        "agent_id": str(row["id"]),
        "api_token": state["api_token"],
        "name": "Frankfurt",
        "api_url": api_server,
    }
    assert stat.S_IMODE(os.stat(agent.state_dir / "state.json").st_mode) == 0o600

    listed = requests.get(f"{api_server}/api/agents", timeout=10).json()["items"]
    (ours,) = [a for a in listed if a["name"] == "Frankfurt"]
    assert ours["status"] == "online"
    assert ours["id"] == state["agent_id"]
    assert "tcp" in ours["capabilities"] and ours["version"]

    created = create_check(api_server, "127.0.0.1", "tcp", state["agent_id"], {"port": tcp_listener.port})
    check_id = created["check_id"]
    wait_until(lambda: db.task_of(check_id)["status"] == "completed", "the task to complete", diagnostics=agent.tail)

    check = requests.get(f"{api_server}/api/checks/{check_id}", timeout=10).json()
    assert check["status"] == "completed"
    (result,) = check["results"]
    assert result["success"] is True, result
    assert result["agent"]["name"] == "Frankfurt"
    assert result["data"]["port"] == tcp_listener.port
    assert isinstance(result["data"]["connect_ms"], (int, float))
    wait_until(lambda: tcp_listener.accepted == 1, "the listener to count the check's connection")
    wait_until(lambda: stream_pending(state["agent_id"]) == 0, "the stream entry to be acknowledged")


def test_restart_reuses_the_stored_identity(start_agent, db):
    agent = start_agent("Virginia")
    first = wait_online(db, agent)
    registered_token = agent.state()["api_token"]

    agent.signal(signal.SIGTERM)
    assert agent.wait() == 0
    agent.start()
    wait_until(lambda: "using stored identity" in agent.log(), "the restart to load its state", diagnostics=agent.tail)
    wait_until(
        lambda: db.agent_named("Virginia")["last_heartbeat"] > first["last_heartbeat"],
        "a heartbeat from the restarted agent",
        diagnostics=agent.tail,
    )
    assert agent.state()["api_token"] == registered_token
    assert agent.state()["agent_id"] == str(first["id"])
    assert agent.log().count("agent.identity: registered ") == 1  # on the first start only


def test_rejected_stored_token_re_registers_with_replace_and_keeps_the_agent_id(start_agent, db):
    agent = start_agent("Singapore")
    first = wait_online(db, agent)
    agent.signal(signal.SIGTERM)
    assert agent.wait() == 0

    # The API no longer knows the stored token (e.g. the agent was re-provisioned elsewhere).
    stale = agent.state()
    save_state(
        agent.state_dir / "state.json",
        AgentState(stale["agent_id"], "not-a-valid-token", stale["name"], stale["api_url"]),
    )
    agent.start()
    wait_until(
        lambda: agent.state()["api_token"] != "not-a-valid-token",
        "a new token in the state file",
        diagnostics=agent.tail,
    )
    wait_until(
        lambda: db.agent_named("Singapore")["last_heartbeat"] > first["last_heartbeat"],
        "the agent to be seen again with the new token",
        diagnostics=agent.tail,
    )
    assert agent.state()["agent_id"] == str(first["id"])  # the same agent, same stream
    assert stat.S_IMODE(os.stat(agent.state_dir / "state.json").st_mode) == 0o600
    assert "replace=True" in agent.log()


def test_wrong_registration_token_exits_2_with_one_line(start_agent):
    agent = start_agent("Impostor", HC_REGISTRATION_TOKEN="not-the-token")
    assert agent.wait() == 2
    lines = agent.log().strip().splitlines()
    assert len(lines) == 1, lines
    assert "registration token" in lines[0] and "Traceback" not in agent.log()
    assert agent.state() is None
