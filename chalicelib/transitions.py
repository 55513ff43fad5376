"""The state changes of tasks, checks and agents, as compare-and-set statements.

Each statement changes a row only if it is still in the state the change starts
from (healthchecks' sendalerts), so running any of them twice, or from two
processes at once, is harmless: the second finds nothing to do. The API (reading
an overdue check, starting a late task) and the sweeper use the same statements.

Lock order, to keep concurrent writers free of deadlocks: a transaction that
touches both takes the check row first, then its tasks; one that takes several of
either (a batch of results, chalicelib/tasks.py) takes them in id order. The
statements here that update tasks without holding the check row run in their own
transactions.
"""

from __future__ import annotations

from typing import Any

from .agents import NOT_ONLINE_SQL, heartbeat_ttl_s
from .db import run_transaction
from .fanout import EFFECTIVE_DEADLINE_SQL
from .views import StatusChange, publish_check_changes

# Fail open tasks past their deadline: not_dispatched if no push of it ever reached the
# queue (fanout's dispatch window), agent_offline if the agent stopped heart-beating,
# else timeout. Optional filters narrow it to a check or a task.
_FAIL_OVERDUE = f"""
UPDATE check_tasks t
SET status = 'failed', completed_at = now(),
    error = CASE WHEN t.status = 'pending' AND t.stream_id IS NULL
                 THEN jsonb_build_object('kind', 'not_dispatched', 'message',
                      'never delivered to agent ' || a.name || ': the task queue was unavailable')
                 WHEN {NOT_ONLINE_SQL}
                 THEN jsonb_build_object('kind', 'agent_offline', 'message',
                      'agent ' || a.name || ' went offline before reporting a result')
                 ELSE jsonb_build_object('kind', 'timeout', 'message',
                      'no result from agent ' || a.name || ' before the deadline')
            END
FROM agents a
WHERE a.id = t.agent_id AND t.status IN ('pending', 'in_progress') AND {EFFECTIVE_DEADLINE_SQL} <= now()
  {{filter}}
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


def fail_overdue_tasks(
    conn, *, check_id: str | None = None, task_id: str | None = None, task_ids: list[str] | None = None
) -> list[dict]:
    params: dict[str, Any] = {"ttl": heartbeat_ttl_s()}
    clauses = []
    if check_id is not None:
        clauses.append("AND t.check_id = %(check_id)s")
        params["check_id"] = check_id
    if task_id is not None:
        clauses.append("AND t.id = %(task_id)s")
        params["task_id"] = task_id
    if task_ids is not None:  # one statement for a batch's overdue starts, not one each
        clauses.append("AND t.id = ANY(%(task_ids)s::uuid[])")
        params["task_ids"] = task_ids
    return conn.execute(_FAIL_OVERDUE.format(filter=" ".join(clauses)), params).fetchall()


def complete_checks(conn, *, check_id: str | None = None, check_ids: list[str] | None = None) -> list[dict]:
    if check_id is not None:
        check_ids = [check_id]
    if check_ids is None:
        return conn.execute(_COMPLETE_CHECKS.format(filter="")).fetchall()
    return conn.execute(
        _COMPLETE_CHECKS.format(filter="AND c.id = ANY(%(ids)s::uuid[])"), {"ids": check_ids}
    ).fetchall()


def mark_agents_offline(conn) -> list[dict]:
    """online -> offline for agents past the heartbeat TTL: the same test every reader applies."""
    return conn.execute(
        f"""UPDATE agents a SET status = 'offline'
            WHERE a.status = 'online' AND {NOT_ONLINE_SQL}
            RETURNING a.id, a.name""",
        {"ttl": heartbeat_ttl_s()},
    ).fetchall()


def finalise_overdue(*, check_id: str | None = None, task_id: str | None = None) -> tuple[int, int]:
    """Fail overdue tasks, then complete the checks that leaves finished; publish both.

    Two transactions, tasks first, so this never holds task rows while waiting
    for a check row (see the lock order above). Returns (tasks failed, checks completed).
    """
    failed = run_transaction(lambda conn: fail_overdue_tasks(conn, check_id=check_id, task_id=task_id))
    check_ids = sorted({str(r["check_id"]) for r in failed})
    if check_id is not None and not check_ids:
        check_ids = [check_id]  # a result may have finished it without completing it
    if check_id is None and task_id is None:
        completed = run_transaction(complete_checks)
    else:
        completed = run_transaction(
            lambda conn: [row for cid in check_ids for row in complete_checks(conn, check_id=cid)]
        )
    publish_check_changes([str(r["id"]) for r in failed], [StatusChange.of(r) for r in completed])
    return len(failed), len(completed)
