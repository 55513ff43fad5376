"""Agent stats come from the rollup (migration 0006) and agree with the same report computed
from the rows (fleet.direct_stats), through every path that ends, moves or removes a task."""

from __future__ import annotations

import random

import pytest

from chalicelib import fleet
from tests.integration.conftest import ADMIN_TOKEN

TYPES = ["http", "ping", "dns", "tcp", "traceroute"]
KINDS = ["refused", "timeout", "internal", "dns_failure", "agent_offline"]


def _data(check_type: str, latency: float) -> dict:
    return {
        "http": {"timings_ms": {"total": latency}},
        "ping": {"rtt_ms": {"avg": latency}},
        "dns": {"query_time_ms": latency},
        "tcp": {"connect_ms": latency},
        "traceroute": {"reached": True, "hops": [{"ttl": 1, "rtts_ms": [latency, latency]}]},
    }[check_type]


def _history(api, db, agent, values, rng) -> None:
    """Checks of every type for `agent`, answered with `values` (durations and latencies) through
    single results and batches, some failed, some failed by their deadline, one late result,
    some moved into earlier hours, one check deleted."""
    token = {"X-Agent-Token": agent["api_token"]}
    tasks = []
    for _ in range(len(values) // len(TYPES) + 1):
        created = api.create_check(checks=TYPES).body
        tasks += [{**t, "check_id": created["check_id"]} for t in created["tasks"]]
    batch = []
    for n, (task, value) in enumerate(zip(tasks, values, strict=False)):
        ok = n % 4 != 3
        body = {
            "success": ok,
            "duration_ms": value * 3,
            "data": _data(task["check_type"], value) if ok else {},
            "error": None if ok else {"kind": rng.choice(KINDS), "message": "x"},
        }
        if n % 2:
            batch.append({"task_id": task["task_id"], **body})
        else:
            assert api.result(agent, task["task_id"], **body).status == 200
    for first in range(0, len(batch), 100):
        reply = api.post("/api/tasks/results", {"results": batch[first : first + 100]}, headers=token)
        assert reply.status == 200 and {r["status"] for r in reply.body["results"]} == {200}
    # The rest fail by their deadline (the API's doing: the agent's failure), one gets a late result.
    rest = [t["task_id"] for t in tasks[len(values) :]]
    db.execute("UPDATE check_tasks SET deadline_at = now() - interval '1 second' WHERE id = ANY(%s::uuid[])", (rest,))
    for check_id in {
        t["check_id"]
        for t in db.execute("SELECT check_id FROM check_tasks WHERE id = ANY(%s::uuid[])", (rest,)).fetchall()
    }:
        assert api.get(f"/api/checks/{check_id}").status == 200  # settles the overdue tasks
    if rest:
        assert api.result(agent, rest[0], duration_ms=5.0).body["late"] is True
    # Some move into earlier hours (one statement for many rows), one check goes.
    moved = [t["task_id"] for t in tasks[: len(values)] if rng.random() < 0.3]
    db.execute(
        "UPDATE check_tasks SET completed_at = completed_at - interval '2 hours' WHERE id = ANY(%s::uuid[])", (moved,)
    )
    gone = tasks[0]["check_id"] if tasks[0]["check_id"] != tasks[-1]["check_id"] else None
    if gone:
        assert api.delete(f"/api/checks/{gone}", headers={"X-Admin-Token": ADMIN_TOKEN}).status == 204


@pytest.mark.parametrize("hours", [1, 3, 24])
def test_the_rollup_agrees_with_the_rows_exactly_when_values_are_far_apart(api, db, hours):
    agent = api.register("rollup-exact")
    rng = random.Random(7)
    # Each value a bucket of its own (buckets are 10% wide; these are 30% apart).
    values = [round(1.3**k, 6) for k in range(1, 40)]
    rng.shuffle(values)
    _history(api, db, agent, values, rng)
    assert fleet.stats(agent["agent_id"], {"hours": str(hours)}) == fleet.direct_stats(agent["agent_id"], hours)


def test_the_rollup_agrees_with_the_rows_within_a_bucket_for_dense_values(api, db):
    agent = api.register("rollup-dense")
    rng = random.Random(11)
    values = [rng.uniform(5, 500) for _ in range(120)]
    _history(api, db, agent, values, rng)
    rolled = fleet.stats(agent["agent_id"], {"hours": "24"})["stats"]
    direct = fleet.direct_stats(agent["agent_id"], 24)["stats"]
    exact = ("count", "ok", "target_failures", "agent_failures", "failures_by_kind", "success_rate", "avg_ms")
    for check_type in TYPES:
        assert rolled[check_type]["count"] > 0
        for key in exact:
            assert rolled[check_type][key] == pytest.approx(direct[check_type][key]), (check_type, key)
        for key in ("p95_ms", "latency_avg_ms", "latency_p50_ms", "latency_p95_ms"):
            assert rolled[check_type][key] == pytest.approx(direct[check_type][key], rel=0.1), (check_type, key)


def test_stats_read_the_rollup_not_the_rows(api, db):
    """What the endpoint reports comes from agent_rollup: emptied, the stats are empty though the rows stay."""
    agent = api.register("rollup-source")
    task = api.create_check(checks=["tcp"]).body["tasks"][0]["task_id"]
    api.result(agent, task, data={"connect_ms": 3.0})
    assert api.get(f"/api/agents/{agent['agent_id']}/stats").body["stats"]["tcp"]["count"] == 1
    db.execute("DELETE FROM agent_rollup WHERE agent_id = %s", (agent["agent_id"],))
    assert api.get(f"/api/agents/{agent['agent_id']}/stats").body["stats"]["tcp"]["count"] == 0
    assert fleet.direct_stats(agent["agent_id"], 24)["stats"]["tcp"]["count"] == 1


def test_the_rollup_merge_keeps_its_plan_between_calls(db):
    """The merge runs in every statement that ends a task. As LANGUAGE sql it was parsed and
    planned on every call (2.3 ms of each result's transaction); PL/pgSQL keeps its plan per
    connection. PostgreSQL says which language a function is in, so this is what is checked."""
    row = db.execute(
        """SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
           WHERE p.proname = 'agent_rollup_merge'"""
    ).fetchone()
    assert row["lanname"] == "plpgsql"
