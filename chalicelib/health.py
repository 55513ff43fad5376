"""GET /health: what the dependencies really say."""

from __future__ import annotations

from typing import Any

from . import db, queue
from .agents import count_online
from .config import get_settings


def report() -> tuple[int, dict[str, Any]]:
    database = db.ping()
    redis_up = queue.ping()
    active = None
    if database:
        try:
            with db.transaction(timeout=2) as conn:
                active = count_online(conn)
        except db.DatabaseUnavailable:
            database = False
    ok = database and redis_up
    return (200 if ok else 503), {
        "status": "ok" if ok else "degraded",
        "database": "up" if database else "down",
        "redis": "up" if redis_up else "down",
        "active_agents": active,
        "version": get_settings().version,
    }
