"""Duplicate and late delivery, against the real API process (issue 16, suite 5).

- The same result posted 5 times at once is stored once; every post gets a 200, one of
  them the original and the others `duplicate: true` with the stored result.
- A result after the deadline is kept as `late` and does not reopen the check.
"""

from __future__ import annotations

import threading

import pytest
import requests

from tests.integration.agent_harness import db  # noqa: F401 - a fixture
from tests.integration.conftest import register_over_http

POSTS = 5


@pytest.fixture
def agent(api_server, clean_state) -> dict:
    return register_over_http(api_server, "fra-1")


def _task(api_server: str, agent: dict) -> tuple[str, str]:
    resp = requests.post(
        f"{api_server}/api/checks",
        json={"target": "example.com", "checks": ["tcp"], "agents": [agent["agent_id"]]},
        timeout=10,
    )
    assert resp.status_code == 202, resp.text
    return resp.json()["check_id"], resp.json()["tasks"][0]["task_id"]


def _post_result(api_server: str, agent: dict, task_id: str, duration_ms: float = 12.5) -> requests.Response:
    body = {
        "success": True,
        "duration_ms": duration_ms,
        "address": "93.184.215.14",
        "data": {"address": "93.184.215.14", "port": 443, "connect_ms": duration_ms},
    }
    return requests.post(
        f"{api_server}/api/tasks/{task_id}/result", json=body, headers={"X-Agent-Token": agent["api_token"]}, timeout=15
    )


def test_the_same_result_posted_five_times_at_once_is_stored_once(api_server, agent, db):
    check_id, task_id = _task(api_server, agent)
    barrier = threading.Barrier(POSTS)
    replies: list[requests.Response] = []

    def post():
        barrier.wait()
        replies.append(_post_result(api_server, agent, task_id))

    threads = [threading.Thread(target=post) for _ in range(POSTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [r.status_code for r in replies] == [200] * POSTS, [r.text for r in replies]
    assert sorted(r.json()["duplicate"] for r in replies) == [False] + [True] * (POSTS - 1)
    assert all(r.json()["result"]["duration_ms"] == 12.5 for r in replies if r.json()["duplicate"])
    assert db.one("SELECT count(*) AS n FROM check_results WHERE task_id = %s", task_id)["n"] == 1
    check = requests.get(f"{api_server}/api/checks/{check_id}", timeout=10).json()
    assert check["status"] == "completed" and check["summary"]["tcp"]["ok"] == 1


def test_a_result_after_the_deadline_is_kept_late_and_does_not_reopen_the_check(api_server, agent, db):
    check_id, task_id = _task(api_server, agent)
    assert db.one(
        "UPDATE check_tasks SET deadline_at = now() - interval '1 second' WHERE id = %s RETURNING id", task_id
    )
    settled = requests.get(f"{api_server}/api/checks/{check_id}", timeout=10).json()
    assert settled["status"] == "completed" and settled["results"][0]["error"]["kind"] == "timeout"

    reply = _post_result(api_server, agent, task_id, duration_ms=30_000)
    assert reply.status_code == 200 and reply.json()["late"] is True and reply.json()["status"] == "failed"
    again = _post_result(api_server, agent, task_id, duration_ms=30_000)
    assert again.status_code == 200 and again.json()["duplicate"] is True

    check = requests.get(f"{api_server}/api/checks/{check_id}", timeout=10).json()
    assert check["status"] == "completed" and check["completed_at"] == settled["completed_at"]
    (row,) = check["results"]
    assert row["status"] == "failed" and row["late"] is True and row["error"]["kind"] == "timeout"
    assert row["duration_ms"] == 30_000 and row["success"] is False
    assert check["summary"]["tcp"]["failed"] == 1
