"""Fixtures for the API and sweeper tests: a chalice test client over real
PostgreSQL and Redis, and helpers to register agents and create checks."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from redis.connection import Connection

REGISTRATION_TOKEN = "test-registration-token"


def register_over_http(url: str, name: str, location: str = "Frankfurt") -> dict:
    """Register a new agent through a real API process at `url` (201); returns its id and token."""
    import requests

    reply = requests.post(
        f"{url}/api/agents/register",
        json={"name": name, "location": location},
        headers={"X-Registration-Token": REGISTRATION_TOKEN},
        timeout=10,
    )
    assert reply.status_code == 201, reply.text
    return reply.json()


ADMIN_TOKEN = "test-admin-token"
JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass
class Reply:
    status: int
    headers: dict
    body: object
    raw: bytes


class Api:
    """Thin JSON helpers over chalice.test.Client."""

    def __init__(self, client):
        self.client = client

    def call(self, method: str, path: str, body=None, headers=None, raw: bytes | str | None = None) -> Reply:
        hdrs = dict(JSON_HEADERS, **(headers or {}))
        payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
        response = getattr(self.client.http, method.lower())(path, headers=hdrs, body=payload)
        text = response.body or b""
        try:
            doc = json.loads(text) if text else None
        except ValueError:
            doc = None
        return Reply(response.status_code, dict(response.headers), doc, text)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)

    # -- the usual steps

    def register(self, name: str, location: str = "Frankfurt", **extra) -> dict:
        reply = self.post(
            "/api/agents/register",
            {"name": name, "location": location, **extra},
            headers={"X-Registration-Token": REGISTRATION_TOKEN},
        )
        assert reply.status in (200, 201), reply.body
        return reply.body

    def heartbeat(self, agent: dict, **body) -> Reply:
        return self.post(
            "/api/agents/heartbeat",
            {"current_tasks": 0, "version": "t", **body},
            headers={"X-Agent-Token": agent["api_token"]},
        )

    def create_check(self, target: str = "example.com", checks=("http",), **extra) -> Reply:
        return self.post("/api/checks", {"target": target, "checks": list(checks), **extra})

    def start(self, agent: dict, task_id: str) -> Reply:
        return self.post(f"/api/tasks/{task_id}/start", headers={"X-Agent-Token": agent["api_token"]})

    def result(self, agent: dict, task_id: str, success: bool = True, duration_ms: float = 10.0, **extra) -> Reply:
        body = {
            "success": success,
            "duration_ms": duration_ms,
            "address": "93.184.215.14",
            "data": {"status_code": 200},
            "error": None if success else {"kind": "refused", "message": "connection refused"},
        }
        body.update(extra)
        return self.post(f"/api/tasks/{task_id}/result", body, headers={"X-Agent-Token": agent["api_token"]})


@pytest.fixture
def app_client(settings):
    """chalice.test.Client for app.py on the test stage, over the test servers."""
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="test") as client:
        yield client


@pytest.fixture
def api(app_client) -> Api:
    return Api(app_client)


@pytest.fixture
def db(settings):
    """A psycopg connection (autocommit, dict rows) for arranging and inspecting state."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(settings.database_url, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture
def redis_client(settings):
    import redis

    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def count_round_trips(monkeypatch):
    """Every packed send to Redis (one per round trip, a pipeline included), while the block runs."""

    @contextmanager
    def counting():
        from chalicelib import queue

        queue.get_redis().ping()  # connect (and handshake) before counting
        sends: list = []
        original = Connection.send_packed_command

        def count(self, command, check_health=True):
            sends.append(command)
            return original(self, command, check_health)

        with monkeypatch.context() as patch:
            patch.setattr(Connection, "send_packed_command", count)
            yield sends

    return counting
