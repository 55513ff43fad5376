"""Agent registration, heartbeats, listing and stats through the API."""

from __future__ import annotations

import hashlib

from tests.integration.conftest import REGISTRATION_TOKEN


def test_registration_returns_a_256_bit_token_and_stores_only_its_hash(api, db):
    agent = api.register("fra-1", "Frankfurt", region="eu-central-1", capabilities=["http", "ping"])
    assert agent["stream"] == f"hc:tasks:{agent['agent_id']}" and agent["group"] == "agent"
    assert len(agent["api_token"]) >= 43  # token_urlsafe(32): 256 bits
    row = db.execute("SELECT * FROM agents WHERE id = %s", (agent["agent_id"],)).fetchone()
    assert row["api_token_hash"] == hashlib.sha256(agent["api_token"].encode()).hexdigest()
    assert agent["api_token"] not in str(row)
    assert row["capabilities"] == ["http", "ping"]


def test_registration_creates_the_agents_stream_and_consumer_group(api, redis_client):
    agent = api.register("fra-1")
    groups = redis_client.xinfo_groups(agent["stream"])
    assert [g["name"] for g in groups] == ["agent"]


def test_registration_without_token_is_401_and_with_wrong_token_is_403(api):
    body = {"name": "x", "location": "Frankfurt"}
    assert api.post("/api/agents/register", body).status == 401
    reply = api.post("/api/agents/register", body, headers={"X-Registration-Token": "nope"})
    assert reply.status == 403 and reply.body["error"]["code"] == "forbidden"


def test_registering_a_taken_name_is_409_unless_replace(api):
    first = api.register("fra-1")
    reply = api.post(
        "/api/agents/register",
        {"name": "fra-1", "location": "Frankfurt"},
        headers={"X-Registration-Token": REGISTRATION_TOKEN},
    )
    assert reply.status == 409 and reply.body["error"]["details"][0]["field"] == "name"
    again = api.post(
        "/api/agents/register",
        {"name": "fra-1", "location": "Frankfurt", "replace": True},
        headers={"X-Registration-Token": REGISTRATION_TOKEN},
    )
    assert again.status == 200
    assert again.body["agent_id"] == first["agent_id"] and again.body["api_token"] != first["api_token"]
    assert api.heartbeat(first).status == 401  # the old token is rotated out
    assert api.heartbeat(again.body).status == 200


def test_registration_names_the_bad_field(api):
    for body, field in (
        ({"location": "F"}, "name"),
        ({"name": 5, "location": "F"}, "name"),
        ({"name": "a", "location": "F", "capabilities": ["http", "smtp"]}, "capabilities[1]"),
        ({"name": "a" * 65, "location": "F"}, "name"),
        ({"name": "a", "location": "F", "colour": "red"}, "colour"),
    ):
        reply = api.post("/api/agents/register", body, headers={"X-Registration-Token": REGISTRATION_TOKEN})
        assert reply.status == 400, body
        assert reply.body["error"]["details"][0]["field"] == field


def test_heartbeat_marks_online_and_sets_a_30s_redis_key(api, db, redis_client):
    agent = api.register("fra-1")
    reply = api.heartbeat(agent, current_tasks=3, version="1.2.3")
    assert reply.status == 200
    assert reply.body["agent_id"] == agent["agent_id"] and reply.body["status"] == "online"
    ttl = redis_client.ttl(f"hc:agent:{agent['agent_id']}:hb")
    assert 0 < ttl <= 30
    row = db.execute("SELECT status, current_tasks, version FROM agents WHERE id = %s", (agent["agent_id"],)).fetchone()
    assert row == {"status": "online", "current_tasks": 3, "version": "1.2.3"}


def test_heartbeat_with_unknown_or_missing_token_is_401(api):
    assert api.post("/api/agents/heartbeat", {"current_tasks": 0}).status == 401
    reply = api.post("/api/agents/heartbeat", {"current_tasks": 0}, headers={"X-Agent-Token": "forged"})
    assert reply.status == 401 and reply.body["error"]["code"] == "unauthorized"


def test_heartbeat_rejects_wrong_types(api):
    agent = api.register("fra-1")
    reply = api.heartbeat(agent, current_tasks="many")
    assert reply.status == 400 and reply.body["error"]["details"][0]["field"] == "current_tasks"


def test_agent_list_shows_effective_status_from_the_heartbeat_age(api, db):
    fresh = api.register("fra-1", "Frankfurt")
    stale = api.register("sin-1", "Singapore")
    db.execute(
        "UPDATE agents SET last_heartbeat = now() - interval '31 seconds' WHERE id = %s", (stale["agent_id"],)
    )  # the row still says online: status is computed from the heartbeat
    reply = api.get("/api/agents")
    assert reply.status == 200 and reply.body["next_cursor"] is None
    status = {a["name"]: a["status"] for a in reply.body["items"]}
    assert status == {"fra-1": "online", "sin-1": "offline"}
    one = api.get(f"/api/agents/{fresh['agent_id']}")
    assert one.status == 200 and one.body["name"] == "fra-1" and one.body["location"] == "Frankfurt"
    assert set(one.body) == {
        "id",
        "name",
        "location",
        "region",
        "status",
        "last_heartbeat",
        "version",
        "capabilities",
        "current_tasks",
        "registered_at",
        "clock_offset_ms",
        "clock_ok",
    }


def test_unknown_agent_is_404(api):
    assert api.get("/api/agents/00000000-0000-0000-0000-000000000000").status == 404
    assert api.get("/api/agents/not-a-uuid").status == 404
    assert api.get("/api/agents/00000000-0000-0000-0000-000000000000/stats").status == 404


def test_agent_stats_per_type_over_the_window(api, db):
    agent = api.register("fra-1")
    check = api.create_check(checks=["http", "ping"]).body
    tasks = {t["check_type"]: t["task_id"] for t in check["tasks"]}
    api.result(agent, tasks["http"], duration_ms=40)
    api.result(agent, tasks["ping"], success=False, duration_ms=10)
    check2 = api.create_check(checks=["http"]).body
    api.result(agent, check2["tasks"][0]["task_id"], duration_ms=60)
    # A task that finished outside the window does not count.
    db.execute("UPDATE check_tasks SET completed_at = now() - interval '2 hours' WHERE id = %s", (tasks["ping"],))
    reply = api.get(f"/api/agents/{agent['agent_id']}/stats?hours=1")
    assert reply.status == 200 and reply.body["window_hours"] == 1
    http = reply.body["stats"]["http"]
    assert http["count"] == 2 and http["success_rate"] == 1.0 and http["avg_ms"] == 50.0
    assert 58 <= http["p95_ms"] <= 60
    assert reply.body["stats"]["ping"]["count"] == 0
    assert api.get(f"/api/agents/{agent['agent_id']}/stats?hours=0").status == 400
    assert api.get(f"/api/agents/{agent['agent_id']}/stats?hours=x").status == 400


def test_heartbeat_reports_the_agents_clock_offset_shown_by_get_agents(api):
    agent = api.register("fast-1", "Frankfurt")
    assert api.get(f"/api/agents/{agent['agent_id']}").body["clock_offset_ms"] is None
    assert api.heartbeat(agent, clock_offset_ms=40_000.5).status == 200
    shown = api.get(f"/api/agents/{agent['agent_id']}").body
    assert shown["clock_offset_ms"] == 40_000.5 and shown["clock_ok"] is True
    assert api.heartbeat(agent).status == 200  # a heartbeat without an estimate keeps the last one
    (listed,) = api.get("/api/agents").body["items"]
    assert listed["clock_offset_ms"] == 40_000.5


def test_an_agent_whose_clock_is_past_the_bound_is_not_chosen(api):
    good = api.register("ok-1", "Frankfurt")
    skewed = api.register("skewed-1", "Virginia")
    api.heartbeat(skewed, clock_offset_ms=-120_000)
    assert api.get(f"/api/agents/{skewed['agent_id']}").body["clock_ok"] is False
    body = api.create_check(checks=["tcp"]).body
    assert [a["id"] for a in body["agents"]] == [good["agent_id"]]
    assert body["selection"]["shortfall"]["missing"] == 1 and "clock" in body["selection"]["shortfall"]["message"]
    only = api.create_check(checks=["tcp"], agents=[skewed["agent_id"]]).body
    assert only["status"] == "failed" and "clock" in only["error"]


def test_a_huge_clock_offset_is_400_naming_the_field(api):
    agent = api.register("odd-1", "Frankfurt")
    reply = api.post(
        "/api/agents/heartbeat",
        raw='{"clock_offset_ms": 1' + "0" * 400 + "}",
        headers={"X-Agent-Token": agent["api_token"]},
    )
    assert reply.status == 400 and reply.body["error"]["details"][0]["field"] == "clock_offset_ms"
