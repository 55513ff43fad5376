"""Fan-out: pushing tasks onto their agents' streams, and remembering where each went.

`checks.create` pushes a new check's tasks; a task whose push failed (Redis down) or
whose stream entry was lost is pushed again by `redispatch`, from the agent's next
heartbeat (every few seconds, and at once after an outage) and from the sweeper. A
task's deadline counts from the push that delivers it; one never pushed within
`DISPATCH_WINDOW_S` of its creation fails `not_dispatched` (transitions).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from . import queue
from .db import autocommit, run_transaction, transaction
from .metrics import Batch
from .protocol import DEADLINE_SLACK_S, TaskMessage, check_timeout_s
from .serialize import epoch_ms, iso

log = logging.getLogger(__name__)

# How long a task that could not be pushed waits for the queue before it fails
# `not_dispatched`: longer than the sweep period (a minute), so the sweep alone,
# without any heartbeat, still delivers it once Redis answers.
DISPATCH_WINDOW_S = 90
# A pending task with no stream id may still be inside the POST that created it (which
# pushes right after its commit) or inside another caller's claimed push: leave it alone
# this long, longer than the Redis client's socket timeout (queue.get_redis).
PUSH_GRACE_S = 6
REDISPATCH_BATCH = 1000

# The SQL for the moment a task `t` is overdue: its deadline, or for one still waiting
# for its first push (pending, no stream entry), the end of the dispatch window.
EFFECTIVE_DEADLINE_SQL = (
    f"GREATEST(t.deadline_at, CASE WHEN t.status = 'pending' AND t.stream_id IS NULL "
    f"THEN t.created_at + make_interval(secs => {DISPATCH_WINDOW_S}) END)"
)


def task_message(row: dict[str, Any]) -> TaskMessage:
    """The stream message (DESIGN §4) of a task row carrying its check's target and the options
    of its type."""
    return TaskMessage(
        task_id=str(row["id"]),
        check_id=str(row["check_id"]),
        agent_id=str(row["agent_id"]),
        check_type=row["check_type"],
        target=row["target"],
        options=row["options"] or {},
        deadline_ms=epoch_ms(row["deadline_at"]),
        created_at=iso(row["created_at"]),
    )


def push_tasks(rows: Iterable[dict[str, Any]], metrics: Batch | None = None, ensure_groups: bool = False) -> int:
    """Push the tasks of `rows` in one Redis round trip and store each one's stream entry id;
    `metrics` (what the caller counts) rides in that round trip; `ensure_groups`: see queue.enqueue.

    Rows need id, check_id, agent_id, check_type, target, options, deadline_at and
    created_at. Redis being down pushes nothing (logged): the tasks stay `pending` in
    PostgreSQL and the sweeper pushes them when Redis is back. Returns how many went out.
    """
    messages = [task_message(r) for r in rows]
    if not messages:
        return 0
    try:
        ids = queue.enqueue(messages, metrics, ensure_groups=ensure_groups)
    except (queue.RedisError, queue.QueueUnavailable, OSError) as exc:
        log.warning("enqueue of %d task(s) failed; the sweeper will push them again: %s", len(messages), exc)
        return 0
    if ids:
        with autocommit() as conn:  # one statement: its own transaction, one round trip
            conn.execute(
                """UPDATE check_tasks t SET stream_id = v.sid, enqueued_at = now()
                   FROM unnest(%s::uuid[], %s::text[]) AS v(id, sid) WHERE t.id = v.id""",
                (list(ids), list(ids.values())),
            )
    return len(ids)


def task_span_s(row: dict[str, Any]) -> float:
    """A task's time from delivery to deadline: its check's timeout plus the slack."""
    return check_timeout_s(row["check_type"], row["options"] or {}) + DEADLINE_SLACK_S


def undispatched_tasks(conn, agent_id: str, pushed_too: bool = False) -> list[dict[str, Any]]:
    """The agent's pending tasks whose push never happened or failed, past the POST's grace;
    `pushed_too`: and those pushed, whose entry the caller then looks up."""
    return conn.execute(
        f"""SELECT t.id, t.check_id, t.agent_id, t.check_type, t.stream_id, t.enqueued_at,
                   t.deadline_at, t.created_at, c.target, c.options -> t.check_type AS options
            FROM check_tasks t JOIN checks c ON c.id = t.check_id
            WHERE t.agent_id = %s AND t.status = 'pending'
              AND {EFFECTIVE_DEADLINE_SQL} > now()
              AND (t.stream_id IS NULL
                   AND COALESCE(t.enqueued_at, t.created_at) < now() - make_interval(secs => %s)
                   OR %s AND t.stream_id IS NOT NULL)
            ORDER BY t.created_at LIMIT %s""",
        (agent_id, PUSH_GRACE_S, pushed_too, REDISPATCH_BATCH),
    ).fetchall()


def redispatch(rows: list[dict[str, Any]]) -> int:
    """Push again pending tasks that are not on their stream, each at most once however many
    callers (sweeps, heartbeats) hold the same rows, with its deadline counted from now.

    A task is claimed by moving its `enqueued_at` on from the value the caller read; a
    caller that read the same value then claims nothing. The new deadline is capped, so a
    task lost again and again cannot live for ever.
    """
    if not rows:
        return 0
    claimed = run_transaction(lambda conn: _claim(conn, rows))
    return push_tasks(
        ({**r, "deadline_at": claimed[str(r["id"])]} for r in rows if str(r["id"]) in claimed), ensure_groups=True
    )


def _claim(conn, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """{task id: its new deadline} for the rows this caller claimed."""
    return {
        str(r["id"]): r["deadline_at"]
        for r in conn.execute(
            f"""UPDATE check_tasks t SET enqueued_at = clock_timestamp(), stream_id = NULL,
                   deadline_at = GREATEST(t.deadline_at, LEAST(
                       clock_timestamp() + make_interval(secs => v.span),
                       t.created_at + make_interval(secs => v.span + {DISPATCH_WINDOW_S})))
            FROM unnest(%s::uuid[], %s::timestamptz[], %s::float8[]) AS v(id, seen, span)
            WHERE t.id = v.id AND t.status = 'pending' AND t.enqueued_at IS NOT DISTINCT FROM v.seen
            RETURNING t.id, t.deadline_at""",
            ([str(r["id"]) for r in rows], [r["enqueued_at"] for r in rows], [task_span_s(r) for r in rows]),
        ).fetchall()
    }


def dispatch_for_agent(agent_id: str, entries_lost: bool = False) -> int:
    """Push the agent's undelivered tasks (called on its heartbeat, once Redis has answered it).

    The fast path after a Redis outage: each agent heart-beats every few seconds, so its
    tasks go out within one interval of recovery instead of waiting for the next sweep.
    `entries_lost`: Redis may have lost its data (the heartbeat key was gone), so the agent's
    pushed tasks whose entry is no longer in its stream go out again too. Waiting for the
    sweep instead, a minute, would let most of them pass their deadline (issue 16, suite 2).
    """
    with transaction() as conn:
        rows = undispatched_tasks(conn, agent_id, pushed_too=entries_lost)
    pushed = [(agent_id, r["stream_id"]) for r in rows if r["stream_id"]]
    gone = queue.missing_entries(pushed) if pushed else set()
    return redispatch([r for r in rows if r["stream_id"] is None or r["stream_id"] in gone])
