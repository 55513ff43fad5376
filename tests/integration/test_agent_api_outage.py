"""API down, then back: results go to the spool, survive a restart of the agent, and
are delivered exactly once when the API returns. The checks are not run again."""

from __future__ import annotations

import signal

from tests.integration.agent_harness import (
    create_check,
    db,  # noqa: F401 (pytest fixture)
    proxy,  # noqa: F401 (pytest fixture)
    start_agent,  # noqa: F401 (pytest fixture)
    stream_pending,  # noqa: F401 (pytest fixture)
    tcp_listener,  # noqa: F401 (pytest fixture)
    wait_online,
    wait_until,
)

TASKS = 3


def test_api_outage_results_are_spooled_and_delivered_exactly_once(
    start_agent, api_server, db, proxy, tcp_listener, stream_pending
):
    agent = start_agent("Outage", api_url=proxy.url)
    wait_online(db, agent)
    agent_id = agent.state()["agent_id"]

    proxy.close()  # the API is unreachable for the agent (the test still reaches it directly)
    check_ids = [
        create_check(api_server, "127.0.0.1", "tcp", agent_id, {"port": tcp_listener.port})["check_id"]
        for _ in range(TASKS)
    ]
    task_ids = sorted(str(db.task_of(c)["id"]) for c in check_ids)

    # Run meanwhile, results durable in the spool, entries not acknowledged.
    wait_until(lambda: agent.spooled() == task_ids, "the results in the spool", diagnostics=agent.tail)
    wait_until(lambda: tcp_listener.accepted == TASKS, "the listener to count every check's connection")
    assert all(db.results_of(c) == [] for c in check_ids)
    assert stream_pending(agent_id) == TASKS

    # A crash while the API is still down: the spool survives and the tasks are not run again.
    agent.signal(signal.SIGKILL)
    agent.wait()
    agent.start()
    wait_until(
        lambda: f"replaying spooled results count={TASKS}" in agent.log(), "the spool replay", diagnostics=agent.tail
    )
    wait_until(lambda: agent.log().count("reclaimed un-acknowledged tasks") == 1, "the reclaim", diagnostics=agent.tail)

    proxy.open()  # the API is back
    wait_until(
        lambda: all(db.task_of(c)["status"] == "completed" for c in check_ids),
        "every task completed",
        diagnostics=agent.tail,
    )
    wait_until(
        lambda: stream_pending(agent_id) == 0 and agent.spooled() == [],
        "the spool emptied and every entry acknowledged",
        diagnostics=agent.tail,
    )

    for check_id in check_ids:
        (result,) = db.results_of(check_id)  # one result per task
        assert result["success"] is True
    assert tcp_listener.accepted == TASKS  # each check ran once, before the crash
    log = agent.log()
    assert log.count("outcome=spool_delivered ") == TASKS, log
    assert "spool_delivered_duplicate" not in log
