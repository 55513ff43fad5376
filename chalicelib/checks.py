"""Checks: create (validate, choose agents, store, fan out), read, list, delete."""

from __future__ import annotations

import base64
import hmac
import json
import logging
import math
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from . import httpopts, inputs, metrics, observability, queue, targets, transitions, verdict, views
from .agents import clock_ok, online_agents
from .config import get_settings
from .db import autocommit, transaction
from .errors import AgentsBusy, BadRequest, Forbidden, NotFound, Unauthorized, ValidationFailed
from .fanout import EFFECTIVE_DEADLINE_SQL, push_tasks
from .protocol import (
    CHECK_STATUSES,
    CHECK_TYPES,
    DEADLINE_SLACK_S,
    MAX_CLOCK_OFFSET_S,
    MAX_LOCATION,
    MAX_QUEUE_WAIT_S,
    OptionError,
    check_timeout_s,
    normalize_options,
)
from .serialize import iso
from .targets import MAX_TARGET_LENGTH, BlockedTarget, TargetError, parse_target

log = logging.getLogger(__name__)

MAX_AGENTS_PER_CHECK = 100
MAX_LOCATIONS = 20
LIST_DEFAULT, LIST_MAX = 20, 100


@dataclass
class CheckRequest:
    target: str
    check_types: list[str]
    options: dict[str, dict[str, Any]]
    agents: list[str] | None = None
    locations: list[str] | None = None
    limit: int | None = None
    selection: dict[str, Any] = field(default_factory=dict)


def parse_request(body: dict[str, Any]) -> CheckRequest:
    """Validate a POST /api/checks body; every problem is a 400 naming its field."""
    inputs.reject_unknown(body, ("target", "checks", "options", "agents", "locations", "limit"))
    raw_target = body.get("target")
    if raw_target is None:
        raise ValidationFailed("target is required", field="target")
    if not isinstance(raw_target, str):
        raise ValidationFailed("target must be a string", field="target")
    if len(raw_target) > MAX_TARGET_LENGTH:
        raise ValidationFailed(f"target must be at most {MAX_TARGET_LENGTH} characters", field="target")
    try:
        target = parse_target(raw_target, get_settings().allow_private_targets)
    except BlockedTarget as exc:
        raise BadRequest(exc.message, field="target", code="blocked_target") from None
    except TargetError as exc:
        raise ValidationFailed(exc.message, field=exc.field) from None

    check_types = inputs.string_list(
        body, "checks", max_items=len(CHECK_TYPES), max_len=32, choices=CHECK_TYPES, required=True
    )
    if not check_types:
        raise ValidationFailed("checks must name at least one check type", field="checks")

    given = body.get("options")
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ValidationFailed("options must be an object keyed by check type", field="options")
    for key in given:
        if key not in check_types:
            raise ValidationFailed(
                f"options for {key!r}, which is not one of the requested checks", field=f"options.{key}"
            )
    options = {}
    for check_type in check_types:
        try:
            options[check_type] = targets.apply_assumptions(
                check_type,
                target,
                given.get(check_type),
                normalize_options(check_type, given.get(check_type)),
                get_settings().allow_private_targets,
            )
        except OptionError as exc:
            raise ValidationFailed(exc.message, field=exc.field) from None
        except BlockedTarget as exc:
            raise BadRequest(exc.message, field=exc.field, code="blocked_target") from None

    agent_ids = None
    if body.get("agents") is not None:
        raw = inputs.string_list(body, "agents", max_items=MAX_AGENTS_PER_CHECK, max_len=64)
        agent_ids = [inputs.uuid_field(a, f"agents[{i}]") for i, a in enumerate(raw)]
    locations = inputs.string_list(body, "locations", max_items=MAX_LOCATIONS, max_len=MAX_LOCATION)
    limit = inputs.integer(body, "limit", low=1, high=MAX_AGENTS_PER_CHECK)
    return CheckRequest(
        target=target.raw, check_types=check_types, options=options, agents=agent_ids, locations=locations, limit=limit
    )


def check_selection(req: CheckRequest) -> None:
    """Every agent id and location asked for names a registered agent (online or not), else a
    400 naming the field. Run before the rate limit is charged, so a typo costs no quota."""
    if not req.agents and not req.locations:
        return
    with autocommit() as conn:  # reads only: no transaction's BEGIN and COMMIT
        if req.agents:
            known = {
                str(r["id"])
                for r in conn.execute("SELECT id FROM agents WHERE id = ANY(%s::uuid[])", (req.agents,)).fetchall()
            }
            for i, agent_id in enumerate(req.agents):
                if agent_id not in known:
                    raise ValidationFailed(f"agents[{i}]: no agent with id {agent_id}", field=f"agents[{i}]")
        if req.locations:
            wanted = [loc.lower() for loc in req.locations]
            known = {
                r["name"]
                for r in conn.execute(
                    """SELECT lower(location) AS name FROM agents WHERE lower(location) = ANY(%s)
                   UNION SELECT lower(region) FROM agents WHERE lower(region) = ANY(%s)""",
                    (wanted, wanted),
                ).fetchall()
            }
            for i, location in enumerate(req.locations):
                if location.lower() not in known:
                    raise ValidationFailed(
                        f"locations[{i}]: no agent has the location or region {location!r}", field=f"locations[{i}]"
                    )


def _choose_agents(conn, req: CheckRequest) -> tuple[list[dict], str | None]:
    """Online agents that fit the selection and can run at least one requested type.

    Spread over locations (round robin, least busy first); returns (agents, reason if none).
    An agent retired since `check_selection` is simply not online.
    """
    candidates = online_agents(conn)
    if not candidates:
        return [], "no agent is online"
    if req.agents:
        wanted = set(req.agents)
        candidates = [a for a in candidates if str(a["id"]) in wanted]
        if not candidates:
            return [], "none of the selected agents is online"
    if req.locations:
        wanted_locations = {loc.lower() for loc in req.locations}
        candidates = [
            a
            for a in candidates
            if a["location"].lower() in wanted_locations or (a["region"] or "").lower() in wanted_locations
        ]
        if not candidates:
            return [], f"no online agent in {', '.join(req.locations)}"
    candidates = [a for a in candidates if set(a["capabilities"] or ()) & set(req.check_types)]
    if not candidates:
        return [], f"no online agent can run {', '.join(req.check_types)}"
    candidates = [a for a in candidates if clock_ok(a)]  # those refuse work (agent/clock.py)
    if not candidates:
        return [], f"every online agent that fits refuses work: its clock is over {MAX_CLOCK_OFFSET_S} s off"
    candidates = _keeping_up(candidates)
    by_location: dict[str, list[dict]] = defaultdict(list)
    random.shuffle(candidates)
    for agent in sorted(candidates, key=lambda a: a["current_tasks"]):
        by_location[agent["location"]].append(agent)
    chosen: list[dict] = []
    queues = sorted(by_location.values(), key=lambda q: q[0]["current_tasks"])
    while queues:
        for q in list(queues):
            chosen.append(q.pop(0))
            if not q:
                queues.remove(q)
    limit = req.limit or MAX_AGENTS_PER_CHECK
    return chosen[:limit], None


def _keeping_up(candidates: list[dict]) -> list[dict]:
    """Of `candidates`, those keeping up with their queue: the oldest task they have not read yet
    has waited at most MAX_QUEUE_WAIT_S (`queue_wait_s`, read by `online_agents`). A task queued
    behind more would spend its deadline's slack waiting and expire unrun, so an overloaded API
    refuses new work (503 `agents_busy`, nothing stored) instead of storing checks that fail.
    With Redis unreadable every wait reads 0: no agent is passed over (fail open)."""
    keeping_up = [a for a in candidates if a["queue_wait_s"] <= MAX_QUEUE_WAIT_S]
    if not keeping_up:
        least = min(a["queue_wait_s"] for a in candidates)
        metrics.send(metrics.Batch().inc("checks_refused_total", ("agents_busy",)))
        retry_s = max(1, math.ceil(least - MAX_QUEUE_WAIT_S))
        raise AgentsBusy(
            f"every agent that fits is over {MAX_QUEUE_WAIT_S:g} s behind on its queue "
            f"(the least by {least:.1f} s); nothing was stored; retry in {retry_s} s",
            headers={"Retry-After": str(retry_s)},
        )
    return keeping_up


def _requested_count(conn, req: CheckRequest) -> int:
    """How many agents the request asked for, online or not: the ids it named, else the
    registered agents that fit its locations and types, at most `limit`."""
    if req.agents:
        return len(req.agents)
    wanted = [loc.lower() for loc in req.locations] if req.locations else None
    n = conn.execute(
        """SELECT count(*) AS n FROM agents
           WHERE capabilities && %s::text[]
             AND (%s::text[] IS NULL OR lower(location) = ANY(%s::text[]) OR lower(region) = ANY(%s::text[]))""",
        (req.check_types, wanted, wanted, wanted),
    ).fetchone()["n"]
    return min(n, req.limit or MAX_AGENTS_PER_CHECK)


def _shortfall(requested: int, chosen: int) -> dict[str, Any] | None:
    """Said, not hidden: a check that reaches fewer agents than were asked for (some offline,
    e.g. in the seconds after an outage, before their next heartbeat) says how many fewer."""
    if chosen >= requested:
        return None
    return {
        "missing": requested - chosen,
        "message": f"{chosen} of the {requested} agents asked for are online and chosen; "
        f"{requested - chosen} are left out: offline, not heart-beating yet after an outage, "
        f"refusing work for a clock over {MAX_CLOCK_OFFSET_S} s off, "
        f"or over {MAX_QUEUE_WAIT_S:g} s behind on their queue",
    }


_INSERT_CHECK = """INSERT INTO checks (id, target, check_types, options, agent_selection, status, error,
                                     client_ip, completed_at)
                 VALUES (%s, %s, %s, %s, %s, %s, %s, %s, CASE WHEN %s THEN now() END)"""


@observability.tracer.capture_method(capture_response=False)
def create(req: CheckRequest, client_ip: str | None) -> dict[str, Any]:
    """Store the check and one task per (agent, type) in one transaction, then fan out
    to the agents' streams in one Redis round trip. `req` has passed `check_selection`."""
    check_id = str(uuid.uuid4())
    selection = {"agents": req.agents, "locations": req.locations, "limit": req.limit}
    with transaction() as conn:
        agents, reason = _choose_agents(conn, req)
        selection["chosen"] = [str(a["id"]) for a in agents]
        selection["requested"] = _requested_count(conn, req)
        selection["shortfall"] = _shortfall(selection["requested"], len(agents))
        pairs = [(a, t) for a in agents for t in req.check_types if t in (a["capabilities"] or ())]
        status = "pending" if pairs else "failed"
        error = None if pairs else f"no eligible agent: {reason}"
        check_row = (
            check_id,
            req.target,
            req.check_types,
            Jsonb(req.options),
            Jsonb(selection),
            status,
            error,
            client_ip,
            status == "failed",
        )
        tasks = []
        if pairs:
            # The check and its tasks in ONE statement, whatever the number of agents.
            task_ids = [str(uuid.uuid4()) for _ in pairs]
            timeouts = [check_timeout_s(t, req.options[t]) + DEADLINE_SLACK_S for _, t in pairs]
            tasks = conn.execute(
                f"""WITH c AS ({_INSERT_CHECK} RETURNING id)
                   INSERT INTO check_tasks (id, check_id, agent_id, check_type, deadline_at)
                   SELECT v.id, c.id, v.agent_id, v.check_type, now() + make_interval(secs => v.timeout)
                   FROM c, unnest(%s::uuid[], %s::uuid[], %s::text[], %s::float8[])
                        WITH ORDINALITY AS v(id, agent_id, check_type, timeout, n)
                   ORDER BY v.n
                   RETURNING id, check_id, agent_id, check_type, deadline_at, created_at""",
                (*check_row, task_ids, [str(a["id"]) for a, _ in pairs], [t for _, t in pairs], timeouts),
            ).fetchall()
            created_at = tasks[0]["created_at"]  # now(): the transaction's time, the check's too
        else:
            created_at = conn.execute(_INSERT_CHECK + " RETURNING created_at", check_row).fetchone()["created_at"]
    counted = metrics.checks_created(req.check_types)
    push_tasks(({**t, "target": req.target, "options": req.options[t["check_type"]]} for t in tasks), counted)
    metrics.send(counted)  # no-op once the fan-out carried it; else (no task, Redis down) its own trip
    if status == "failed":
        observability.count("ChecksWithoutAgents")
    log.info("check created", extra={"check_id": check_id, "tasks": len(tasks), "status": status})
    return {
        "check_id": check_id,
        "status": status,
        "error": error,
        "target": req.target,
        "check_types": req.check_types,
        "created_at": iso(created_at),
        "tasks": [
            {"task_id": str(t["id"]), "agent_id": str(t["agent_id"]), "check_type": t["check_type"]} for t in tasks
        ],
        "agents": [{"id": str(a["id"]), "name": a["name"], "location": a["location"]} for a in agents],
        "selection": _selection_view(selection),
    }


def _check_view(check: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    results = [views.task_view(r) for r in rows]
    return {
        "check_id": str(check["id"]),
        "target": check["target"],
        "check_types": list(check["check_types"]),
        "options": httpopts.redact_options(check["options"]),
        **targets.target_view(check["target"], list(check["check_types"]), check["options"]),
        "selection": _selection_view(check["agent_selection"]),
        "status": check["status"],
        "error": check["error"],
        "created_at": iso(check["created_at"]),
        "started_at": iso(check["started_at"]),
        "completed_at": iso(check["completed_at"]),
        "summary": views.summarise(list(check["check_types"]), rows),
        "certificates": views.certificates(rows),
        "verdict": verdict.verdict(results),
        "results": results,
    }


_CHECK_COLUMNS = (
    "id, target, check_types, options, agent_selection, status, error, created_at, started_at, completed_at"
)


def _selection_view(stored: dict[str, Any] | None) -> dict[str, Any]:
    """How the agents were asked for (so "run again" can ask the same way) and which were chosen."""
    stored = stored or {}
    return {
        "agents": stored.get("agents"),
        "locations": stored.get("locations"),
        "limit": stored.get("limit"),
        "chosen": stored.get("chosen") or [],
        "requested": stored.get("requested"),
        "shortfall": stored.get("shortfall"),
    }


def get(check_id: str, settle: bool = True) -> dict[str, Any]:
    """The check as GET shows it; `settle=False` reads without failing overdue tasks (the live
    layer, which must not publish while it holds a connection's lock)."""
    check_id = inputs.uuid_or_404(check_id, "check")
    for attempt in (1, 2):
        with transaction() as conn:
            check = conn.execute(
                f"SELECT {_CHECK_COLUMNS}, "
                "EXISTS (SELECT 1 FROM check_tasks t WHERE t.check_id = checks.id "
                f"  AND t.status IN ('pending','in_progress') AND {EFFECTIVE_DEADLINE_SQL} <= now())"
                " AS overdue FROM checks WHERE id = %s",
                (check_id,),
            ).fetchone()
            if check is None:
                raise NotFound(f"check {check_id} not found")
            rows = views.task_rows(conn, check_id=check_id)
        if attempt == 1 and check["overdue"] and settle:
            # Settle overdue tasks now, so nobody waits for the next sweep to see a verdict.
            transitions.finalise_overdue(check_id=check_id)
            continue
        return _check_view(check, rows)
    raise AssertionError("unreachable")


def _encode_cursor(created_at: datetime, check_id) -> str:
    raw = json.dumps([created_at.isoformat(), str(check_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, check_id = json.loads(raw)
        # Passed on as a datetime: Python reads ISO forms PostgreSQL does not (2026-W01-1).
        return datetime.fromisoformat(created_at), str(uuid.UUID(check_id))
    except Exception:
        raise ValidationFailed("cursor is not valid; use next_cursor from the previous page", field="cursor") from None


def list_checks(params: dict | None) -> dict[str, Any]:
    params = params or {}
    limit = inputs.query_int(params, "limit", LIST_DEFAULT, 1, LIST_MAX)
    where, args = [], []
    if params.get("target"):
        where.append("c.target = %s")
        args.append(inputs.clean_text(params["target"].strip(), "target"))
    if params.get("status"):
        if params["status"] not in CHECK_STATUSES:
            raise ValidationFailed(f"status must be one of {', '.join(CHECK_STATUSES)}", field="status")
        where.append("c.status = %s")
        args.append(params["status"])
    if params.get("cursor"):
        created_at, cid = _decode_cursor(params["cursor"])
        where.append("(c.created_at, c.id) < (%s::timestamptz, %s::uuid)")
        args += [created_at, cid]
    sql = (
        "SELECT c.id, c.target, c.check_types, c.status, c.error, c.created_at, c.completed_at, "
        "(SELECT count(*) FROM check_tasks t WHERE t.check_id = c.id) AS task_count FROM checks c"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY c.created_at DESC, c.id DESC LIMIT %s"
    )
    with transaction() as conn:
        rows = conn.execute(sql, (*args, limit + 1)).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        summaries = views.summaries(conn, [(str(r["id"]), list(r["check_types"])) for r in rows])
    return {
        "items": [
            {
                "check_id": str(r["id"]),
                "target": r["target"],
                "check_types": list(r["check_types"]),
                "status": r["status"],
                "error": r["error"],
                "task_count": r["task_count"],
                "summary": summaries[str(r["id"])],
                "created_at": iso(r["created_at"]),
                "completed_at": iso(r["completed_at"]),
            }
            for r in rows
        ],
        "next_cursor": _encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more else None,
    }


def check_admin_token(given: str | None) -> None:
    expected = get_settings().admin_token
    if not given:
        raise Unauthorized("X-Admin-Token header is required")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Forbidden("admin token is not valid")


def delete(check_id: str) -> None:
    check_id = inputs.uuid_or_404(check_id, "check")
    with transaction() as conn:
        entries = conn.execute(
            "SELECT agent_id, stream_id FROM check_tasks WHERE check_id = %s "
            "AND status = 'pending' AND stream_id IS NOT NULL",
            (check_id,),
        ).fetchall()
        row = conn.execute("DELETE FROM checks WHERE id = %s RETURNING id", (check_id,)).fetchone()
    if row is None:
        raise NotFound(f"check {check_id} not found")
    try:  # agents need not see tasks of a deleted check; those they already hold answer 404
        queue.delete_entries((str(e["agent_id"]), e["stream_id"]) for e in entries)
    except (queue.RedisError, queue.QueueUnavailable, OSError) as exc:
        log.warning("stream entries of deleted check %s not removed: %s", check_id, exc)
    views.publish_deleted(check_id)
    log.info("check deleted", extra={"check_id": check_id})
