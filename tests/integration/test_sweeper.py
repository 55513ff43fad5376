"""The scheduled sweep, invoked as EventBridge would: idempotent, and harmless when run twice at once."""

from __future__ import annotations

import threading

import pytest

from chalicelib import config


def _sweep(app_client) -> dict:
    event = app_client.events.generate_cw_event(
        source="aws.events",
        detail_type="Scheduled Event",
        detail={},
        resources=["arn:aws:events:us-east-1:1:rule/sweep"],
    )
    return app_client.lambda_.invoke("sweep", event).payload


@pytest.fixture
def agent(api):
    return api.register("fra-1", "Frankfurt")


def test_sweep_marks_agents_offline_after_30s_without_heartbeat(api, app_client, agent, db):
    fresh = api.register("sin-1", "Singapore")
    quiet = api.register("iad-1", "Virginia")  # silent, but not yet for 30 s
    db.execute("UPDATE agents SET last_heartbeat = now() - interval '31 seconds' WHERE id = %s", (agent["agent_id"],))
    db.execute("UPDATE agents SET last_heartbeat = now() - interval '25 seconds' WHERE id = %s", (quiet["agent_id"],))
    counts = _sweep(app_client)
    assert counts["agents_offline"] == 1 and counts["agents_online"] == 2
    rows = {r["id"]: r["status"] for r in db.execute("SELECT id::text, status FROM agents").fetchall()}
    assert rows == {agent["agent_id"]: "offline", fresh["agent_id"]: "online", quiet["agent_id"]: "online"}
    assert _sweep(app_client)["agents_offline"] == 0


def test_sweep_fails_overdue_tasks_as_timeout_or_agent_offline_and_completes_the_check(api, app_client, db):
    alive = api.register("fra-1", "Frankfurt")
    gone = api.register("sin-1", "Singapore")
    check = api.create_check(checks=["http"]).body
    db.execute("UPDATE agents SET last_heartbeat = now() - interval '5 minutes' WHERE id = %s", (gone["agent_id"],))
    db.execute("UPDATE check_tasks SET deadline_at = now() - interval '1 second'")
    counts = _sweep(app_client)
    assert counts["tasks_failed"] == 2 and counts["checks_completed"] == 1
    kinds = {
        r["agent_id"]: r["error"]["kind"]
        for r in db.execute("SELECT agent_id::text, error FROM check_tasks").fetchall()
    }
    assert kinds == {alive["agent_id"]: "timeout", gone["agent_id"]: "agent_offline"}
    assert api.get(f"/api/checks/{check['check_id']}").body["status"] == "completed"
    again = _sweep(app_client)
    assert again["tasks_failed"] == 0 and again["checks_completed"] == 0


def test_sweep_leaves_tasks_before_their_deadline_alone(api, app_client, agent):
    check = api.create_check(checks=["http"]).body
    counts = _sweep(app_client)
    assert counts["tasks_failed"] == 0 and counts["tasks_reenqueued"] == 0
    assert api.get(f"/api/checks/{check['check_id']}").body["status"] == "pending"


def test_sweep_re_enqueues_pending_tasks_whose_stream_entry_was_lost(api, app_client, agent, db, redis_client):
    check = api.create_check(checks=["http", "ping"]).body
    started = check["tasks"][0]["task_id"]
    api.start(agent, started)
    redis_client.flushdb()  # Redis lost: streams, groups and entries gone
    counts = _sweep(app_client)
    assert counts["tasks_reenqueued"] == 1  # the pending one; the started one has its agent
    entries = redis_client.xrange(agent["stream"])
    assert len(entries) == 1 and started not in entries[0][1]["task"]
    assert [g["name"] for g in redis_client.xinfo_groups(agent["stream"])] == ["agent"]
    assert _sweep(app_client)["tasks_reenqueued"] == 0  # the new entry exists now


def test_sweep_enqueues_tasks_whose_first_push_never_happened(api, app_client, agent, db, redis_client):
    check = api.create_check(checks=["http"]).body
    redis_client.delete(agent["stream"])
    # as if Redis had been down at creation: no stream id, created a while ago
    db.execute("UPDATE check_tasks SET stream_id = NULL, enqueued_at = NULL, created_at = now() - interval '1 minute'")
    assert _sweep(app_client)["tasks_reenqueued"] == 1
    assert redis_client.xlen(agent["stream"]) == 1
    assert db.execute("SELECT stream_id FROM check_tasks").fetchone()["stream_id"]
    assert check["check_id"]


def test_sweep_deletes_checks_past_the_retention_period(api, app_client, agent, db):
    old = api.create_check().body["check_id"]
    new = api.create_check().body["check_id"]
    db.execute("UPDATE checks SET created_at = now() - interval '31 days' WHERE id = %s", (old,))
    assert _sweep(app_client)["checks_expired"] == 1
    assert api.get(f"/api/checks/{old}").status == 404
    assert api.get(f"/api/checks/{new}").status == 200
    assert db.execute("SELECT count(*) AS n FROM check_tasks WHERE check_id = %s", (old,)).fetchone()["n"] == 0
    config.reset_settings(retention_days=0)
    assert _sweep(app_client)["checks_expired"] == 1


def test_two_sweeps_at_once_do_each_change_once(api, app_client, db, redis_client):
    agents = [api.register(f"agent-{i}", f"loc-{i % 3}") for i in range(6)]
    for _ in range(5):
        api.create_check(checks=["http", "ping"])
    # half the tasks are overdue, the other half lost their stream entries
    db.execute("UPDATE check_tasks SET deadline_at = now() - interval '1 second' WHERE check_type = 'http'")
    redis_client.flushdb()
    db.execute("UPDATE agents SET last_heartbeat = now() - interval '1 minute' WHERE name = 'agent-0'")

    barrier = threading.Barrier(2)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(_sweep(app_client))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    total = {k: sum(r[k] for r in results) for k in ("agents_offline", "tasks_failed", "tasks_reenqueued")}
    assert total == {"agents_offline": 1, "tasks_failed": 30, "tasks_reenqueued": 30}
    assert sum(redis_client.xlen(a["stream"]) for a in agents) == 30  # no task pushed twice
    failed = db.execute("SELECT count(*) AS n FROM check_tasks WHERE status = 'failed'").fetchone()["n"]
    assert failed == 30
