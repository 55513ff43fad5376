"""Fan-out: pushing tasks onto their agents' streams, and remembering where each went.

`checks.create` pushes a new check's tasks and the sweeper pushes again those whose
stream entry was lost; both go through `push_tasks`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from . import queue
from .db import transaction
from .metrics import Batch
from .protocol import TaskMessage
from .serialize import epoch_ms, iso

log = logging.getLogger(__name__)


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


def push_tasks(rows: Iterable[dict[str, Any]], metrics: Batch | None = None) -> int:
    """Push the tasks of `rows` in one Redis round trip and store each one's stream entry id;
    `metrics` (what the caller counts) rides in that round trip.

    Rows need id, check_id, agent_id, check_type, target, options, deadline_at and
    created_at. Redis being down pushes nothing (logged): the tasks stay `pending` in
    PostgreSQL and the sweeper pushes them when Redis is back. Returns how many went out.
    """
    messages = [task_message(r) for r in rows]
    if not messages:
        return 0
    try:
        ids = queue.enqueue(messages, metrics)
    except (queue.RedisError, queue.QueueUnavailable, OSError) as exc:
        log.warning("enqueue of %d task(s) failed; the sweeper will push them again: %s", len(messages), exc)
        return 0
    if ids:
        with transaction() as conn:
            conn.execute(
                """UPDATE check_tasks t SET stream_id = v.sid, enqueued_at = now()
                   FROM unnest(%s::uuid[], %s::text[]) AS v(id, sid) WHERE t.id = v.id""",
                (list(ids), list(ids.values())),
            )
    return len(ids)
