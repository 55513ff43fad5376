"""`curl -H "X-Admin-Token: $ADMIN_TOKEN" $API_URL/metrics` on the running stack (issue 13's
"done when"): the seed's three metrics with real values after a check from every agent, and
nothing without the token."""

from __future__ import annotations

import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from scripts.localcloud.stack import AGENTS


def _scrape(stack: dict) -> dict[tuple[str, frozenset], float]:
    reply = requests.get(f"{stack['API_URL']}/metrics", headers={"X-Admin-Token": stack["ADMIN_TOKEN"]}, timeout=10)
    assert reply.status_code == 200, reply.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }


def _sum(samples: dict, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= got)


def _run_check(stack: dict, timeout_s: float = 60) -> dict:
    reply = requests.post(
        f"{stack['API_URL']}/api/checks", json={"target": stack["DEMO_HTTP_URL"], "checks": ["tcp"]}, timeout=10
    )
    assert reply.status_code == 202, reply.text
    url = f"{stack['API_URL']}/api/checks/{reply.json()['check_id']}"
    deadline = time.monotonic() + timeout_s
    check = {"status": "never read"}
    while time.monotonic() < deadline:
        check = requests.get(url, timeout=10).json()
        if check["status"] in ("completed", "failed"):
            return check
        time.sleep(0.25)  # poll interval of a bounded wait on the check's status
    pytest.fail(f"check did not finish within {timeout_s} s: {check['status']}")


def test_metrics_show_the_seeds_three_metrics_with_real_values(stack):
    before = _scrape(stack)
    check = _run_check(stack)
    assert check["status"] == "completed"
    after = _scrape(stack)

    assert (
        _sum(after, "hostchecker_checks_total", check_type="tcp")
        - _sum(before, "hostchecker_checks_total", check_type="tcp")
        >= 1
    )
    agents = len(check["results"])
    assert agents == len(AGENTS)
    assert (
        _sum(after, "hostchecker_check_duration_seconds_count", check_type="tcp")
        - _sum(before, "hostchecker_check_duration_seconds_count", check_type="tcp")
        >= agents
    )
    for agent in AGENTS:  # every agent heart-beats (every 5 s); the stack waited for all of them
        assert _sum(after, "hostchecker_agent_heartbeats_total", agent=agent["name"]) >= 1
    assert _sum(after, "hostchecker_agents_online") == len(AGENTS)


def test_metrics_without_the_admin_token_are_refused(stack):
    reply = requests.get(f"{stack['API_URL']}/metrics", timeout=10)
    assert reply.status_code == 401
    assert reply.json()["error"]["message"]
