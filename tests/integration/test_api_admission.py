"""Admission control: the API gives no agent more work than it can start before the work expires.

An agent whose oldest unread task has waited over MAX_QUEUE_WAIT_S is passed over; when every
agent that fits is, the POST is 503 `agents_busy`, nothing is stored and no check quota is spent
(bench scenario 2 stored 10,992 checks in 60 s that expired in the agents' queues, unrun).
A task "waiting" is a stream entry the agent's group has not read: the tests XADD one with an id
(Redis ms) from seconds ago, as an API that pushed it then would have.
"""

from __future__ import annotations

import time

import pytest

from chalicelib import config, queue
from chalicelib.protocol import MAX_QUEUE_WAIT_S, STREAM_GROUP, task_stream_key
from tests.conftest import ADMIN_TOKEN
from tests.integration.metrics_scrape import parse, value


def _queue_task(redis_client, agent_id: str, waited_s: float) -> str:
    """An entry in the agent's stream, pushed `waited_s` ago by Redis's clock, not yet read."""
    seconds, micros = redis_client.time()
    ms = seconds * 1000 + micros // 1000 - int(waited_s * 1000)
    return redis_client.xadd(task_stream_key(agent_id), {"task_id": "t", "check_type": "tcp"}, id=f"{ms}-0")


def _new_stream(redis_client, agent_id: str) -> None:
    """The agent's stream as at registration (empty, group at 0): a backdated id fits again."""
    redis_client.delete(task_stream_key(agent_id))
    redis_client.xgroup_create(task_stream_key(agent_id), STREAM_GROUP, id="0", mkstream=True)


def _read(redis_client, agent_id: str) -> None:
    """The agent reads what waits (delivered, not yet acknowledged)."""
    redis_client.xreadgroup(STREAM_GROUP, "c1", {task_stream_key(agent_id): ">"}, count=100)


@pytest.fixture
def two(api):
    return [api.register("adm-fra", "Frankfurt"), api.register("adm-sin", "Singapore")]


def _count(db, table: str) -> int:
    return db.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"]


def test_queue_waits_are_the_age_of_the_oldest_unread_entry_and_zero_once_read(two, redis_client):
    fra, sin = (a["agent_id"] for a in two)
    _queue_task(redis_client, fra, 7)
    waits = queue.queue_waits_s([fra, sin, "00000000-0000-0000-0000-000000000000"])
    assert 7 <= waits[fra] < 7 + MAX_QUEUE_WAIT_S
    assert waits[sin] == 0  # an empty stream
    assert waits["00000000-0000-0000-0000-000000000000"] == 0  # no stream at all
    _read(redis_client, fra)
    assert queue.queue_waits_s([fra])[fra] == 0  # delivered: the agent has it in hand


def test_an_agent_behind_on_its_queue_is_passed_over_and_the_shortfall_says_why(api, two, redis_client):
    fra, sin = (a["agent_id"] for a in two)
    _queue_task(redis_client, fra, MAX_QUEUE_WAIT_S + 2)
    reply = api.create_check(checks=["tcp"])
    assert reply.status == 202, reply.body
    assert [t["agent_id"] for t in reply.body["tasks"]] == [sin]
    shortfall = reply.body["selection"]["shortfall"]
    assert shortfall["missing"] == 1 and "behind on their queue" in shortfall["message"]


def test_an_agent_a_little_behind_still_gets_work(api, two, redis_client):
    _queue_task(redis_client, two[0]["agent_id"], MAX_QUEUE_WAIT_S - 2)
    reply = api.create_check(checks=["tcp"])
    assert reply.status == 202 and len(reply.body["tasks"]) == 2


def test_when_every_agent_that_fits_is_behind_the_post_is_503_and_nothing_is_stored(api, two, redis_client, db):
    for agent in two:
        _queue_task(redis_client, agent["agent_id"], MAX_QUEUE_WAIT_S + 3)
    before = (_count(db, "checks"), _count(db, "check_tasks"))
    reply = api.create_check(checks=["tcp"])
    assert reply.status == 503, reply.body
    assert reply.body["error"]["code"] == "agents_busy"
    assert "behind on its queue" in reply.body["error"]["message"]
    assert int(reply.headers["Retry-After"]) >= 1
    assert (_count(db, "checks"), _count(db, "check_tasks")) == before
    # Once the agents have read their queues, the same POST is taken.
    for agent in two:
        _read(redis_client, agent["agent_id"])
    assert api.create_check(checks=["tcp"]).status == 202


def test_a_post_refused_because_the_agents_are_behind_costs_no_check_quota(api, two, redis_client):
    config.reset_settings(checks_per_hour=3)
    first = api.create_check(checks=["tcp"])
    assert first.status == 202 and first.headers["X-RateLimit-Remaining"] == "2"
    for agent in two:
        _new_stream(redis_client, agent["agent_id"])  # its tasks are now, the backlog below older
        _queue_task(redis_client, agent["agent_id"], MAX_QUEUE_WAIT_S + 3)
    for _ in range(3):  # more than the quota left: none of them is charged
        refused = api.create_check(checks=["tcp"])
        assert refused.status == 503 and refused.headers["X-RateLimit-Remaining"] == "2"
    for agent in two:
        _read(redis_client, agent["agent_id"])
    taken = api.create_check(checks=["tcp"])
    assert taken.status == 202 and taken.headers["X-RateLimit-Remaining"] == "1"


def test_a_refusal_is_counted_in_the_metrics(api, two, redis_client):
    for agent in two:
        _queue_task(redis_client, agent["agent_id"], MAX_QUEUE_WAIT_S + 3)
    assert api.create_check(checks=["tcp"]).status == 503
    samples = parse(api.get("/metrics", headers={"X-Admin-Token": ADMIN_TOKEN}).raw.decode())
    assert value(samples, "hostchecker_checks_refused_total", reason="agents_busy") == 1


def test_queues_unreadable_pass_no_agent_over(api, two, redis_client, monkeypatch):
    """Fail open: with Redis's answer unreadable, PostgreSQL decides who is online and no agent
    is passed over for load (here the heartbeats and waits read fail; the fan-out then decides)."""

    def unreadable(agent_ids):
        raise queue.RedisError("NOSCRIPT or worse")

    for agent in two:
        _queue_task(redis_client, agent["agent_id"], MAX_QUEUE_WAIT_S + 3)
    monkeypatch.setattr(queue, "agent_states", unreadable)
    reply = api.create_check(checks=["tcp"])
    assert reply.status == 202 and len(reply.body["tasks"]) == 2


def test_the_wait_is_read_by_redis_clock_not_the_api_s(two, redis_client, monkeypatch):
    """The API's own clock plays no part: moving it does not change the wait."""
    fra = two[0]["agent_id"]
    _queue_task(redis_client, fra, 7)
    monkeypatch.setattr(time, "time", lambda: 0.0)
    assert queue.queue_waits_s([fra])[fra] >= 7
