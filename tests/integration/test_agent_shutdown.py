"""SIGTERM: the agent stops taking tasks, lets the running check finish, delivers its
result and exits 0."""

from __future__ import annotations

import signal

from tests.integration.agent_harness import (
    create_check,
    db,  # noqa: F401 (pytest fixture)
    slow_http,  # noqa: F401 (pytest fixture)
    start_agent,  # noqa: F401 (pytest fixture)
    stream_pending,  # noqa: F401 (pytest fixture)
    tcp_listener,  # noqa: F401 (pytest fixture)
    wait_online,
    wait_until,
)


def test_sigterm_drains_the_running_check_and_exits_0(
    start_agent, api_server, db, slow_http, tcp_listener, stream_pending
):
    agent = start_agent("Drainer", HC_GRACE_PERIOD_S="60")
    wait_online(db, agent)
    agent_id = agent.state()["agent_id"]

    running = create_check(api_server, slow_http.url, "http", agent_id, {"timeout": 30})["check_id"]
    wait_until(lambda: slow_http.requests == 1, "the check to be in flight", diagnostics=agent.tail)

    agent.signal(signal.SIGTERM)
    wait_until(
        lambda: "stopping: no new tasks running=1" in agent.log(), "the agent to start draining", diagnostics=agent.tail
    )
    # Created while it drains (it still heartbeats, so it is still chosen): must not be taken.
    late = create_check(api_server, "127.0.0.1", "tcp", agent_id, {"port": tcp_listener.port})["check_id"]
    assert agent.running()

    slow_http.release()
    assert agent.wait() == 0, agent.tail()

    task = db.task_of(running)
    assert task["status"] == "completed"
    (result,) = db.results_of(running)
    assert result["success"] is True and result["data"]["status_code"] == 200
    assert stream_pending(agent_id) == 0  # acknowledged before exiting
    assert db.task_of(late)["status"] == "pending"  # left in the stream for the next start
    assert tcp_listener.accepted == 0
