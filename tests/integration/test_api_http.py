"""HTTP behaviour shared by every route: JSON 404/405, CORS, no tracebacks."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from chalicelib import checks


@pytest.mark.parametrize(
    "method, path",
    [("GET", "/nope"), ("GET", "/api/nope/deeper/still"), ("POST", "/api/checks/x/y/z"), ("DELETE", "/x")],
)
def test_unknown_routes_get_a_json_404_in_the_error_shape(api, method, path):
    reply = api.call(method, path)
    assert reply.status == 404 and reply.body["error"]["code"] == "route_not_found"


def test_unknown_methods_get_a_json_405_in_the_error_shape(api):
    reply = api.call("PUT", "/api/checks")
    assert reply.status == 405 and reply.body["error"]["code"] == "method_not_allowed"
    assert "POST" in reply.headers["Allow"]


def test_responses_carry_cors_headers_for_the_ui_origin(api, settings):
    from chalicelib import config

    config.reset_settings(cors_origin="http://ui.example")
    reply = api.get("/api/agents")
    assert reply.headers["Access-Control-Allow-Origin"] == "http://ui.example"
    exposed = reply.headers["Access-Control-Expose-Headers"]
    for header in ("Location", "Retry-After", "X-RateLimit-Remaining"):
        assert header in exposed


def test_an_unexpected_error_is_a_500_without_a_traceback(api, monkeypatch):
    def explode(_params):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(checks, "list_checks", explode)
    reply = api.get("/api/checks")
    assert reply.status == 500 and reply.body["error"]["code"] == "internal_error"
    assert "secret internals" not in reply.raw.decode() and "Traceback" not in reply.raw.decode()
    assert reply.headers["X-Request-Id"]


def _http(url, method="GET", headers=None, body=None):
    request = urllib.request.Request(
        url, method=method, headers=headers or {}, data=json.dumps(body).encode() if body is not None else None
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def test_chalice_local_answers_preflight_and_unknown_routes(api_server, clean_state):
    status, headers, _ = _http(
        f"{api_server}/api/checks",
        "OPTIONS",
        {
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-admin-token",
        },
    )
    assert status == 200
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "X-Admin-Token" in headers["Access-Control-Allow-Headers"]
    status, headers, _ = _http(
        f"{api_server}/api/checks/00000000-0000-0000-0000-000000000000",
        "OPTIONS",
        {"Origin": "http://localhost:5173", "Access-Control-Request-Method": "DELETE"},
    )
    assert status == 200 and "DELETE" in headers["Access-Control-Allow-Methods"]
    status, _, body = _http(f"{api_server}/no/such/route")
    assert status == 404 and json.loads(body)["error"]["code"] == "route_not_found"
    status, headers, body = _http(f"{api_server}/health")
    assert status == 200 and headers["Access-Control-Allow-Origin"]


def test_a_failure_before_the_view_is_still_in_the_error_shape(api, monkeypatch):
    from chalicelib import ratelimit

    def broken(*args, **kwargs):
        raise RuntimeError("limiter bug")

    monkeypatch.setattr(ratelimit, "hit", broken)
    reply = api.get("/api/agents")
    assert reply.status == 500 and reply.body["error"]["code"] == "internal_error"
    assert "limiter bug" not in reply.raw.decode()


CHECK = "/api/checks"


@pytest.mark.parametrize(
    "method, path, raw, field",
    [
        ("POST", CHECK, '{"target": "http://[::1", "checks": ["http"]}', "target"),
        ("POST", CHECK, '{"target": "example.com", "checks": ["http"], "locations": ["\\u0000"]}', "locations[0]"),
        (
            "POST",
            CHECK,
            '{"target": "example.com", "checks": ["http"], "options": {"http": {"path": "/\\ud800"}}}',
            "options.http.path",
        ),
        ("POST", CHECK, '{"target": "example.com", "checks": ["http"], "limit": 1e400}', "body"),
        ("POST", "/api/agents/register", '{"name": "fra\\u0000", "location": "Frankfurt"}', "name"),
        ("POST", "/api/agents/register", '{"name": "\\udc00", "location": "Frankfurt"}', "name"),
        ("POST", "/api/agents/register", '{"name": "fra", "location": "F", "\\u0000": 1}', "body"),
        ("GET", "/api/checks?target=%00", None, "target"),
    ],
)
def test_odd_inputs_are_400_naming_the_field_not_a_database_error(api, method, path, raw, field):
    from tests.integration.conftest import REGISTRATION_TOKEN

    api.register("fra-1")
    reply = api.call(method, path, raw=raw, headers={"X-Registration-Token": REGISTRATION_TOKEN})
    assert reply.status == 400, reply.body
    assert reply.body["error"]["details"][0]["field"] == field


@pytest.mark.parametrize(
    "raw, field",
    [
        ('{"success": true, "data": {"banner": "a\\u0000b"}}', "data.banner"),
        ('{"success": true, "data": {"hops": [{"hostname": "\\ud800"}]}}', "data.hops[0].hostname"),
        ('{"success": true, "data": {"rtt_ms": 1e400}}', "body"),
        ('{"success": true, "address": "\\u0000"}', "address"),
        ('{"success": false, "error": {"kind": "timeout", "message": "\\u0000"}}', "error.message"),
    ],
)
def test_results_the_database_cannot_store_are_400_naming_the_field(api, raw, field):
    agent = api.register("fra-1")
    task_id = api.create_check().body["tasks"][0]["task_id"]
    reply = api.post(f"/api/tasks/{task_id}/result", raw=raw, headers={"X-Agent-Token": agent["api_token"]})
    assert reply.status == 400, reply.body
    assert reply.body["error"]["details"][0]["field"] == field
    assert api.get(f"/api/tasks/{task_id}").body["status"] == "pending"  # nothing half stored
