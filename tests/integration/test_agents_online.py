"""Who is online: one definition (a heartbeat within the TTL) for every reader, the sweeper and
the fan-out; the fan-out asks the Redis heartbeat keys first, and PostgreSQL where Redis lacks them."""

from __future__ import annotations

import pytest

from chalicelib import config
from tests.conftest import free_port


def _sweep(app_client) -> dict:
    event = app_client.events.generate_cw_event(
        source="aws.events",
        detail_type="Scheduled Event",
        detail={},
        resources=["arn:aws:events:us-east-1:1:rule/sweep"],
    )
    return app_client.lambda_.invoke("sweep", event).payload


def _heartbeat_age(db, agent: dict, seconds: int) -> None:
    db.execute(
        "UPDATE agents SET last_heartbeat = now() - make_interval(secs => %s) WHERE id = %s",
        (seconds, agent["agent_id"]),
    )


def _hb_key(agent: dict) -> str:
    return f"hc:agent:{agent['agent_id']}:hb"


def _chosen(reply) -> set[str]:
    assert reply.status == 202, reply.body
    return {a["name"] for a in reply.body["agents"]}


def test_readers_the_sweeper_and_the_fan_out_agree_on_who_is_online(api, app_client, db, redis_client):
    config.reset_settings(heartbeat_ttl_s=20)  # not the default: every path must read the one setting
    ages = {"fresh": 0, "inside": 15, "outside": 25}
    agents = {name: api.register(name, "Frankfurt") for name in ages}
    for name, age in ages.items():
        _heartbeat_age(db, agents[name], age)
        if age > 20:
            redis_client.delete(_hb_key(agents[name]))  # as its SETEX would have expired
    online = {"fresh", "inside"}

    listed = {a["name"] for a in api.get("/api/agents").body["items"] if a["status"] == "online"}
    assert listed == online
    assert {n for n in ages if api.get(f"/api/agents/{agents[n]['agent_id']}").body["status"] == "online"} == online
    counts = _sweep(app_client)
    assert counts["agents_offline"] == 1 and counts["agents_online"] == len(online)
    stored = {r["name"] for r in db.execute("SELECT name FROM agents WHERE status = 'online'").fetchall()}
    assert stored == online
    assert api.get("/health").body["active_agents"] == len(online)
    assert _chosen(api.create_check()) == online


def test_fan_out_reads_the_heartbeat_key(api, db, redis_client):
    """An agent whose key is there is taken without asking PostgreSQL's clock. (Both copies are
    written by the same heartbeat; PostgreSQL's is set back here only to show which one answered.)"""
    agent = api.register("fra-1", "Frankfurt")
    _heartbeat_age(db, agent, 600)
    assert redis_client.exists(_hb_key(agent))
    assert _chosen(api.create_check()) == {"fra-1"}
    redis_client.delete(_hb_key(agent))
    assert api.create_check().body["status"] == "failed"  # neither copy says it beat lately


def test_fan_out_asks_postgresql_when_redis_lost_the_keys(api, redis_client):
    api.register("fra-1", "Frankfurt")
    api.register("sin-1", "Singapore")
    redis_client.flushdb()  # a Redis restart without persistence
    reply = api.create_check()
    assert _chosen(reply) == {"fra-1", "sin-1"}
    assert all(redis_client.xlen(f"hc:tasks:{t['agent_id']}") == 1 for t in reply.body["tasks"])


def test_fan_out_asks_postgresql_when_redis_is_down(api, db):
    agent = api.register("fra-1", "Frankfurt")
    config.reset_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    reply = api.create_check()
    assert _chosen(reply) == {"fra-1"} and reply.body["status"] == "pending"
    # its task waits in PostgreSQL for the sweeper to push it when Redis is back
    row = db.execute("SELECT stream_id FROM check_tasks WHERE agent_id = %s", (agent["agent_id"],)).fetchone()
    assert row["stream_id"] is None


@pytest.mark.parametrize("age, online", [(29, True), (31, False)])
def test_the_default_ttl_is_the_protocol_s_30_seconds(api, db, redis_client, age, online):
    agent = api.register("fra-1", "Frankfurt")
    _heartbeat_age(db, agent, age)
    redis_client.delete(_hb_key(agent))
    assert (api.get(f"/api/agents/{agent['agent_id']}").body["status"] == "online") is online
