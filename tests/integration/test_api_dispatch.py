"""Tasks created while Redis is down are delivered when it answers again (issue 16, defect 1).

The agent's next heartbeat pushes them, with their deadline counted from that push, and a
task no push ever delivered fails `not_dispatched`, not a `timeout` that blames the agent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import config
from chalicelib.fanout import DISPATCH_WINDOW_S, PUSH_GRACE_S
from tests.conftest import free_port

from .test_sweeper import _sweep


@pytest.fixture
def agent(api):
    return api.register("fra-1", "Frankfurt")


def _create_while_redis_is_down(api, **extra) -> dict:
    working = config.get_settings().redis_url
    config.reset_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    try:
        reply = api.create_check(**extra)
    finally:
        config.reset_settings(redis_url=working)
    assert reply.status == 202, reply.body
    return reply.body


def _age_tasks(db, seconds: float) -> None:
    """As if the tasks had been created `seconds` ago (their deadline moves with them)."""
    db.execute(
        "UPDATE check_tasks SET created_at = created_at - make_interval(secs => %s), "
        "deadline_at = deadline_at - make_interval(secs => %s)",
        (seconds, seconds),
    )


def test_heartbeat_after_redis_recovers_delivers_tasks_created_during_the_outage(api, agent, db, redis_client):
    check = _create_while_redis_is_down(api, checks=["tcp"])
    task = db.execute("SELECT stream_id, deadline_at - created_at AS span FROM check_tasks").fetchone()
    assert task["stream_id"] is None
    _age_tasks(db, PUSH_GRACE_S + 15)  # most of the tcp deadline (20 s) spent waiting for Redis
    assert api.heartbeat(agent).status == 200
    entries = redis_client.xrange(agent["stream"])
    assert len(entries) == 1 and check["tasks"][0]["task_id"] in entries[0][1]["task"]
    row = db.execute("SELECT stream_id, deadline_at FROM check_tasks").fetchone()
    assert row["stream_id"] == entries[0][0]
    # the deadline counts from the push: the agent gets the whole span again
    assert row["deadline_at"] >= datetime.now(UTC) + task["span"] - timedelta(seconds=2)
    assert api.heartbeat(agent).status == 200
    assert redis_client.xlen(agent["stream"]) == 1  # delivered once


def test_sweep_delivers_undispatched_tasks_past_their_first_deadline_within_the_window(
    api, app_client, agent, db, redis_client
):
    _create_while_redis_is_down(api, checks=["tcp"])
    _age_tasks(db, 30)  # past the tcp deadline, inside the dispatch window
    counts = _sweep(app_client)
    assert counts["tasks_failed"] == 0 and counts["tasks_reenqueued"] == 1
    assert redis_client.xlen(agent["stream"]) == 1


def test_a_task_never_delivered_fails_not_dispatched(api, app_client, agent, db):
    check = _create_while_redis_is_down(api, checks=["tcp"])
    _age_tasks(db, DISPATCH_WINDOW_S + 1)
    config.reset_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")  # still down at the sweep
    assert _sweep(app_client)["tasks_failed"] == 1
    result = api.get(f"/api/checks/{check['check_id']}").body
    assert result["status"] == "completed"
    error = result["results"][0]["error"]
    assert error["kind"] == "not_dispatched" and "fra-1" in error["message"]


def test_a_delivered_task_past_its_deadline_is_still_a_timeout(api, app_client, agent, db):
    api.create_check(checks=["tcp"])
    _age_tasks(db, 25)
    assert _sweep(app_client)["tasks_failed"] == 1
    assert db.execute("SELECT error FROM check_tasks").fetchone()["error"]["kind"] == "timeout"


def test_heartbeat_after_redis_lost_its_data_pushes_the_lost_entries_again_and_only_those(api, agent, db, redis_client):
    """Redis restarted empty (issue 16, suite 2): the heartbeat key is gone, and so is the stream entry of
    every task pushed before; the agent's next heartbeat pushes those again instead of leaving them to time
    out before the next sweep. While the key is there, a heartbeat looks up no pushed task."""
    lost = api.create_check(checks=["tcp"]).body["tasks"][0]["task_id"]
    assert api.heartbeat(agent).status == 200
    assert redis_client.xlen(agent["stream"]) == 1  # the key was there: nothing pushed twice
    redis_client.flushdb()  # the data is gone; PostgreSQL still says the task was pushed
    kept = api.create_check(checks=["tcp"]).body["tasks"][0]["task_id"]  # pushed after the loss
    assert api.heartbeat(agent).status == 200
    tasks = [e[1]["task"] for e in redis_client.xrange(agent["stream"])]
    assert len(tasks) == 2 and kept in tasks[0] and lost in tasks[1], tasks
    row = db.execute("SELECT stream_id FROM check_tasks WHERE id = %s", (lost,)).fetchone()
    assert row["stream_id"] == redis_client.xrange(agent["stream"])[1][0]
    assert api.heartbeat(agent).status == 200
    assert redis_client.xlen(agent["stream"]) == 2  # delivered once
