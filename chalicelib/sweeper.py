"""The scheduled sweep (every minute): keep every state moving forward.

Each step is a compare-and-set statement (see transitions), so two sweeps at
once, or one that crashed half way, leave nothing half done or done twice.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from . import observability, queue, transitions
from .agents import count_online
from .config import get_settings
from .db import run_transaction, transaction
from .fanout import EFFECTIVE_DEADLINE_SQL, PUSH_GRACE_S, REDISPATCH_BATCH, redispatch

log = logging.getLogger(__name__)

RETENTION_BATCH = 5000
# Stream entries older than this belong to tasks that are long terminal (the
# longest task deadline is a few minutes).
STREAM_KEEP_MS = 3600 * 1000


def mark_agents_offline() -> int:
    rows = run_transaction(transitions.mark_agents_offline)
    for row in rows:
        log.info("agent offline", extra={"agent_id": str(row["id"]), "agent_name": row["name"]})
    return len(rows)


def reenqueue_lost_tasks() -> int:
    """Push again the pending tasks whose stream entry is gone (Redis lost or flushed) or
    never existed (Redis was down when they were created); see fanout.redispatch."""
    with transaction() as conn:
        rows = conn.execute(
            f"""SELECT t.id, t.check_id, t.agent_id, t.check_type, t.stream_id, t.enqueued_at,
                       t.deadline_at, t.created_at, c.target, c.options -> t.check_type AS options
                FROM check_tasks t JOIN checks c ON c.id = t.check_id
                WHERE t.status = 'pending' AND {EFFECTIVE_DEADLINE_SQL} > now()
                  AND (t.stream_id IS NOT NULL
                       OR COALESCE(t.enqueued_at, t.created_at) < now() - make_interval(secs => %s))
                ORDER BY t.created_at LIMIT %s""",
            (PUSH_GRACE_S, REDISPATCH_BATCH),
        ).fetchall()
    if not rows:
        return 0
    with_ids = [(str(r["agent_id"]), r["stream_id"]) for r in rows if r["stream_id"]]
    gone = queue.missing_entries(with_ids)
    return redispatch([r for r in rows if r["stream_id"] is None or r["stream_id"] in gone])


def delete_expired() -> int:
    """Checks (with their tasks and results) older than the retention period, in batches."""
    days = get_settings().retention_days
    with transaction() as conn:
        rows = conn.execute(
            """DELETE FROM checks WHERE id IN (
                   SELECT id FROM checks WHERE created_at < now() - make_interval(days => %s)
                   ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED)
               RETURNING id""",
            (days, RETENTION_BATCH),
        ).fetchall()
    return len(rows)


def trim_streams() -> int:
    with transaction() as conn:
        agent_ids = [str(r["id"]) for r in conn.execute("SELECT id FROM agents").fetchall()]
    return queue.trim_streams(agent_ids, int(time.time() * 1000) - STREAM_KEEP_MS)


@observability.tracer.capture_method
def run() -> dict[str, Any]:
    """One sweep. Returns what each step changed; a step whose store is down is skipped."""
    counts: dict[str, Any] = {}
    counts["agents_offline"] = mark_agents_offline()
    counts["tasks_failed"], counts["checks_completed"] = transitions.finalise_overdue()
    for name, step in (("tasks_reenqueued", reenqueue_lost_tasks), ("stream_entries_trimmed", trim_streams)):
        try:
            counts[name] = step()
        except (queue.RedisError, queue.QueueUnavailable, OSError) as exc:
            log.warning("sweep step %s skipped, Redis unavailable: %s", name, exc)
            counts[name] = None
    counts["checks_expired"] = delete_expired()
    with transaction() as conn:
        counts["agents_online"] = count_online(conn)
    observability.gauge("AgentsOnline", counts["agents_online"])
    observability.count("TasksTimedOut", counts["tasks_failed"])
    log.info("sweep done", extra={"counts": counts})
    return counts
