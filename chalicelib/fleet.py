"""Fleet operations: an agent's stats, and retiring an agent.

Stats count the agent's tasks that reached a terminal state in the window and
say whose fault each failure was, because a probe network's operator and its
users ask different questions: "is this agent healthy?" (agent failures) and
"was the target up?" (target failures). A failure is the agent's when its
result says `internal` or `agent_offline`, or when the API failed the task
because no result came before the deadline; every other kind (`refused`,
`timeout`, `dns_failure`, ...) is the target's. Latency is each type's headline
value (HTTP total, ping average RTT, TCP connect, DNS query time, traceroute RTT
to the target), over successful results: a ping task lasts its packet interval
(1.5 s for 4 packets), which says nothing about the link.

The stats are read from `agent_rollup` (migration 0006), which triggers keep per agent,
type and hour, so their cost follows the hours in the window, not the rows: the window
is whole hours, from the start of the hour `hours` ago to now. Percentiles come from its
10%-wide histograms, each bucket standing for its mean: exact while a bucket holds one
value, within a bucket's width otherwise. `direct_stats` is the same report computed from
the rows; a test holds the two to agreeing.
"""

from __future__ import annotations

import logging
from typing import Any

from . import inputs, queue, transitions, views
from .db import transaction
from .errors import NotFound
from .metrics import AGENT_FAILURE_KINDS
from .protocol import CHECK_TYPES, heartbeat_key, task_stream_key

log = logging.getLogger(__name__)

STATS_MAX_HOURS = 24 * 30


def _number(path: str) -> str:
    """SQL: the number at a jsonb path of r.data, else NULL (never a cast error)."""
    return f"CASE WHEN jsonb_typeof(r.data #> '{path}') = 'number' THEN (r.data #>> '{path}')::float8 END"


# The headline latency of one successful result (chalicelib/protocol.headline_latency_ms, in SQL).
_LATENCY = f"""CASE WHEN r.success THEN CASE t.check_type
    WHEN 'http' THEN {_number("{timings_ms,total}")}
    WHEN 'ping' THEN {_number("{rtt_ms,avg}")}
    WHEN 'mtr' THEN {_number("{rtt_ms,avg}")}
    WHEN 'tcp' THEN {_number("{connect_ms}")}
    WHEN 'dns' THEN {_number("{query_time_ms}")}
    WHEN 'traceroute' THEN CASE WHEN (r.data ->> 'reached')::boolean THEN
        (SELECT avg(v::text::float8) FROM jsonb_array_elements(r.data -> 'hops' -> -1 -> 'rtts_ms') v
         WHERE jsonb_typeof(v) = 'number') END
    END END"""

_STATS = f"""
WITH done AS (
    SELECT t.check_type, r.success, r.duration_ms, {_LATENCY} AS latency_ms,
           CASE WHEN r.success THEN NULL
                WHEN r.task_id IS NULL THEN 'agent'
                WHEN r.error ->> 'kind' = ANY(%(agent_kinds)s) THEN 'agent'
                ELSE 'target' END AS blame
    FROM check_tasks t
    LEFT JOIN check_results r ON r.task_id = t.id AND NOT r.late
    WHERE t.agent_id = %(agent)s AND t.status IN ('completed', 'failed') AND t.completed_at >= %(since)s
)
SELECT check_type, count(*) AS count,
       count(*) FILTER (WHERE success) AS ok,
       count(*) FILTER (WHERE blame = 'target') AS target_failures,
       count(*) FILTER (WHERE blame = 'agent') AS agent_failures,
       avg(duration_ms) AS avg_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95_ms,
       avg(latency_ms) AS latency_avg_ms,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS latency_p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS latency_p95_ms
FROM done GROUP BY check_type
"""

_FAILURE_KINDS = """
SELECT t.check_type, COALESCE(r.error ->> 'kind', t.error ->> 'kind', 'internal') AS kind, count(*) AS n
FROM check_tasks t
LEFT JOIN check_results r ON r.task_id = t.id AND NOT r.late
WHERE t.agent_id = %(agent)s AND t.status IN ('completed', 'failed') AND NOT COALESCE(r.success, false)
  AND t.completed_at >= %(since)s
GROUP BY 1, 2
"""


def _agent_or_404(conn, agent_id: str) -> dict[str, Any]:
    row = conn.execute("SELECT id, name FROM agents WHERE id = %s AND retired_at IS NULL", (agent_id,)).fetchone()
    if row is None:
        raise NotFound(f"agent {agent_id} not found")
    return row


_WINDOW_START = "date_trunc('hour', now() - make_interval(hours => %(hours)s))"
_ROLLUP = f"""
SELECT check_type, metric, bucket, sum(n) AS n, sum(total) AS total
FROM agent_rollup
WHERE agent_id = %(agent)s AND hour >= {_WINDOW_START}
GROUP BY 1, 2, 3 HAVING sum(n) <> 0
ORDER BY 1, 2, 3
"""


def stats(agent_id: str, params: dict | None) -> dict[str, Any]:
    agent_id = inputs.uuid_or_404(agent_id, "agent")
    hours = inputs.query_int(params, "hours", 24, 1, STATS_MAX_HOURS)
    with transaction() as conn:
        _agent_or_404(conn, agent_id)
        rows = conn.execute(_ROLLUP, {"agent": agent_id, "hours": hours}).fetchall()
    by_type: dict[str, list[dict]] = {}
    for row in rows:
        by_type.setdefault(row["check_type"], []).append(row)
    return {
        "agent_id": agent_id,
        "window_hours": hours,
        "stats": {t: _rollup_stats(by_type.get(t, [])) for t in CHECK_TYPES},
    }


def _rollup_stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One type's stats from its rollup rows (metric, bucket, n, total)."""
    counts = {r["metric"]: int(r["n"]) for r in rows if r["bucket"] == 0 and r["metric"] not in ("dur", "lat")}
    dur = [(r["total"], int(r["n"])) for r in rows if r["metric"] == "dur"]
    lat = [(r["total"], int(r["n"])) for r in rows if r["metric"] == "lat"]
    row = None
    if counts.get("count"):
        row = {
            "count": counts["count"],
            "ok": counts.get("ok", 0),
            "target_failures": counts.get("target", 0),
            "agent_failures": counts.get("agent", 0),
            "avg_ms": _mean(dur),
            "p95_ms": _percentile(dur, 0.95),
            "latency_avg_ms": _mean(lat),
            "latency_p50_ms": _percentile(lat, 0.5),
            "latency_p95_ms": _percentile(lat, 0.95),
        }
    kinds = {m.removeprefix("kind:"): n for m, n in counts.items() if m.startswith("kind:") and n}
    return _type_stats(row, kinds)


def _mean(buckets: list[tuple[float, int]]) -> float | None:
    n = sum(c for _, c in buckets)
    return sum(t for t, _ in buckets) / n if n else None


def _percentile(buckets: list[tuple[float, int]], q: float) -> float | None:
    """percentile_cont(q) over the values, each bucket (in value order) standing for n copies of its mean."""
    n = sum(c for _, c in buckets)
    if not n:
        return None
    position = q * (n - 1)
    below, above = int(position), min(int(position) + 1, n - 1)

    def value_at(k: int) -> float:
        seen = 0
        for total, count in buckets:
            seen += count
            if k < seen:
                return total / count
        return buckets[-1][0] / buckets[-1][1]

    low = value_at(below)
    return low + (position - below) * (value_at(above) - low)


def direct_stats(agent_id: str, hours: int) -> dict[str, Any]:
    """The same report computed from the task and result rows over the same window: the
    definition the rollup must agree with (tests/integration/test_agent_stats_rollup.py)."""
    with transaction() as conn:
        since = conn.execute(f"SELECT {_WINDOW_START} AS since", {"hours": hours}).fetchone()["since"]
        args = {"agent": agent_id, "since": since, "agent_kinds": list(AGENT_FAILURE_KINDS)}
        rows = {r["check_type"]: r for r in conn.execute(_STATS, args).fetchall()}
        kinds = conn.execute(_FAILURE_KINDS, args).fetchall()
    return {
        "agent_id": agent_id,
        "window_hours": hours,
        "stats": {
            t: _type_stats(rows.get(t), {k["kind"]: k["n"] for k in kinds if k["check_type"] == t}) for t in CHECK_TYPES
        },
    }


def _type_stats(row: dict[str, Any] | None, failures: dict[str, int]) -> dict[str, Any]:
    count = row["count"] if row else 0
    return {
        "count": count,
        "ok": row["ok"] if row else 0,
        "target_failures": row["target_failures"] if row else 0,
        "agent_failures": row["agent_failures"] if row else 0,
        "success_rate": _round(row["ok"] / count, 4) if count else None,
        "agent_failure_rate": _round(row["agent_failures"] / count, 4) if count else None,
        "failures_by_kind": failures,
        "avg_ms": _round(row["avg_ms"]) if row else None,
        "p95_ms": _round(row["p95_ms"]) if row else None,
        "latency_avg_ms": _round(row["latency_avg_ms"]) if row else None,
        "latency_p50_ms": _round(row["latency_p50_ms"]) if row else None,
        "latency_p95_ms": _round(row["latency_p95_ms"]) if row else None,
    }


def _round(value, digits: int = 3):
    return None if value is None else round(float(value), digits)


# ---- retiring an agent

_RETIRE = """
UPDATE agents SET retired_at = now(), status = 'offline', last_heartbeat = NULL, current_tasks = 0,
                  api_token_hash = 'retired:' || id::text
WHERE id = %s AND retired_at IS NULL
RETURNING id, name
"""

_FAIL_OPEN_TASKS = """
UPDATE check_tasks SET status = 'failed', completed_at = now(),
       error = jsonb_build_object('kind', 'agent_offline', 'message', 'agent ' || %s || ' was retired')
WHERE agent_id = %s AND status IN ('pending', 'in_progress')
RETURNING id, check_id
"""


def retire(agent_id: str) -> dict[str, Any]:
    """Retire an agent: its token and heartbeat stop counting, its open tasks fail (agent_offline),
    its stream and heartbeat key go; its row stays, so its past results stay, and its name is free."""
    agent_id = inputs.uuid_or_404(agent_id, "agent")
    with transaction() as conn:
        row = conn.execute(_RETIRE, (agent_id,)).fetchone()
        if row is None:
            raise NotFound(f"agent {agent_id} not found")
        failed = conn.execute(_FAIL_OPEN_TASKS, (row["name"], agent_id)).fetchall()
    completed: list[dict] = []
    with transaction() as conn:  # lock order: tasks were updated without their checks (see transitions)
        for check_id in sorted({str(r["check_id"]) for r in failed}):
            completed += transitions.complete_checks(conn, check_id=check_id)
    _forget_in_redis(agent_id)
    views.publish_check_changes([str(r["id"]) for r in failed], [views.StatusChange.of(r) for r in completed])
    log.info("agent retired", extra={"agent_id": agent_id, "agent_name": row["name"], "tasks_failed": len(failed)})
    return {"agent_id": agent_id, "name": row["name"], "status": "retired", "tasks_failed": len(failed)}


def _forget_in_redis(agent_id: str) -> None:
    try:
        queue.get_redis().delete(task_stream_key(agent_id), heartbeat_key(agent_id))
    except (queue.RedisError, queue.QueueUnavailable, OSError) as exc:
        # Harmless if left: nothing reads a retired agent's stream, and the heartbeat key expires.
        log.warning("stream and heartbeat of retired agent %s not removed: %s", agent_id, exc)
