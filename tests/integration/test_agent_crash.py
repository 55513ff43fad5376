"""SIGKILL mid-task: the entry stays pending in the stream, the restarted agent takes
it back and runs it, and the task ends with exactly one result."""

from __future__ import annotations

import signal

import requests

from tests.integration.agent_harness import (
    create_check,
    db,  # noqa: F401 (pytest fixture)
    slow_http,  # noqa: F401 (pytest fixture)
    start_agent,  # noqa: F401 (pytest fixture)
    stream_pending,  # noqa: F401 (pytest fixture)
    wait_online,
    wait_until,
)


def test_agent_crash_mid_task_loses_nothing(start_agent, api_server, db, slow_http, stream_pending):
    agent = start_agent("Crashy")
    wait_online(db, agent)
    agent_id = agent.state()["agent_id"]

    check_id = create_check(api_server, slow_http.url, "http", agent_id, {"timeout": 30})["check_id"]
    # Mid-task: the API saw `start` and the slow server holds the agent's request.
    wait_until(
        lambda: slow_http.requests == 1 and db.task_of(check_id)["status"] == "in_progress",
        "the agent to be mid-check",
        diagnostics=agent.tail,
    )
    # The heartbeat carries on beside the check and reports it.
    wait_until(
        lambda: db.agent_named("Crashy")["current_tasks"] == 1,
        "a heartbeat with current_tasks=1",
        diagnostics=agent.tail,
    )

    agent.signal(signal.SIGKILL)
    assert agent.wait() == -signal.SIGKILL
    assert stream_pending(agent_id) == 1  # taken, never acknowledged
    assert db.results_of(check_id) == []

    slow_http.release()  # the next attempt is answered at once
    agent.start()
    wait_until(
        lambda: db.task_of(check_id)["status"] in ("completed", "failed"), "the task to finish", diagnostics=agent.tail
    )
    wait_until(lambda: stream_pending(agent_id) == 0, "the entry to be acknowledged", diagnostics=agent.tail)

    task = db.task_of(check_id)
    assert task["status"] == "completed"
    assert task["attempts"] == 2  # started by the killed run and by the restart
    (result,) = db.results_of(check_id)  # exactly one result
    assert result["success"] is True, result
    assert result["data"]["status_code"] == 200
    assert slow_http.requests == 2  # the killed attempt and the re-run, nothing more

    check = requests.get(f"{api_server}/api/checks/{check_id}", timeout=10).json()
    assert check["status"] == "completed"
    assert [r["status"] for r in check["results"]] == ["completed"]
    assert "reclaimed un-acknowledged tasks count=1" in agent.log()
