"""Agents: registration, token authentication, heartbeats, listing and stats."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from typing import Any

import psycopg

from . import fanout, inputs, metrics, queue
from .config import get_settings
from .db import transaction
from .errors import Conflict, Forbidden, NotFound, Unauthorized
from .protocol import (
    CHECK_TYPES,
    MAX_CLOCK_OFFSET_S,
    MAX_LOCATION,
    MAX_NAME,
    MAX_REGION,
    MAX_REPORTED_TASKS,
    MAX_VERSION,
    STREAM_GROUP,
    task_stream_key,
)
from .serialize import iso, now_iso

log = logging.getLogger(__name__)


# THE definition of "online", for agents aliased `a`: a heartbeat within the TTL
# (`%(ttl)s`, heartbeat_ttl_s()). Every reader, the fan-out, the sweeper (which sets
# `agents.status` offline by NOT_ONLINE_SQL) and the task timeout's agent_offline use
# it; the Redis heartbeat key expires after the same TTL.
ONLINE_SQL = "(a.last_heartbeat IS NOT NULL AND a.last_heartbeat > now() - make_interval(secs => %(ttl)s))"
NOT_ONLINE_SQL = f"NOT {ONLINE_SQL}"

_AGENT_COLUMNS = f"""a.id, a.name, a.location, a.region, a.version, a.capabilities, a.current_tasks,
    a.last_heartbeat, a.registered_at, a.clock_offset_ms, {ONLINE_SQL} AS online"""
# The furthest an agent may report its clock from ours (a day): beyond, the value is nonsense.
MAX_REPORTED_OFFSET_MS = 24 * 3600 * 1000


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def heartbeat_ttl_s() -> int:
    return get_settings().heartbeat_ttl_s


def view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "location": row["location"],
        "region": row["region"],
        "status": "online" if row["online"] else "offline",
        "last_heartbeat": iso(row["last_heartbeat"]),
        "version": row["version"],
        "capabilities": list(row["capabilities"] or []),
        "current_tasks": row["current_tasks"],
        "registered_at": iso(row["registered_at"]),
        "clock_offset_ms": row["clock_offset_ms"],
        "clock_ok": clock_ok(row),
    }


def clock_ok(row: dict[str, Any]) -> bool:
    """False when the agent's reported clock is past the bound: it refuses work, and is not chosen."""
    offset = row["clock_offset_ms"]
    return offset is None or abs(offset) <= MAX_CLOCK_OFFSET_S * 1000


def check_registration_token(given: str | None) -> None:
    expected = get_settings().registration_token
    if not given:
        raise Unauthorized("X-Registration-Token header is required")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Forbidden("registration token is not valid")


def register(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Create an agent (201), or with `replace: true` rotate an existing one's token (200)."""
    inputs.reject_unknown(body, ("name", "location", "region", "version", "capabilities", "replace"))
    name = inputs.string(body, "name", required=True, max_len=MAX_NAME)
    location = inputs.string(body, "location", required=True, max_len=MAX_LOCATION)
    region = inputs.string(body, "region", max_len=MAX_REGION)
    version = inputs.string(body, "version", max_len=MAX_VERSION)
    capabilities = inputs.string_list(body, "capabilities", max_items=len(CHECK_TYPES), choices=CHECK_TYPES) or list(
        CHECK_TYPES
    )
    replace = inputs.boolean(body, "replace", default=False)

    token = secrets.token_urlsafe(32)  # 256 random bits; only the hash is stored
    token_hash = hash_token(token)
    status = 201
    with transaction() as conn:
        try:
            with conn.transaction():
                row = conn.execute(
                    """INSERT INTO agents (id, name, location, region, api_token_hash, version,
                                          capabilities, status, last_heartbeat)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, 'online', now())
                       RETURNING id""",
                    (uuid.uuid4(), name, location, region, token_hash, version, capabilities),
                ).fetchone()
        except psycopg.errors.UniqueViolation:
            if not replace:
                raise Conflict(
                    f"an agent named {name!r} is already registered; "
                    'send "replace": true to take it over with a new token',
                    field="name",
                    code="agent_exists",
                ) from None
            row = conn.execute(
                """UPDATE agents SET api_token_hash = %s, location = %s, region = %s, version = %s,
                                     capabilities = %s, status = 'online', last_heartbeat = now()
                   WHERE name = %s AND retired_at IS NULL RETURNING id""",
                (token_hash, location, region, version, capabilities, name),
            ).fetchone()
            if row is None:  # deleted between the two statements
                raise Conflict("the agent changed while registering; retry", code="agent_exists") from None
            status = 200
    agent_id = str(row["id"])
    try:
        queue.ensure_group(agent_id)
        queue.set_heartbeat(agent_id, {"current_tasks": 0, "version": version}, heartbeat_ttl_s())
    except (queue.RedisError, queue.QueueUnavailable, OSError) as exc:
        # The group is created again before every enqueue; Redis can be rebuilt.
        log.warning("agent %s registered, but Redis is unavailable: %s", agent_id, exc)
    log.info("agent registered", extra={"agent_id": agent_id, "agent_name": name, "replaced": status == 200})
    return status, {
        "agent_id": agent_id,
        "api_token": token,
        "name": name,
        "location": location,
        "stream": task_stream_key(agent_id),
        "group": STREAM_GROUP,
    }


def token_hash_or_401(token: str | None) -> str:
    """The hash of the X-Agent-Token given, else 401 before any database work. The token's
    agent is looked up inside the caller's transaction (chalicelib/tasks.py), so
    authenticating costs a statement there, not a transaction of its own."""
    if not token:
        raise Unauthorized("X-Agent-Token header is required")
    return hash_token(token)


def heartbeat(token: str | None, body: dict[str, Any]) -> dict[str, Any]:
    inputs.reject_unknown(body, ("current_tasks", "version", "capabilities", "clock_offset_ms"))
    current = inputs.integer(body, "current_tasks", low=0, high=MAX_REPORTED_TASKS, default=0)
    offset = inputs.number(body, "clock_offset_ms", low=-MAX_REPORTED_OFFSET_MS, high=MAX_REPORTED_OFFSET_MS)
    version = inputs.string(body, "version", max_len=MAX_VERSION)
    capabilities = inputs.string_list(body, "capabilities", max_items=len(CHECK_TYPES), choices=CHECK_TYPES)
    if not token:
        raise Unauthorized("X-Agent-Token header is required")
    with transaction() as conn:
        row = conn.execute(
            """UPDATE agents SET status = 'online', last_heartbeat = now(), current_tasks = %s,
                                 version = COALESCE(%s, version),
                                 capabilities = COALESCE(%s, capabilities),
                                 clock_offset_ms = COALESCE(%s, clock_offset_ms)
               WHERE api_token_hash = %s RETURNING id, name""",
            (current, version, capabilities, offset, hash_token(token)),
        ).fetchone()
    if row is None:
        raise Unauthorized("agent token is not valid")
    agent_id = str(row["id"])
    try:
        had_key = queue.set_heartbeat(
            agent_id,
            {"current_tasks": current, "version": version},
            heartbeat_ttl_s(),
            metrics=metrics.heartbeat(row["name"]),
        )
        # Redis answers: deliver what it missed while down, and what it lost if it lost its data.
        fanout.dispatch_for_agent(agent_id, entries_lost=not had_key)
    except (queue.RedisError, queue.QueueUnavailable, OSError) as exc:
        log.warning("heartbeat of %s not mirrored to Redis: %s", agent_id, exc)
    return {"agent_id": agent_id, "status": "online", "server_time": now_iso()}


def list_agents() -> dict[str, Any]:
    with transaction() as conn:
        rows = conn.execute(
            f"SELECT {_AGENT_COLUMNS} FROM agents a WHERE a.retired_at IS NULL ORDER BY a.location, a.name",
            {"ttl": heartbeat_ttl_s()},
        ).fetchall()
    return {"items": [view(r) for r in rows], "next_cursor": None}


def get_agent(agent_id: str) -> dict[str, Any]:
    agent_id = inputs.uuid_or_404(agent_id, "agent")
    with transaction() as conn:
        row = conn.execute(
            f"SELECT {_AGENT_COLUMNS} FROM agents a WHERE a.id = %(id)s AND a.retired_at IS NULL",
            {"ttl": heartbeat_ttl_s(), "id": agent_id},
        ).fetchone()
    if row is None:
        raise NotFound(f"agent {agent_id} not found")
    return view(row)


def online_agents(conn) -> list[dict[str, Any]]:
    """The agents online now, for the fan-out, each with its `queue_wait_s` (queue.agent_states).

    The Redis heartbeat keys (read with the queues, one Lua call) answer first: a key that is
    there is a heartbeat within the TTL. Where Redis lacks a key (flushed, restarted) or is down, PostgreSQL's
    `last_heartbeat` by ONLINE_SQL decides, so losing Redis never takes an agent offline.
    Only agents the sweeper has not yet set offline can have a live key, so no others are read.
    """
    rows = conn.execute(_FAN_OUT_CANDIDATES, {"ttl": heartbeat_ttl_s()}).fetchall()
    try:
        states = queue.agent_states([str(r["id"]) for r in rows])
    except (queue.RedisError, queue.QueueUnavailable, OSError) as exc:
        log.warning("heartbeat keys and queues unreadable, PostgreSQL decides who is online: %s", exc)
        states = {}
    online = []
    for r in rows:
        state = states.get(str(r["id"]))
        if (state and state.beating) or r["online"]:
            online.append({**r, "queue_wait_s": state.queue_wait_s if state else 0.0})
    return online


_FAN_OUT_CANDIDATES = f"SELECT {_AGENT_COLUMNS} FROM agents a WHERE a.status = 'online' OR {ONLINE_SQL}"


def count_online(conn) -> int:
    return conn.execute(
        f"SELECT count(*) AS n FROM agents a WHERE {ONLINE_SQL}", {"ttl": heartbeat_ttl_s()}
    ).fetchone()["n"]
