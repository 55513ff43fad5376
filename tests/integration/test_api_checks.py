"""Creating, reading, listing and deleting checks through the API."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from chalicelib import config
from chalicelib.protocol import TaskMessage
from tests.integration.conftest import ADMIN_TOKEN


@pytest.fixture
def agent(api):
    return api.register("fra-1", "Frankfurt")


def test_create_check_answers_202_with_location_and_one_task_per_agent_and_type(api, agent):
    other = api.register("sin-1", "Singapore")
    reply = api.create_check("https://example.com/health", checks=["http", "tcp"])
    assert reply.status == 202
    body = reply.body
    assert reply.headers["Location"] == f"/api/checks/{body['check_id']}"
    assert body["status"] == "pending" and body["error"] is None
    pairs = {(t["agent_id"], t["check_type"]) for t in body["tasks"]}
    assert pairs == {(a["agent_id"], t) for a in (agent, other) for t in ("http", "tcp")}
    assert {a["name"] for a in body["agents"]} == {"fra-1", "sin-1"}


def test_created_tasks_are_on_their_own_agents_stream_as_task_messages(api, agent, redis_client):
    other = api.register("sin-1", "Singapore")
    body = api.create_check(checks=["dns"], options={"dns": {"record_type": "MX"}}).body
    for a in (agent, other):
        entries = redis_client.xrange(a["stream"])
        assert len(entries) == 1
        message = TaskMessage.from_fields(entries[0][1])
        assert message.agent_id == a["agent_id"] and message.check_id == body["check_id"]
        assert message.target == "example.com" and message.options["record_type"] == "MX"
        assert message.deadline_ms > 0 and message.created_at.endswith("Z")


def test_task_deadline_is_timeout_plus_slack(api, agent, db):
    body = api.create_check(checks=["http"], options={"http": {"timeout": 5}}).body
    row = db.execute(
        "SELECT extract(epoch FROM deadline_at - created_at) AS s FROM check_tasks WHERE id = %s",
        (body["tasks"][0]["task_id"],),
    ).fetchone()
    assert float(row["s"]) == pytest.approx(5 + 10, abs=0.5)


def test_no_online_agent_stores_a_failed_check_with_the_reason(api, db):
    reply = api.create_check(checks=["ping"])
    assert reply.status == 202
    assert reply.body["status"] == "failed" and "no agent is online" in reply.body["error"]
    assert reply.body["tasks"] == []
    check = api.get(f"/api/checks/{reply.body['check_id']}").body
    assert check["status"] == "failed" and check["error"] == reply.body["error"]
    assert check["completed_at"] is not None


def test_offline_agents_are_not_chosen(api, agent, db, redis_client):
    # An agent that stopped beating: its heartbeat key expired, PostgreSQL's is a minute old.
    db.execute("UPDATE agents SET last_heartbeat = now() - interval '1 minute'")
    redis_client.delete(f"hc:agent:{agent['agent_id']}:hb")
    reply = api.create_check()
    assert reply.body["status"] == "failed"


def test_agents_are_filtered_by_capability_location_ids_and_limit(api, agent, db, redis_client):
    sin = api.register("sin-1", "Singapore", capabilities=["ping"])
    va = api.register("iad-1", "Virginia", region="us-east-1")
    # capability: only agents that can run the type get a task for it
    tasks = api.create_check(checks=["http", "ping"]).body["tasks"]
    assert {(t["agent_id"], t["check_type"]) for t in tasks if t["agent_id"] == sin["agent_id"]} == {
        (sin["agent_id"], "ping")
    }
    # location (or region), case-insensitively
    body = api.create_check(locations=["frankfurt", "US-EAST-1"]).body
    assert {a["name"] for a in body["agents"]} == {"fra-1", "iad-1"}
    # explicit ids
    body = api.create_check(agents=[va["agent_id"]]).body
    assert [a["name"] for a in body["agents"]] == ["iad-1"]
    # limit spreads over locations
    body = api.create_check(checks=["ping"], limit=2).body
    assert len(body["agents"]) == 2 and len({a["location"] for a in body["agents"]}) == 2
    # nobody fits
    body = api.create_check(checks=["traceroute"], agents=[sin["agent_id"]]).body
    assert body["status"] == "failed" and "traceroute" in body["error"]
    db.execute("UPDATE agents SET last_heartbeat = now() - interval '1 minute' WHERE name = 'sin-1'")
    redis_client.delete(f"hc:agent:{sin['agent_id']}:hb")
    body = api.create_check(checks=["ping"], locations=["Singapore"]).body
    assert body["status"] == "failed" and "Singapore" in body["error"]


def test_a_location_no_agent_has_is_400_naming_it(api, agent):
    api.register("iad-1", "Virginia", region="us-east-1")
    reply = api.create_check(locations=["Frankfurt", "us-east-1", "Mars"])
    assert reply.status == 400 and reply.body["error"]["details"][0]["field"] == "locations[2]"
    assert "Mars" in reply.body["error"]["message"]


def test_unknown_agent_id_in_the_selection_is_400_naming_it(api, agent):
    reply = api.create_check(agents=[agent["agent_id"], "00000000-0000-0000-0000-000000000001"])
    assert reply.status == 400 and reply.body["error"]["details"][0]["field"] == "agents[1]"
    reply = api.create_check(agents=["nope"])
    assert reply.status == 400 and reply.body["error"]["details"][0]["field"] == "agents[0]"


SSRF_CORPUS = [
    "127.1",
    "2130706433",
    "0x7f000001",
    "[::ffff:127.0.0.1]",
    "169.254.169.254",
    "10.0.0.1",
    "100.64.0.1",
    "fd00::1",
    "224.0.0.1",
    "0.0.0.0",
    "http://127.0.0.1:8080/admin",
    "localhost",
]


@pytest.mark.parametrize("target", SSRF_CORPUS)
def test_private_and_reserved_literals_are_refused_unless_allowed(api, agent, target):
    config.reset_settings(allow_private_targets=False)
    reply = api.create_check(target)
    assert reply.status == 400, reply.body
    assert reply.body["error"]["code"] == "blocked_target"
    assert reply.body["error"]["details"][0]["field"] == "target"
    config.reset_settings(allow_private_targets=True)
    assert api.create_check(target).status == 202


@pytest.mark.parametrize(
    "body, field",
    [
        ({"checks": ["http"]}, "target"),
        ({"target": 42, "checks": ["http"]}, "target"),
        ({"target": "a" * 3000 + ".com", "checks": ["http"]}, "target"),
        ({"target": "ftp://example.com", "checks": ["http"]}, "target"),
        ({"target": "exa mple.com", "checks": ["http"]}, "target"),
        ({"target": "example.com"}, "checks"),
        ({"target": "example.com", "checks": "http"}, "checks"),
        ({"target": "example.com", "checks": []}, "checks"),
        ({"target": "example.com", "checks": ["http", "smtp"]}, "checks[1]"),
        ({"target": "example.com", "checks": ["ping"], "options": {"ping": {"count": 99}}}, "options.ping.count"),
        ({"target": "example.com", "checks": ["ping"], "options": {"ping": {"count": "4"}}}, "options.ping.count"),
        ({"target": "example.com", "checks": ["ping"], "options": {"http": {}}}, "options.http"),
        ({"target": "example.com", "checks": ["ping"], "options": []}, "options"),
        (
            {"target": "example.com", "checks": ["dns"], "options": {"dns": {"record_type": "XYZ"}}},
            "options.dns.record_type",
        ),
        ({"target": "example.com", "checks": ["http"], "limit": 0}, "limit"),
        ({"target": "example.com", "checks": ["http"], "limit": True}, "limit"),
        ({"target": "example.com", "checks": ["http"], "locations": "Frankfurt"}, "locations"),
        ({"target": "example.com", "checks": ["http"], "priority": 1}, "priority"),
    ],
)
def test_bad_check_input_is_400_naming_the_field(api, agent, body, field):
    reply = api.post("/api/checks", body)
    assert reply.status == 400, reply.body
    assert reply.body["error"]["details"][0]["field"] == field


@pytest.mark.parametrize(
    "raw, code",
    [
        ("{not json", "invalid_json"),
        ("[1, 2]", "validation_error"),
        ("", "validation_error"),
        ('{"target": NaN, "checks": ["http"]}', "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
    ],
)
def test_bad_json_is_400_naming_the_body(api, raw, code):
    reply = api.post("/api/checks", raw=raw)
    assert reply.status == 400 and reply.body["error"]["code"] == code
    assert reply.body["error"]["details"][0]["field"] == "body"


def test_oversized_body_is_400_naming_the_body(api, settings):
    raw = json.dumps({"target": "example.com", "checks": ["http"], "pad": "x" * settings.max_body_bytes})
    reply = api.post("/api/checks", raw=raw)
    assert reply.status == 400 and reply.body["error"]["code"] == "body_too_large"
    assert reply.body["error"]["details"][0]["field"] == "body"


def test_get_check_has_one_row_per_task_including_pending_and_a_summary(api, agent):
    other = api.register("sin-1", "Singapore")
    body = api.create_check(checks=["http", "ping"]).body
    tasks = {(t["agent_id"], t["check_type"]): t["task_id"] for t in body["tasks"]}
    api.result(agent, tasks[(agent["agent_id"], "http")], duration_ms=30)
    api.result(other, tasks[(other["agent_id"], "http")], duration_ms=50)
    api.result(agent, tasks[(agent["agent_id"], "ping")], success=False)
    reply = api.get(f"/api/checks/{body['check_id']}")
    assert reply.status == 200
    check = reply.body
    assert set(check) >= {
        "check_id",
        "target",
        "check_types",
        "options",
        "status",
        "created_at",
        "completed_at",
        "summary",
        "results",
    }
    assert check["status"] == "in_progress" and len(check["results"]) == 4
    assert check["summary"]["http"] == {"ok": 2, "failed": 0, "pending": 0, "total": 2, "median_ms": 40.0}
    assert check["summary"]["ping"] == {"ok": 0, "failed": 1, "pending": 1, "total": 2, "median_ms": None}
    pending = [r for r in check["results"] if r["status"] == "pending"]
    assert pending[0]["agent"] == {"id": other["agent_id"], "name": "sin-1", "location": "Singapore"}
    assert pending[0]["success"] is None and pending[0]["data"] is None
    failed = next(r for r in check["results"] if r["success"] is False)
    assert failed["error"] == {"kind": "refused", "message": "connection refused"}


def test_reading_an_overdue_check_finalises_its_overdue_tasks(api, agent, db):
    body = api.create_check(checks=["http", "ping"]).body
    http = next(t["task_id"] for t in body["tasks"] if t["check_type"] == "http")
    api.result(agent, http)
    db.execute(
        "UPDATE check_tasks SET deadline_at = now() - interval '1 second' WHERE check_id = %s", (body["check_id"],)
    )
    check = api.get(f"/api/checks/{body['check_id']}").body
    assert check["status"] == "completed" and check["completed_at"] is not None
    ping = next(r for r in check["results"] if r["check_type"] == "ping")
    assert ping["status"] == "failed" and ping["error"]["kind"] == "timeout"
    assert check["summary"]["ping"]["failed"] == 1


def test_unknown_check_is_404(api):
    assert api.get("/api/checks/00000000-0000-0000-0000-000000000000").status == 404
    reply = api.get("/api/checks/definitely-not-an-id")
    assert reply.status == 404 and reply.body["error"]["code"] == "not_found"


def test_check_list_is_newest_first_with_keyset_pagination_and_filters(api, agent, db):
    ids = [api.create_check(f"host{i}.example.com").body["check_id"] for i in range(5)]
    # identical timestamps must not lose or repeat rows across pages
    db.execute("UPDATE checks SET created_at = '2026-01-01T00:00:00Z' WHERE id = ANY(%s::uuid[])", (ids[1:3],))
    seen, cursor = [], None
    while True:
        reply = api.get("/api/checks?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert reply.status == 200 and len(reply.body["items"]) <= 2
        seen += [i["check_id"] for i in reply.body["items"]]
        cursor = reply.body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    created = [(c["created_at"], c["check_id"]) for c in api.get("/api/checks?limit=100").body["items"]]
    assert created == sorted(created, reverse=True)
    only = api.get("/api/checks?target=host3.example.com").body["items"]
    assert [c["check_id"] for c in only] == [ids[3]]
    assert api.get("/api/checks?status=completed").body["items"] == []
    assert api.get("/api/checks?status=bogus").status == 400
    assert api.get("/api/checks?cursor=garbage").body["error"]["details"][0]["field"] == "cursor"
    assert api.get("/api/checks?limit=1000").status == 400


def test_check_list_items_carry_the_same_per_type_summary_as_the_check(api, agent):
    other = api.register("sin-1", "Singapore")
    body = api.create_check(checks=["ping", "http"]).body
    tasks = {(t["agent_id"], t["check_type"]): t["task_id"] for t in body["tasks"]}
    for who, rtt in ((agent, 10.0), (other, 30.0)):
        api.result(who, tasks[(who["agent_id"], "ping")], duration_ms=1500, data={"rtt_ms": {"avg": rtt}})
    api.result(agent, tasks[(agent["agent_id"], "http")], success=False)
    pinger = api.register("ping-only", "Frankfurt", capabilities=["ping"])
    unrun = api.create_check(checks=["http"], agents=[pinger["agent_id"]]).body  # failed: no tasks at all
    items = {c["check_id"]: c for c in api.get("/api/checks").body["items"]}
    assert items[body["check_id"]]["summary"] == api.get(f"/api/checks/{body['check_id']}").body["summary"]
    assert items[body["check_id"]]["summary"] == {
        "ping": {"ok": 2, "failed": 0, "pending": 0, "total": 2, "median_ms": 20.0},
        "http": {"ok": 0, "failed": 1, "pending": 1, "total": 2, "median_ms": None},
    }
    assert items[unrun["check_id"]]["summary"] == {
        "http": {"ok": 0, "failed": 0, "pending": 0, "total": 0, "median_ms": None}
    }


def test_a_cursor_python_reads_but_postgresql_would_not_is_still_a_position(api, agent):
    older = api.create_check().body["check_id"]
    # ["2026-W01-1", <uuid>]: an ISO week date, which fromisoformat accepts and PostgreSQL does not
    cursor = base64.urlsafe_b64encode(json.dumps(["2999-W01-1", str(uuid.UUID(int=0))]).encode()).decode()
    reply = api.get(f"/api/checks?cursor={cursor}")
    assert reply.status == 200, reply.body
    assert [c["check_id"] for c in reply.body["items"]] == [older]


def test_delete_check_needs_the_admin_token(api, agent, redis_client):
    check_id = api.create_check().body["check_id"]
    assert api.delete(f"/api/checks/{check_id}").status == 401
    assert api.delete(f"/api/checks/{check_id}", headers={"X-Admin-Token": "wrong"}).status == 403
    reply = api.delete(f"/api/checks/{check_id}", headers={"X-Admin-Token": ADMIN_TOKEN})
    assert reply.status == 204 and not reply.raw
    assert api.get(f"/api/checks/{check_id}").status == 404
    assert redis_client.xlen(agent["stream"]) == 0  # its pending task is no longer offered
    assert api.delete(f"/api/checks/{check_id}", headers={"X-Admin-Token": ADMIN_TOKEN}).status == 404


def test_summary_median_quotes_ping_rtt_not_the_task_duration(api, agent):
    other = api.register("sin-2", "Singapore")
    body = api.create_check(checks=["ping"]).body
    tasks = {t["agent_id"]: t["task_id"] for t in body["tasks"]}
    for who, rtt in ((agent, 10.0), (other, 120.0)):
        api.result(
            who,
            tasks[who["agent_id"]],
            duration_ms=1500,
            data={"packets_sent": 4, "packets_received": 4, "rtt_ms": {"avg": rtt}},
        )
    check = api.get(f"/api/checks/{body['check_id']}").body
    assert check["summary"]["ping"]["median_ms"] == 65.0


def test_get_check_reports_how_its_agents_were_selected(api, agent):
    other = api.register("sin-3", "Singapore")
    body = api.create_check(checks=["tcp"], locations=["Singapore"]).body
    check = api.get(f"/api/checks/{body['check_id']}").body
    assert check["selection"] == {
        "agents": None,
        "locations": ["Singapore"],
        "limit": None,
        "chosen": [other["agent_id"]],
        "requested": 1,
        "shortfall": None,
    }


def test_a_stage_without_a_public_list_lists_checks_only_for_the_admin(api, agent):
    created = api.create_check().body["check_id"]
    config.reset_settings(public_list=False)
    assert api.get("/api/checks").status == 401
    assert api.get("/api/checks", headers={"X-Admin-Token": "wrong"}).status == 403
    reply = api.get("/api/checks", headers={"X-Admin-Token": ADMIN_TOKEN})
    assert reply.status == 200 and [c["check_id"] for c in reply.body["items"]] == [created]
    assert api.get(f"/api/checks/{created}").status == 200  # a check's own link stays public
