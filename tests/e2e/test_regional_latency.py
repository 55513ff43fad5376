"""Regional agents, emulated: each local agent sits in its own network
namespace behind a user-space delay link (scripts/localcloud/netlab), so the results
show the latency differences a real deployment would (issue 7)."""

from __future__ import annotations

import statistics
import time

import pytest
import requests

from scripts.localcloud.stack import AGENTS

TOLERANCE_MS = 5.0


def run_check(api_url: str, body: dict, timeout_s: float = 60) -> dict:
    resp = requests.post(f"{api_url}/api/checks", json=body, timeout=10)
    assert resp.status_code == 202, resp.text
    url = f"{api_url}/api/checks/{resp.json()['check_id']}"
    deadline = time.monotonic() + timeout_s
    check = {"status": "never read"}
    while time.monotonic() < deadline:  # poll the API's state, as the UI does
        check = requests.get(url, timeout=10).json()
        if check["status"] in ("completed", "failed"):
            return check
        time.sleep(0.25)  # poll interval of a bounded wait on the check's status
    pytest.fail(f"check did not finish within {timeout_s} s: {check['status']}")


@pytest.fixture(scope="module")
def regional(stack):
    if stack.get("REGIONAL_LINKS") != "netns":
        pytest.skip("the stack runs its agents on loopback (not root): no regional delay links to measure")
    return stack


def test_ping_and_tcp_connect_follow_each_agents_regional_delay(regional):
    pings: dict[str, list[float]] = {a["name"]: [] for a in AGENTS}
    connects: dict[str, list[float]] = {a["name"]: [] for a in AGENTS}
    for _ in range(3):
        check = run_check(
            regional["API_URL"],
            {
                "target": regional["DEMO_HTTP_URL"],
                "checks": ["ping", "tcp"],
                "options": {"ping": {"count": 5, "interval": 0.2}},
            },
        )
        assert check["status"] == "completed"
        for row in check["results"]:
            assert row["success"], row
            name = row["agent"]["name"]
            if row["check_type"] == "ping":
                pings[name].extend(row["data"]["rtts_ms"])
            else:
                connects[name].append(row["data"]["connect_ms"])
    for agent in AGENTS:
        name, expected = agent["name"], agent["rtt_ms"]
        ping_avg = statistics.fmean(pings[name])
        connect_avg = statistics.fmean(connects[name])
        assert abs(ping_avg - expected) <= TOLERANCE_MS, (name, ping_avg, expected)
        assert abs(connect_avg - expected) <= TOLERANCE_MS, (name, connect_avg, expected)
