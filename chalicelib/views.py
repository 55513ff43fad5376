"""The read side of checks and tasks, and the publishing of their changes.

The views here (one `results` row, the per-type summary) are what
GET /api/checks/{id}, GET /api/checks, GET /api/tasks/{id} and the published
events show, so a live update and a re-read never disagree. The state changes
themselves live in `transitions`.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from . import metrics, queue
from .db import transaction
from .protocol import OPEN_TASK_STATUSES
from .serialize import iso

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
    "mtr": ("rtt_ms", "avg"),
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
        pending = [r for r in mine if r["status"] in OPEN_TASK_STATUSES]
        latencies = [v for r in ok if (v := headline_ms(check_type, r["data"], r["duration_ms"])) is not None]
        summary[check_type] = _type_summary(len(ok), len(pending), len(mine), latencies)
    return summary


def certificates(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Which leaf certificate each agent's http check was shown (the last hop's TLS), grouped by
    SHA-256 fingerprint: `differ` is true when agents saw different ones (a CDN edge or a
    middlebox in some region). None when no result carries a certificate. The UI's Results
    page computes the same from the rows it holds (frontend/src/lib/certificates.ts)."""
    groups: dict[str, dict[str, Any]] = {}
    for row in rows:
        data = row.get("data") if row["check_type"] == "http" else None
        tls = data.get("tls") if isinstance(data, dict) else None
        fingerprint = tls.get("fingerprint_sha256") if isinstance(tls, dict) else None
        if not isinstance(fingerprint, str):
            continue
        group = groups.setdefault(
            fingerprint,
            {
                "fingerprint_sha256": fingerprint,
                "subject": tls.get("subject"),
                "issuer": tls.get("issuer"),
                "agents": [],
            },
        )
        group["agents"].append(row["agent_name"])
    if not groups:
        return None
    leaves = sorted(groups.values(), key=lambda g: (-len(g["agents"]), g["fingerprint_sha256"]))
    return {"differ": len(leaves) > 1, "leaves": leaves}


# The same summary for a page of checks in one grouped query: only each successful
# result's headline value (picked out by _HEADLINE_PATHS) and duration leave the database.
_HEADLINE_SQL = "CASE t.check_type " + " ".join("WHEN %s THEN %s::text[]" for _ in _HEADLINE_PATHS) + " END"
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
            latencies = [
                v for value, duration in (r["latencies"] or []) if (v := _number_or(value, duration)) is not None
            ]
            out[check_id][check_type] = _type_summary(r["ok"], r["pending"], r["total"], latencies)
    return out


def task_rows(conn, *, check_id: str | None = None, task_ids: Iterable[str] | None = None) -> list[dict]:
    if task_ids is not None:
        return conn.execute(TASK_ROWS + " WHERE t.id = ANY(%s::uuid[])" + TASK_ORDER, (list(task_ids),)).fetchall()
    return conn.execute(TASK_ROWS + " WHERE t.check_id = %s" + TASK_ORDER, (check_id,)).fetchall()


# --- publishing: every event about a check leaves through publish_event


class StatusChange(NamedTuple):
    """A check's new status, as published (`completed_at` once it is terminal)."""

    check_id: str
    status: str
    completed_at: datetime | None = None

    @classmethod
    def of(cls, row: dict[str, Any]) -> StatusChange:
        """From a row `transitions.complete_checks` returned."""
        return cls(str(row["id"]), row["status"], row["completed_at"])


def publish_event(check_id: str, event: dict[str, Any], counted: metrics.Batch | None = None) -> None:
    """The one exit for events about a check (DESIGN §4 `hc:check:{id}`): every task change,
    result and status change passes here, so a live-update push hooks in at this one place;
    `counted` (chalicelib/metrics.py) rides in the PUBLISH's round trip."""
    queue.publish(check_id, event, counted)


def publish_check_changes(task_ids: Iterable[str] = (), statuses: Iterable[StatusChange] = (), **extra: Any) -> None:
    """Publish what a change did to its checks: the current row of each task in `task_ids`
    (with `extra`, e.g. `late`), then each check's new status, in that order, so a listener
    sees the last result before the check's verdict."""
    task_ids = list(task_ids)
    rows = []
    if task_ids:
        with transaction() as conn:
            rows = task_rows(conn, task_ids=task_ids)
    publish_task_events([(row, extra) for row in rows], statuses)


def publish_task_events(
    events: Iterable[tuple[dict[str, Any], dict[str, Any]]], statuses: Iterable[StatusChange] = ()
) -> None:
    """`publish_check_changes` for rows the caller already has (a TASK_ROWS row each, e.g. built
    from its statements' RETURNING), with each one's `extra`: no read of its own."""
    out = []
    for row, extra in events:
        check_id = str(row["check_id"])
        view = task_view(row)
        # Called once per transition (the compare-and-set statements return each row once), so
        # a terminal task or a late result is counted here, in the round trip of its PUBLISH.
        out.append(
            (
                check_id,
                {"type": "task", "check_id": check_id, "task": view, **extra},
                metrics.task_event(view, late=bool(extra.get("late"))),
            )
        )
    for change in statuses:
        event = {
            "type": "check",
            "check_id": change.check_id,
            "status": change.status,
            "completed_at": iso(change.completed_at),
        }
        out.append((change.check_id, event, None))
    queue.publish_many(out)  # every event of the change in one round trip, in this order


def publish_deleted(check_id: str) -> None:
    publish_event(check_id, {"type": "check", "check_id": check_id, "status": "deleted"})
