"""The state changes of tasks, checks and agents, as compare-and-set statements.

Each statement changes a row only if it is still in the state the change starts
from (healthchecks' sendalerts), so running any of them twice, or from two
processes at once, is harmless: the second finds nothing to do. The API (reading
an overdue check, starting a late task) and the sweeper use the same statements.

Lock order, to keep concurrent writers free of deadlocks: a transaction that
touches both takes the check row first, then its tasks. The statements here that
update tasks without holding the check row run in their own transactions.
"""
from __future__ import annotations

import statistics
from typing import Any, Iterable

from . import metrics, queue
from .config import get_settings
from .db import transaction
from .serialize import iso

OPEN = ("pending", "in_progress")

# Fail open tasks past their deadline: agent_offline if the agent stopped
# heart-beating, else timeout. Optional filters narrow it to a check or a task.
_FAIL_OVERDUE = """
UPDATE check_tasks t
SET status = 'failed', completed_at = now(),
    error = CASE WHEN a.last_heartbeat IS NULL OR a.last_heartbeat <= now() - make_interval(secs => %(ttl)s)
                 THEN jsonb_build_object('kind', 'agent_offline', 'message',
                      'agent ' || a.name || ' went offline before reporting a result')
                 ELSE jsonb_build_object('kind', 'timeout', 'message',
                      'no result from agent ' || a.name || ' before the deadline')
            END
FROM agents a
WHERE a.id = t.agent_id AND t.status IN ('pending', 'in_progress') AND t.deadline_at <= now()
  {filter}
RETURNING t.id, t.check_id
"""

# A check whose tasks are all terminal is completed (pending/in_progress -> completed).
_COMPLETE_CHECKS = """
UPDATE checks c SET status = 'completed', completed_at = now()
WHERE c.status IN ('pending', 'in_progress') {filter}
  AND EXISTS (SELECT 1 FROM check_tasks t WHERE t.check_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM check_tasks t
                  WHERE t.check_id = c.id AND t.status IN ('pending', 'in_progress'))
RETURNING c.id, c.status, c.completed_at
"""


def fail_overdue_tasks(conn, *, check_id: str | None = None, task_id: str | None = None) -> list[dict]:
    params: dict[str, Any] = {"ttl": get_settings().heartbeat_ttl_s}
    clauses = []
    if check_id is not None:
        clauses.append("AND t.check_id = %(check_id)s")
        params["check_id"] = check_id
    if task_id is not None:
        clauses.append("AND t.id = %(task_id)s")
        params["task_id"] = task_id
    return conn.execute(_FAIL_OVERDUE.format(filter=" ".join(clauses)), params).fetchall()


def complete_checks(conn, *, check_id: str | None = None) -> list[dict]:
    if check_id is None:
        return conn.execute(_COMPLETE_CHECKS.format(filter="")).fetchall()
    return conn.execute(_COMPLETE_CHECKS.format(filter="AND c.id = %(id)s"), {"id": check_id}).fetchall()


def start_check(conn, check_id: str) -> bool:
    """pending -> in_progress when its first task starts."""
    row = conn.execute("UPDATE checks SET status = 'in_progress', started_at = now() "
                       "WHERE id = %s AND status = 'pending' RETURNING id", (check_id,)).fetchone()
    return row is not None


def mark_agents_offline(conn) -> list[dict]:
    return conn.execute(
        """UPDATE agents SET status = 'offline'
           WHERE status = 'online'
             AND (last_heartbeat IS NULL OR last_heartbeat <= now() - make_interval(secs => %s))
           RETURNING id, name""",
        (get_settings().heartbeat_ttl_s,),
    ).fetchall()


def finalise_overdue(*, check_id: str | None = None, task_id: str | None = None) -> tuple[int, int]:
    """Fail overdue tasks, then complete the checks that leaves finished; publish both.

    Two transactions, tasks first, so this never holds task rows while waiting
    for a check row (see the lock order above). Returns (tasks failed, checks completed).
    """
    with transaction() as conn:
        failed = fail_overdue_tasks(conn, check_id=check_id, task_id=task_id)
    check_ids = sorted({str(r["check_id"]) for r in failed})
    if check_id is not None and not check_ids:
        check_ids = [check_id]  # a result may have finished it without completing it
    completed: list[dict] = []
    with transaction() as conn:
        if check_id is None and task_id is None:
            completed = complete_checks(conn)
        else:
            for cid in check_ids:
                completed += complete_checks(conn, check_id=cid)
    publish_tasks([str(r["id"]) for r in failed])
    for row in completed:
        publish_check(str(row["id"]), row["status"], row["completed_at"])
    return len(failed), len(completed)


# --- views shared by GET /api/checks/{id}, GET /api/tasks/{id} and the published events

TASK_ROWS = """
SELECT t.id AS task_id, t.check_id, t.agent_id, a.name AS agent_name, a.location AS agent_location,
       t.check_type, t.status, t.error AS task_error, t.attempts, t.created_at, t.deadline_at,
       t.started_at, t.completed_at,
       r.success, r.data, r.error AS result_error, r.duration_ms, r.address, r.late
FROM check_tasks t
JOIN agents a ON a.id = t.agent_id
LEFT JOIN check_results r ON r.task_id = t.id
"""
TASK_ORDER = " ORDER BY a.location, a.name, t.check_type"


def task_view(row: dict[str, Any]) -> dict[str, Any]:
    """One `results` row (DESIGN §5)."""
    has_result = row["success"] is not None
    status = row["status"]
    if status == "failed":
        success: bool | None = False
        error = row["task_error"] or row["result_error"]
    elif has_result:
        success = row["success"]
        error = row["result_error"]
    else:
        success, error = None, None
    return {
        "task_id": str(row["task_id"]),
        "agent": {"id": str(row["agent_id"]), "name": row["agent_name"], "location": row["agent_location"]},
        "check_type": row["check_type"],
        "status": status,
        "success": success,
        "data": row["data"] if has_result else None,
        "error": error,
        "duration_ms": row["duration_ms"],
        "address": row["address"],
        "late": bool(row["late"]),
        "attempts": row["attempts"],
        "started_at": iso(row["started_at"]),
        "completed_at": iso(row["completed_at"]),
    }


# The latency a verdict line quotes, per type. A ping task's duration is mostly the
# gap between packets, so its headline is the RTT; the others fall back to the duration.
_HEADLINE_PATHS = {
    "http": ("timings_ms", "total"),
    "ping": ("rtt_ms", "avg"),
    "tcp": ("connect_ms",),
    "dns": ("query_time_ms",),
}


def headline_ms(check_type: str, data: Any, duration_ms: float | None) -> float | None:
    value: Any = data if isinstance(data, dict) else {}
    for key in _HEADLINE_PATHS.get(check_type, ()):
        value = value.get(key) if isinstance(value, dict) else None
    return _number_or(value, duration_ms)


def _number_or(value: Any, fallback: float | None) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return fallback


def _type_summary(ok: int, pending: int, total: int, latencies: list[float]) -> dict[str, Any]:
    return {
        "ok": ok,
        "failed": total - ok - pending,
        "pending": pending,
        "total": total,
        "median_ms": round(statistics.median(latencies), 3) if latencies else None,
    }


def summarise(check_types: list[str], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per type `{ok, failed, pending, total, median_ms}`: median_ms is the median headline
    latency of the successful results (HTTP total, ping average RTT, TCP connect, DNS query
    time, else the task's duration)."""
    summary = {}
    for check_type in check_types:
        mine = [r for r in rows if r["check_type"] == check_type]
        ok = [r for r in mine if r["status"] == "completed" and r["success"]]
        pending = [r for r in mine if r["status"] in OPEN]
        latencies = [v for r in ok if (v := headline_ms(check_type, r["data"], r["duration_ms"])) is not None]
        summary[check_type] = _type_summary(len(ok), len(pending), len(mine), latencies)
    return summary


# The same summary for a page of checks in one grouped query: only each successful
# result's headline value (picked out by _HEADLINE_PATHS) and duration leave the database.
_HEADLINE_SQL = ("CASE t.check_type "
                 + " ".join("WHEN %s THEN %s::text[]" for _ in _HEADLINE_PATHS) + " END")
_SUMMARIES = f"""
SELECT t.check_id, t.check_type, count(*) AS total,
       count(*) FILTER (WHERE t.status = 'completed' AND r.success) AS ok,
       count(*) FILTER (WHERE t.status IN ('pending', 'in_progress')) AS pending,
       jsonb_agg(jsonb_build_array(r.data #> {_HEADLINE_SQL}, r.duration_ms))
           FILTER (WHERE t.status = 'completed' AND r.success) AS latencies
FROM check_tasks t LEFT JOIN check_results r ON r.task_id = t.id
WHERE t.check_id = ANY(%s::uuid[])
GROUP BY t.check_id, t.check_type
"""


def summaries(conn, checks: list[tuple[str, list[str]]]) -> dict[str, dict[str, Any]]:
    """{check_id: summary} for (check_id, check_types) pairs, as `summarise` would give."""
    params: list[Any] = [v for check_type, path in _HEADLINE_PATHS.items() for v in (check_type, list(path))]
    rows = conn.execute(_SUMMARIES, (*params, [cid for cid, _ in checks])).fetchall() if checks else []
    by_key = {(str(r["check_id"]), r["check_type"]): r for r in rows}
    out = {}
    for check_id, check_types in checks:
        out[check_id] = {}
        for check_type in check_types:
            r = by_key.get((check_id, check_type))
            if r is None:
                out[check_id][check_type] = _type_summary(0, 0, 0, [])
                continue
            latencies = [v for value, duration in (r["latencies"] or [])
                         if (v := _number_or(value, duration)) is not None]
            out[check_id][check_type] = _type_summary(r["ok"], r["pending"], r["total"], latencies)
    return out


def task_rows(conn, *, check_id: str | None = None, task_ids: Iterable[str] | None = None) -> list[dict]:
    if task_ids is not None:
        return conn.execute(TASK_ROWS + " WHERE t.id = ANY(%s::uuid[])" + TASK_ORDER,
                            (list(task_ids),)).fetchall()
    return conn.execute(TASK_ROWS + " WHERE t.check_id = %s" + TASK_ORDER, (check_id,)).fetchall()


def publish_tasks(task_ids: list[str], **extra: Any) -> None:
    """Publish the current row of each task on its check's channel."""
    if not task_ids:
        return
    with transaction() as conn:
        rows = task_rows(conn, task_ids=task_ids)
    for row in rows:
        view = task_view(row)
        # Called once per transition (the compare-and-set statements return each row once), so
        # a terminal task or a late result is counted here, in the round trip of its PUBLISH.
        queue.publish(str(row["check_id"]), {"type": "task", "check_id": str(row["check_id"]),
                                             "task": view, **extra},
                      metrics=metrics.task_event(view, late=bool(extra.get("late"))))


def publish_check(check_id: str, status: str, completed_at=None) -> None:
    queue.publish(check_id, {"type": "check", "check_id": check_id, "status": status,
                             "completed_at": iso(completed_at)})
