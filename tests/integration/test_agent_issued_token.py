"""An agent token issued ahead of time (the seed's `docker run -e AGENT_TOKEN=...`): registered once
through the API, handed to the host, and used without a registration token. The agent learns its id
from the heartbeat's answer; a token the API does not know stops it with one line naming the variable."""

from __future__ import annotations

import requests

from tests.conftest import REGISTRATION_TOKEN
from tests.integration.agent_harness import db, start_agent, wait_online, wait_until  # noqa: F401


def issue_token(api_server: str, name: str) -> dict:
    resp = requests.post(
        f"{api_server}/api/agents/register",
        json={"name": name, "location": "Moscow, Russia"},
        headers={"X-Registration-Token": REGISTRATION_TOKEN},
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_agent_runs_on_an_issued_token_alone_and_learns_its_id(start_agent, api_server, db):
    issued = issue_token(api_server, "Moscow-1")
    agent = start_agent("Moscow-1", HC_REGISTRATION_TOKEN="", AGENT_TOKEN=issued["api_token"])
    row = wait_online(db, agent)
    assert str(row["id"]) == issued["agent_id"]
    # The heartbeat is in the database before its answer reaches the agent, which then saves the id.
    state = wait_until(lambda: (agent.state() or {}).get("agent_id") and agent.state(), "the agent to save its id")
    assert state["agent_id"] == issued["agent_id"]
    assert state["api_token"] == issued["api_token"]
    assert "authenticated with the issued token" in agent.log()


def test_an_unknown_issued_token_stops_the_agent_naming_the_variable(start_agent):
    agent = start_agent("Moscow-2", HC_REGISTRATION_TOKEN="", AGENT_TOKEN="not-a-token-the-api-issued")
    assert agent.wait() == 2
    wait_until(lambda: "AGENT_TOKEN" in agent.log(), "the agent to name AGENT_TOKEN", diagnostics=agent.tail)
    assert "Traceback" not in agent.log()
