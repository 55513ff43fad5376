"""The http check's depth end to end: a check created through the API with a POST body,
custom headers, basic auth and assertions runs on a real agent process against a local
server; the server sees the request as asked, the result carries the assertions, a failed
one is stored as assertion_failed, and the password is never read back."""

from __future__ import annotations

import json

import requests

from tests.integration.agent_harness import (
    create_check,
    db,  # noqa: F401 (pytest fixture)
    start_agent,  # noqa: F401 (pytest fixture)
    wait_online,
    wait_until,
)
from tests.integration.test_check_http_expect import server  # noqa: F401 (pytest fixture)


def _finished(api_server, db, agent, check_id):
    wait_until(lambda: db.task_of(check_id)["status"] == "completed", "the task to complete", diagnostics=agent.tail)
    return requests.get(f"{api_server}/api/checks/{check_id}", timeout=10).json()


def test_a_post_with_headers_auth_and_assertions_runs_on_an_agent(start_agent, api_server, db, server):  # noqa: F811
    agent = start_agent("Frankfurt")
    agent_id = str(wait_online(db, agent)["id"])
    url = f"http://127.0.0.1:{server.server_address[1]}/echo"
    server.seen.clear()
    options = {
        "method": "POST",
        "body": "q=1",
        "headers": {"X-Debug-User": "ada"},
        "auth": {"username": "ada", "password": "pipeline-secret"},
        "expect": {"status": 200, "json": {"$.user": "ada", "$.method": "POST"}},
    }
    check = _finished(api_server, db, agent, create_check(api_server, url, "http", agent_id, options)["check_id"])
    (row,) = check["results"]
    assert row["success"] is True, row["error"]
    assert [a["passed"] for a in row["data"]["assertions"]] == [True, True, True]
    [request] = server.seen
    assert request["body"] == b"q=1" and request["headers"]["X-Debug-User"] == "ada"
    assert request["headers"]["Authorization"].startswith("Basic ")
    assert "pipeline-secret" not in json.dumps(check)
    assert check["options"]["http"]["auth"]["password"] == "********"

    failing = {"expect": {"json": {"$.status": "down"}}}
    check = _finished(api_server, db, agent, create_check(api_server, url, "http", agent_id, failing)["check_id"])
    (row,) = check["results"]
    assert row["success"] is False
    assert row["error"] == {"kind": "assertion_failed", "message": "expect.json.$.status: expected down, saw ok"}
    assert check["summary"]["http"]["failed"] == 1
