"""Tasks: what an agent does with one (start, result) and reading one.

`accept_result` is the single place a result enters the system: it stores it
idempotently, moves the task and its check on, and publishes the change on
`hc:check:{id}` (where a live-update layer listens).
"""

from __future__ import annotations

import logging
from typing import Any

from psycopg.types.json import Jsonb

from . import inputs, observability, transitions, views
from .agents import authenticate
from .db import run_transaction, transaction
from .errors import Conflict, Forbidden, NotFound, ValidationFailed
from .protocol import ERROR_KINDS, MAX_ADDRESS, MAX_DURATION_MS, MAX_ERROR_MESSAGE
from .serialize import epoch_ms, iso

log = logging.getLogger(__name__)


def _task_for_agent(conn, task_id: str, agent: dict, lock: bool = False) -> dict[str, Any]:
    row = conn.execute(
        "SELECT id, check_id, agent_id, check_type, status, attempts, deadline_at, error "
        "FROM check_tasks WHERE id = %s" + (" FOR UPDATE" if lock else ""),
        (task_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"task {task_id} not found")
    if row["agent_id"] != agent["id"]:
        raise Forbidden("this task belongs to another agent")
    return row


def _stored_result(conn, task_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT success, duration_ms, address, data, error, late FROM check_results WHERE task_id = %s", (task_id,)
    ).fetchone()
    return dict(row) if row else None


@observability.tracer.capture_method(capture_response=False)
def start(token: str | None, task_id: str) -> dict[str, Any]:
    """pending|in_progress -> in_progress, attempts + 1. A terminal task answers 409 task_finished."""
    agent = authenticate(token)
    task_id = inputs.uuid_or_404(task_id, "task")
    row = run_transaction(lambda conn: _start_task(conn, task_id, agent))
    if row is not None:
        # Its own transaction: that one held the task row, and the lock order is check first.
        started_check = run_transaction(lambda conn: transitions.start_check(conn, str(row["check_id"])))
    else:
        # Terminal already, or past its deadline: settle it now and tell the agent to move on.
        transitions.finalise_overdue(task_id=task_id)
        with transaction() as conn:
            task = _task_for_agent(conn, task_id, agent)
            stored = _stored_result(conn, task_id)
        raise Conflict(
            f"task {task_id} is already {task['status']}; acknowledge it and move on",
            code="task_finished",
            extra={"task": {"task_id": task_id, "status": task["status"], "error": task["error"], "result": stored}},
        )
    views.publish_check_changes(
        [task_id], [views.StatusChange(str(row["check_id"]), "in_progress")] if started_check else []
    )
    return {
        "task_id": task_id,
        "check_id": str(row["check_id"]),
        "check_type": row["check_type"],
        "status": row["status"],
        "attempts": row["attempts"],
        "deadline_ms": epoch_ms(row["deadline_at"]),
        "deadline_at": iso(row["deadline_at"]),
    }


def _start_task(conn, task_id: str, agent: dict) -> dict[str, Any] | None:
    """pending|in_progress -> in_progress while the deadline holds; None if the task cannot start."""
    _task_for_agent(conn, task_id, agent)
    return conn.execute(
        """UPDATE check_tasks SET status = 'in_progress', attempts = attempts + 1,
                                  started_at = COALESCE(started_at, now())
           WHERE id = %s AND status IN ('pending', 'in_progress') AND deadline_at > now()
           RETURNING id, check_id, check_type, status, attempts, deadline_at""",
        (task_id,),
    ).fetchone()


def parse_result(body: dict[str, Any]) -> dict[str, Any]:
    inputs.reject_unknown(body, ("success", "duration_ms", "address", "data", "error"))
    success = inputs.boolean(body, "success", required=True)
    duration = inputs.number(body, "duration_ms", low=0, high=MAX_DURATION_MS)
    address = inputs.string(body, "address", max_len=MAX_ADDRESS)
    data = body.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValidationFailed("data must be an object", field="data")
    error = body.get("error")
    if error is not None:
        if not isinstance(error, dict):
            raise ValidationFailed("error must be an object {kind, message} or null", field="error")
        inputs.reject_unknown(error, ("kind", "message"), prefix="error.")
        kind = inputs.string(error, "kind", required=True, field="error.kind")
        if kind not in ERROR_KINDS:
            raise ValidationFailed(f"error.kind must be one of {', '.join(ERROR_KINDS)}", field="error.kind")
        message = inputs.string(error, "message", max_len=MAX_ERROR_MESSAGE, field="error.message") or ""
        error = {"kind": kind, "message": message}
    elif not success:
        raise ValidationFailed("error {kind, message} is required when success is false", field="error")
    return {"success": success, "duration_ms": duration, "address": address, "data": data, "error": error}


@observability.tracer.capture_method(capture_response=False)
def accept_result(token: str | None, task_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Store a task's result once. Repeats return the stored one (`duplicate: true`); a result
    for a task the API already failed is kept as `late` and leaves the check as it is."""
    agent = authenticate(token)
    task_id = inputs.uuid_or_404(task_id, "task")
    result = parse_result(body)
    outcome = run_transaction(lambda conn: _store_result(conn, task_id, agent, result))
    if outcome["duplicate"]:
        return {
            "task_id": task_id,
            "status": outcome["status"],
            "late": outcome["late"],
            "duplicate": True,
            "result": outcome["result"],
        }
    completed = outcome["completed_check"]
    views.publish_check_changes(
        [task_id], [views.StatusChange.of(completed)] if completed else [], late=outcome["late"]
    )
    return {"task_id": task_id, "status": outcome["status"], "late": outcome["late"], "duplicate": False}


def _store_result(conn, task_id: str, agent: dict, result: dict[str, Any]) -> dict[str, Any]:
    """One transaction of accept_result: store the result unless one is stored, move the task
    and its check on. Returns {status, late, duplicate, result, completed_check}."""
    task = _task_for_agent(conn, task_id, agent)
    # Lock order: check row, then task row (see transitions).
    check = conn.execute("SELECT id, status FROM checks WHERE id = %s FOR UPDATE", (task["check_id"],)).fetchone()
    task = _task_for_agent(conn, task_id, agent, lock=True)
    stored = _stored_result(conn, task_id)
    if stored is not None:
        return {
            "status": task["status"],
            "late": stored["late"],
            "duplicate": True,
            "result": stored,
            "completed_check": None,
        }
    late = task["status"] == "failed"
    conn.execute(
        """INSERT INTO check_results (task_id, check_id, agent_id, check_type, success, duration_ms,
                                      address, data, error, late)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (task_id) DO NOTHING""",
        (
            task_id,
            task["check_id"],
            agent["id"],
            task["check_type"],
            result["success"],
            result["duration_ms"],
            result["address"],
            Jsonb(result["data"]),
            Jsonb(result["error"]) if result["error"] else None,
            late,
        ),
    )
    if late:
        return {"status": task["status"], "late": True, "duplicate": False, "result": None, "completed_check": None}
    conn.execute(
        """UPDATE check_tasks SET status = 'completed', completed_at = now(),
                           started_at = COALESCE(started_at, now())
                    WHERE id = %s AND status IN ('pending', 'in_progress')""",
        (task_id,),
    )
    if check["status"] == "pending":
        transitions.start_check(conn, str(check["id"]))
    done = transitions.complete_checks(conn, check_id=str(check["id"]))
    return {
        "status": "completed",
        "late": False,
        "duplicate": False,
        "result": None,
        "completed_check": done[0] if done else None,
    }


def get_task(task_id: str) -> dict[str, Any]:
    task_id = inputs.uuid_or_404(task_id, "task")
    with transaction() as conn:
        rows = views.task_rows(conn, task_ids=[task_id])
        if not rows:
            raise NotFound(f"task {task_id} not found")
        extra = conn.execute(
            "SELECT t.deadline_at, t.created_at, c.target, c.options -> t.check_type AS options "
            "FROM check_tasks t JOIN checks c ON c.id = t.check_id WHERE t.id = %s",
            (task_id,),
        ).fetchone()
    row = rows[0]
    view = views.task_view(row)
    view.update(
        {
            "check_id": str(row["check_id"]),
            "target": extra["target"],
            "options": extra["options"] or {},
            "created_at": iso(extra["created_at"]),
            "deadline_at": iso(extra["deadline_at"]),
        }
    )
    return view
