"""GET /health tells the truth about its dependencies."""

from __future__ import annotations

import socket

from chalicelib import config


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_health_is_ok_with_both_stores_up(api):
    api.register("fra-1")
    reply = api.get("/health")
    assert reply.status == 200
    assert reply.body == {
        "status": "ok",
        "database": "up",
        "redis": "up",
        "active_agents": 1,
        "version": config.get_settings().version,
    }


def test_health_is_503_with_database_down_when_postgresql_is_unreachable(api, settings):
    config.reset_settings(database_url=f"postgresql://hostchecker@127.0.0.1:{_closed_port()}/hostchecker")
    reply = api.get("/health")
    assert reply.status == 503
    assert reply.body["database"] == "down" and reply.body["redis"] == "up"
    assert reply.body["status"] == "degraded" and reply.body["active_agents"] is None


def test_health_is_503_with_redis_down_when_redis_is_unreachable(api):
    config.reset_settings(redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    reply = api.get("/health")
    assert reply.status == 503 and reply.body["redis"] == "down" and reply.body["database"] == "up"


def test_api_answers_503_in_the_error_shape_when_postgresql_is_down(api):
    config.reset_settings(database_url=f"postgresql://hostchecker@127.0.0.1:{_closed_port()}/hostchecker")
    reply = api.get("/api/agents")
    assert reply.status == 503 and reply.body["error"]["code"] == "service_unavailable"
    assert "Traceback" not in reply.raw.decode()
