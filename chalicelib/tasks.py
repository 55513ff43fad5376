"""Tasks: what an agent does with them (start, result, a batch of both) and reading one.

`_deliver` is the single place results and starts enter the system. In ONE transaction it
authenticates the agent, stores each result idempotently (a repeat returns the stored
one), and moves each task and its check on; after the commit it publishes the changes on
`hc:check:{id}` (where the live-update layer listens) from the rows its statements
RETURNed, never from a re-read. POST /api/tasks/{id}/start and /result are a delivery of
one task; POST /api/tasks/results carries up to MAX_BATCH results and starts together,
each answered as its single endpoint would answer it.

Lock order (transitions): the check rows first, in id order, then the task rows, in id
order, so two deliveries at once never wait for each other in a cycle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from psycopg.types.json import Jsonb

from . import bodies, httpopts, inputs, observability, transitions, views
from .agents import token_hash_or_401
from .db import run_transaction, transaction
from .errors import ApiError, Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from .protocol import ERROR_KINDS, MAX_ADDRESS, MAX_DURATION_MS, MAX_ERROR_MESSAGE, OPEN_TASK_STATUSES
from .serialize import epoch_ms, iso

log = logging.getLogger(__name__)

# The most results, and the most starts, one POST /api/tasks/results may carry: one
# transaction's worth, well under the API's body limit at the agent's usual result size.
MAX_BATCH = 100
RESULT_FIELDS = ("success", "duration_ms", "address", "data", "error")

# The agent, and each task named with its check's status, read without locks: the agent
# authenticates in the statement that starts the work.
_AGENT_AND_TASKS = """
SELECT a.id AS agent_id, a.name AS agent_name, a.location AS agent_location,
       t.id, t.check_id, t.agent_id AS owner_id, t.status, t.deadline_at > now() AS startable,
       c.status AS check_status
FROM agents a
LEFT JOIN check_tasks t ON t.id = ANY(%(ids)s::uuid[])
LEFT JOIN checks c ON c.id = t.check_id
WHERE a.api_token_hash = %(token_hash)s
"""
_LOCK_CHECKS = "SELECT id, status FROM checks WHERE id = ANY(%s::uuid[]) ORDER BY id FOR UPDATE"
# The task columns of a view row (views.TASK_ROWS), as the statements below RETURN them.
_TASK_COLUMNS = """t.id AS task_id, t.check_id, t.agent_id, t.check_type, t.status, t.error AS task_error,
    t.attempts, t.created_at, t.deadline_at, t.started_at, t.completed_at"""
_LOCK_TASKS = f"""
SELECT {_TASK_COLUMNS}, r.task_id IS NOT NULL AS stored, r.success AS stored_success,
       r.duration_ms AS stored_duration_ms, r.address AS stored_address, r.data AS stored_data,
       r.error AS stored_error, r.late AS stored_late
FROM check_tasks t LEFT JOIN check_results r ON r.task_id = t.id
WHERE t.id = ANY(%s::uuid[]) ORDER BY t.id FOR UPDATE OF t
"""
# The columns travel in PostgreSQL's binary array format (%b): the text format quotes and escapes
# every element of a jsonb[] in Python (psycopg's ListDumper), 10 ms for 64 HTTP results of about
# 900 bytes each, against 3.2 ms in binary, measured on one connection here.
_INSERT_RESULTS = """
INSERT INTO check_results (task_id, check_id, agent_id, check_type, success, duration_ms, address, data, error, late)
SELECT * FROM unnest(%b::uuid[], %b::uuid[], %b::uuid[], %b::text[], %b::bool[], %b::float8[], %b::text[],
                     %b::jsonb[], %b::jsonb[], %b::bool[])
ON CONFLICT (task_id) DO NOTHING
"""
# A result completes its open task; one for a task never started implies the start (an attempt).
_COMPLETE_TASKS = f"""
UPDATE check_tasks t SET status = 'completed', completed_at = now(), started_at = COALESCE(t.started_at, now()),
                         attempts = CASE WHEN t.status = 'pending' THEN t.attempts + 1 ELSE t.attempts END
WHERE t.id = ANY(%s::uuid[]) AND t.status IN ('pending', 'in_progress')
RETURNING {_TASK_COLUMNS}
"""
_START_TASKS = f"""
UPDATE check_tasks t SET status = 'in_progress', attempts = t.attempts + 1, started_at = COALESCE(t.started_at, now())
WHERE t.id = ANY(%s::uuid[]) AND t.status IN ('pending', 'in_progress') AND t.deadline_at > now()
RETURNING {_TASK_COLUMNS}
"""
_START_CHECKS = """
UPDATE checks SET status = 'in_progress', started_at = now()
WHERE id = ANY(%s::uuid[]) AND status = 'pending' RETURNING id
"""
_STORED_RESULTS = """
SELECT task_id, success, duration_ms, address, data, error, late FROM check_results WHERE task_id = ANY(%s::uuid[])
"""
_NO_RESULT = {"success": None, "data": None, "result_error": None, "duration_ms": None, "address": None, "late": None}


@dataclass
class Entry:
    """One task of a delivery: its id as given, and its parsed result (None for a start), or
    the error its single endpoint would answer before touching the task."""

    task_id: str
    result: dict[str, Any] | None = None
    error: ApiError | None = None
    answer: Any = None  # what the delivery answers for it: a body, or an ApiError


@dataclass
class _Done:
    """What one delivery transaction did besides answering its entries: what to publish."""

    events: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    statuses: list[views.StatusChange] = field(default_factory=list)


@observability.tracer.capture_method(capture_response=False)
def start(token: str | None, task_id: str) -> dict[str, Any]:
    """pending|in_progress -> in_progress, attempts + 1. A terminal task answers 409 task_finished."""
    token_hash = token_hash_or_401(token)
    entry = _path_entry(task_id)
    _run(token_hash, [], [entry])
    return _raise_or_body(entry.answer)


@observability.tracer.capture_method(capture_response=False)
def accept_result(token: str | None, task_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Store a task's result once. Repeats return the stored one (`duplicate: true`); a result
    for a task the API already failed is kept as `late` and leaves the check as it is."""
    token_hash = token_hash_or_401(token)
    entry = _path_entry(task_id)
    if entry.error is None:
        try:
            entry.result = parse_result(body)
        except ValidationFailed as exc:
            entry.error = exc  # answered after the token is checked: 401 comes first, as before
    _run(token_hash, [entry], [])
    return _raise_or_body(entry.answer)


@observability.tracer.capture_method(capture_response=False)
def accept_batch(token: str | None, body: dict[str, Any]) -> dict[str, Any]:
    """POST /api/tasks/results: `{results: [{task_id, success, ...}], started: [task_id]}` in one
    transaction. Each entry is answered `{task_id, status, body}` with the status and body its
    single endpoint (result, start) would give, so one bad entry never hides the others."""
    token_hash = token_hash_or_401(token)
    results, started = parse_batch(body)
    _run(token_hash, results, started)
    return {
        "results": [_entry_answer(e.task_id, e.answer) for e in results],
        "started": [_entry_answer(e.task_id, e.answer) for e in started],
    }


def _path_entry(task_id: str) -> Entry:
    try:
        return Entry(inputs.uuid_or_404(task_id, "task"))
    except NotFound as exc:
        return Entry(str(task_id), error=exc)


def _raise_or_body(answer: Any) -> dict[str, Any]:
    if isinstance(answer, ApiError):
        raise answer
    return answer


def _entry_answer(task_id: str, answer: Any) -> dict[str, Any]:
    if isinstance(answer, ApiError):
        return {"task_id": task_id, "status": answer.status, "body": answer.body()}
    return {"task_id": task_id, "status": 200, "body": answer}


def parse_batch(body: dict[str, Any]) -> tuple[list[Entry], list[Entry]]:
    """The batch's entries; a problem with one entry is that entry's 400 (naming
    `results[i].field`), a problem with the batch's shape is the request's."""
    inputs.reject_unknown(body, ("results", "started"))
    raw_results = _batch_list(body, "results")
    raw_started = _batch_list(body, "started")
    if not raw_results and not raw_started:
        raise ValidationFailed("results or started must name at least one task", field="results")
    seen: set[str] = set()
    results = []
    for i, item in enumerate(raw_results):
        where = f"results[{i}]"
        given = item.get("task_id") if isinstance(item, dict) else None
        entry = Entry(given if isinstance(given, str) else f"{where}")
        try:
            if not isinstance(item, dict):
                raise ValidationFailed(f"{where} must be an object {{task_id, success, ...}}", field=where)
            entry.task_id = _batch_task_id(given, f"{where}.task_id", seen)
            fields = {k: v for k, v in item.items() if k != "task_id"}
            bodies.validate("POST", "/api/tasks/{task_id}/result", fields)  # the single result's schema
            entry.result = parse_result(fields)
        except ValidationFailed as exc:
            entry.error = _within(exc, where)
        results.append(entry)
    started = []
    for i, given in enumerate(raw_started):
        entry = Entry(given if isinstance(given, str) else f"started[{i}]")
        try:
            entry.task_id = _batch_task_id(given, f"started[{i}]", seen)
        except ValidationFailed as exc:
            entry.error = exc
        started.append(entry)
    return results, started


def _batch_list(body: dict[str, Any], name: str) -> list:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationFailed(f"{name} must be a list", field=name)
    if len(value) > MAX_BATCH:
        raise ValidationFailed(
            f"{name} may carry at most {MAX_BATCH} entries; send the rest in another batch", field=name
        )
    return value


def _batch_task_id(given: Any, where: str, seen: set[str]) -> str:
    task_id = inputs.uuid_field(given, where)
    if task_id in seen:
        raise ValidationFailed(f"{where}: task {task_id} is named twice in this batch", field=where)
    seen.add(task_id)
    return task_id


def _within(exc: ValidationFailed, where: str) -> ValidationFailed:
    """`exc` of a result's field, named as the batch entry's (`results[3].duration_ms`)."""
    details = [
        {**d, "field": d["field"] if d.get("field", "").startswith(where) else f"{where}.{d['field']}"}
        for d in exc.details
    ]
    return ValidationFailed(f"{where}: {exc.message}", details=details)


def _run(token_hash: str, results: list[Entry], started: list[Entry]) -> _Done:
    done = run_transaction(lambda conn: _deliver(conn, token_hash, results, started))
    views.publish_task_events(done.events, done.statuses)
    return done


def parse_result(body: dict[str, Any]) -> dict[str, Any]:
    inputs.reject_unknown(body, RESULT_FIELDS)
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


def _deliver(conn, token_hash: str, results: list[Entry], started: list[Entry]) -> _Done:
    """The one transaction of a delivery (see the module docstring)."""
    done = _Done()
    valid = [e for e in results + started if e.error is None]
    rows = conn.execute(_AGENT_AND_TASKS, {"ids": [e.task_id for e in valid], "token_hash": token_hash}).fetchall()
    if not rows:
        raise Unauthorized("agent token is not valid")
    agent = rows[0]
    seen = {str(r["id"]): r for r in rows if r["id"] is not None}
    for entry in results + started:
        if entry.error is None:
            entry.error = _ownership_error(entry.task_id, seen.get(entry.task_id), agent)
        entry.answer = entry.error
    mine_results = [e for e in results if e.error is None]
    mine_started = [e for e in started if e.error is None]

    # The check rows to hold, first: those of results (the last result completes its check),
    # and those of starts that start a pending check or settle an overdue task.
    lock = {str(seen[e.task_id]["check_id"]) for e in mine_results}
    lock |= {
        str(seen[e.task_id]["check_id"])
        for e in mine_started
        if seen[e.task_id]["status"] in OPEN_TASK_STATUSES
        and (seen[e.task_id]["check_status"] == "pending" or not seen[e.task_id]["startable"])
    }
    check_status = {}
    if lock:
        check_status = {str(r["id"]): r["status"] for r in conn.execute(_LOCK_CHECKS, (sorted(lock),)).fetchall()}

    agent_cols = {"agent_name": agent["agent_name"], "agent_location": agent["agent_location"]}
    to_complete: set[str] = set()  # checks whose last open task may have just ended
    under_way: set[str] = set()  # checks with a task started or completed now
    if mine_results:
        under_way |= _store_results(conn, mine_results, agent, agent_cols, done)
        to_complete |= under_way
    if mine_started:
        began, settled = _start_tasks(conn, mine_started, seen, agent_cols, check_status, done)
        under_way |= began
        to_complete |= settled
    pending = sorted(c for c in under_way if check_status.get(c) == "pending")
    newly_started = {str(r["id"]) for r in conn.execute(_START_CHECKS, (pending,)).fetchall()} if pending else set()
    completed = transitions.complete_checks(conn, check_ids=sorted(to_complete)) if to_complete else []
    completed_ids = {str(r["id"]) for r in completed}
    # A start says its check is under way; a check that a result started is announced by its verdict.
    announced = {str(seen[e.task_id]["check_id"]) for e in mine_started} & newly_started
    done.statuses = [views.StatusChange(c, "in_progress") for c in sorted(announced - completed_ids)]
    done.statuses += [views.StatusChange.of(r) for r in completed]
    return done


def _ownership_error(task_id: str, row: dict[str, Any] | None, agent: dict[str, Any]) -> ApiError | None:
    if row is None:
        return NotFound(f"task {task_id} not found")
    if row["owner_id"] != agent["agent_id"]:
        return Forbidden("this task belongs to another agent")
    return None


def _store_results(conn, entries: list[Entry], agent, agent_cols, done: _Done) -> set[str]:
    """Store the results not stored yet and complete their tasks; answer each entry. Returns
    the check ids whose completion to test."""
    tasks = {str(r["task_id"]): r for r in conn.execute(_LOCK_TASKS, (sorted(e.task_id for e in entries),)).fetchall()}
    new, late = [], set()
    for entry in entries:
        task = tasks.get(entry.task_id)
        if task is None:  # deleted with its check since the first read
            entry.answer = NotFound(f"task {entry.task_id} not found")
        elif task["stored"]:
            stored = {k: task[f"stored_{k}"] for k in ("success", "duration_ms", "address", "data", "error", "late")}
            entry.answer = {
                "task_id": entry.task_id,
                "status": task["status"],
                "late": stored["late"],
                "duplicate": True,
                "result": stored,
            }
        else:
            new.append(entry)
            if task["status"] == "failed":
                late.add(entry.task_id)
    if not new:
        return set()
    r = [e.result for e in new]
    conn.execute(
        _INSERT_RESULTS,
        (
            [e.task_id for e in new],
            [tasks[e.task_id]["check_id"] for e in new],
            [agent["agent_id"]] * len(new),
            [tasks[e.task_id]["check_type"] for e in new],
            [x["success"] for x in r],
            [x["duration_ms"] for x in r],
            [x["address"] for x in r],
            [Jsonb(x["data"]) for x in r],
            [Jsonb(x["error"]) if x["error"] else None for x in r],
            [e.task_id in late for e in new],
        ),
    )
    on_time = [e.task_id for e in new if e.task_id not in late]
    rows = {str(t["task_id"]): t for t in conn.execute(_COMPLETE_TASKS, (on_time,)).fetchall()} if on_time else {}
    for entry in new:
        is_late = entry.task_id in late
        row = tasks[entry.task_id] if is_late else rows[entry.task_id]
        entry.answer = {
            "task_id": entry.task_id,
            "status": row["status"],
            "late": is_late,
            "duplicate": False,
        }
        view_row = {**row, **agent_cols, **_result_columns(entry.result), "late": is_late}
        done.events.append((view_row, {"late": is_late}))
    return {str(rows[t]["check_id"]) for t in on_time}


def _result_columns(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "success": result["success"],
        "data": result["data"],
        "result_error": result["error"],
        "duration_ms": result["duration_ms"],
        "address": result["address"],
    }


def _start_tasks(conn, entries: list[Entry], seen, agent_cols, check_status, done: _Done) -> tuple[set, set]:
    """pending|in_progress -> in_progress while the deadline holds; the others answer 409
    task_finished. Returns the check ids of the tasks started, and of those an overdue task
    was failed in (whose completion to test)."""
    rows = {str(t["task_id"]): t for t in conn.execute(_START_TASKS, (sorted(e.task_id for e in entries),)).fetchall()}
    for entry in entries:
        row = rows.get(entry.task_id)
        if row is None:
            continue
        entry.answer = {
            "task_id": entry.task_id,
            "check_id": str(row["check_id"]),
            "check_type": row["check_type"],
            "status": row["status"],
            "attempts": row["attempts"],
            "deadline_ms": epoch_ms(row["deadline_at"]),
            "deadline_at": iso(row["deadline_at"]),
        }
        done.events.append(({**row, **agent_cols, **_NO_RESULT}, {}))
    refused = [e for e in entries if e.task_id not in rows]
    settled = _refuse_starts(conn, refused, seen, check_status, done) if refused else set()
    return {str(r["check_id"]) for r in rows.values()}, settled


def _refuse_starts(conn, entries: list[Entry], seen, check_status, done: _Done) -> set[str]:
    """409 task_finished for tasks that cannot start: terminal already, or past their deadline
    (failed now when their check row is held, as it is when the first read saw them overdue;
    else left to the sweeper). Returns the check ids a task was failed in."""
    task_ids = [e.task_id for e in entries]
    held = [t for t in task_ids if str(seen[t]["check_id"]) in check_status]
    failed = {str(r["id"]) for r in transitions.fail_overdue_tasks(conn, task_ids=held)} if held else set()
    rows = {str(r["task_id"]): r for r in views.task_rows(conn, task_ids=task_ids)}
    stored = {str(r["task_id"]): r for r in conn.execute(_STORED_RESULTS, (task_ids,)).fetchall()}
    for entry in entries:
        task_id = entry.task_id
        row = rows.get(task_id)
        if row is None:  # deleted with its check since the first read
            entry.answer = NotFound(f"task {task_id} not found")
            continue
        if task_id in failed:
            done.events.append((row, {}))
        result = stored.get(task_id)
        if result is not None:
            result = {k: result[k] for k in ("success", "duration_ms", "address", "data", "error", "late")}
        entry.answer = Conflict(
            f"task {task_id} is already {row['status']}; acknowledge it and move on",
            code="task_finished",
            extra={"task": {"task_id": task_id, "status": row["status"], "error": row["task_error"], "result": result}},
        )
    return {str(rows[t]["check_id"]) for t in failed if t in rows}


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
            "options": httpopts.redact_http(extra["options"] or {})
            if view["check_type"] == "http"
            else extra["options"] or {},
            "created_at": iso(extra["created_at"]),
            "deadline_at": iso(extra["deadline_at"]),
        }
    )
    return view
