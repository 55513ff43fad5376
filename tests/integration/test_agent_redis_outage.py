"""Redis unreachable: the agent keeps running, reconnects with backoff, and then takes
the tasks that were queued meanwhile."""

from __future__ import annotations

import pytest

from tests.integration.agent_harness import (
    ToggleProxy,
    create_check,
    db,  # noqa: F401 (pytest fixture)
    start_agent,  # noqa: F401 (pytest fixture)
    stream_pending,  # noqa: F401 (pytest fixture)
    tcp_listener,  # noqa: F401 (pytest fixture)
    wait_online,
    wait_until,
)


@pytest.fixture
def redis_proxy(redis_url):
    """The agent's way to Redis, which the test can cut and restore (the API keeps its own)."""
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    p = ToggleProxy(port)
    p.open()
    yield p
    p.close()


def test_redis_outage_is_survived_and_queued_tasks_run_after(
    start_agent, api_server, db, redis_proxy, tcp_listener, stream_pending, redis_url
):
    db_index = redis_url.rsplit("/", 1)[1] if redis_url.count("/") > 2 else "0"
    agent = start_agent("Redisless", HC_REDIS_URL=f"redis://127.0.0.1:{redis_proxy.port}/{db_index}")
    wait_online(db, agent)
    agent_id = agent.state()["agent_id"]

    redis_proxy.close()
    wait_until(lambda: "redis unavailable" in agent.log(), "the agent to notice Redis is gone", diagnostics=agent.tail)
    check_id = create_check(api_server, "127.0.0.1", "tcp", agent_id, {"port": tcp_listener.port})["check_id"]
    assert agent.running()

    redis_proxy.open()
    wait_until(
        lambda: db.task_of(check_id)["status"] == "completed", "the queued task to complete", diagnostics=agent.tail
    )
    wait_until(lambda: stream_pending(agent_id) == 0, "the entry to be acknowledged", diagnostics=agent.tail)
    (result,) = db.results_of(check_id)
    assert result["success"] is True
    assert "redis is reachable again" in agent.log()
