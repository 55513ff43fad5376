"""Input limits, against the real API process (issue 16, suite 11).

Huge bodies, long arrays, deep nesting, invalid UTF-8, a huge target, huge integers in
every numeric field, NaN and Infinity: each is a 400, 413 or 429 in the JSON error shape
(naming the field where there is one), never a 500, and /health stays fine after each.
"""

from __future__ import annotations

import json

import pytest
import requests

from tests.integration.conftest import register_over_http

HUGE = "1" + "0" * 400  # an integer literal no float holds (1e400)
HUGER = "9" * 5000  # past Python's 4300-digit int parsing limit
OK_STATUSES = (400, 413, 429)


@pytest.fixture
def agent(api_server, clean_state) -> dict:
    return register_over_http(api_server, "fra-1")


@pytest.fixture
def task_id(api_server, agent) -> str:
    resp = requests.post(f"{api_server}/api/checks", json={"target": "example.com", "checks": ["tcp"]}, timeout=10)
    assert resp.status_code == 202, resp.text
    return resp.json()["tasks"][0]["task_id"]


def _refused(resp: requests.Response, field: str | None = None) -> dict:
    assert resp.status_code in OK_STATUSES, (resp.status_code, resp.text[:300])
    error = resp.json()["error"]
    assert error["code"] and error["message"] and "Traceback" not in resp.text
    if field is not None:
        assert error["details"][0]["field"] == field, error
    return error


def _healthy(api_server: str) -> None:
    resp = requests.get(f"{api_server}/health", timeout=10)
    assert resp.status_code == 200 and resp.json()["status"] == "ok", resp.text


def _post(api_server: str, path: str, raw: bytes | str, **headers) -> requests.Response:
    data = raw.encode() if isinstance(raw, str) else raw
    return requests.post(
        f"{api_server}{path}", data=data, timeout=30, headers={"Content-Type": "application/json", **headers}
    )


def _check_body(target: str = '"example.com"', checks: str = '["tcp"]', **extra: str) -> str:
    parts = [f'"target": {target}', f'"checks": {checks}'] + [f'"{k}": {v}' for k, v in extra.items()]
    return "{" + ", ".join(parts) + "}"


SHAPES = {
    "a 10 MB body": b'{"target": "' + b"a" * (10 * 1024 * 1024) + b'", "checks": ["tcp"]}',
    "a 100 KB target": _check_body(target=json.dumps("a" * 100_000)),
    "a 10,000-element checks array": _check_body(checks=json.dumps(["tcp"] * 10_000)),
    "a 10,000-element locations array": _check_body(locations=json.dumps(["x"] * 10_000)),
    "JSON nested 10,000 deep": _check_body(target="[" * 10_000 + "]" * 10_000),
    "invalid UTF-8": b'{"target": "\xff\xfe\xfd", "checks": ["tcp"]}',
    "NaN": _check_body(limit="NaN"),
    "Infinity": _check_body(limit="Infinity"),
    "-Infinity": _check_body(options='{"tcp": {"timeout": -Infinity}}', checks='["tcp"]'),
    "1e400 as a float": _check_body(options='{"tcp": {"timeout": 1e400}}'),
    "a 5,000-digit integer": _check_body(limit=HUGER),
}


@pytest.mark.parametrize("raw", SHAPES.values(), ids=SHAPES.keys())
def test_hostile_bodies_are_refused_in_the_error_shape(api_server, agent, raw):
    _refused(_post(api_server, "/api/checks", raw))
    _healthy(api_server)


# Every numeric field the API reads, with the request that carries it: (field, path, body).
CHECK_OPTIONS = {
    "http": ("port", "max_redirects", "timeout", "expected_status", "ip_version"),
    "ping": ("count", "interval", "timeout"),
    "dns": ("port", "timeout"),
    "tcp": ("port", "timeout"),
    "traceroute": ("max_hops", "probes", "timeout"),
}
NUMERIC_FIELDS = [("limit", _check_body(limit=HUGE))] + [
    (f"options.{t}.{name}", _check_body(checks=f'["{t}"]', options=f'{{"{t}": {{"{name}": {HUGE}}}}}'))
    for t, names in CHECK_OPTIONS.items()
    for name in names
]


@pytest.mark.parametrize("field, raw", NUMERIC_FIELDS, ids=[f for f, _ in NUMERIC_FIELDS])
def test_a_huge_integer_in_any_check_field_is_a_400_naming_it(api_server, agent, field, raw):
    _refused(_post(api_server, "/api/checks", raw), field)
    _healthy(api_server)


@pytest.mark.parametrize("field", ["current_tasks", "clock_offset_ms"])
def test_a_huge_integer_in_a_heartbeat_is_a_400_naming_it(api_server, agent, field):
    resp = _post(api_server, "/api/agents/heartbeat", f'{{"{field}": {HUGE}}}', **{"X-Agent-Token": agent["api_token"]})
    _refused(resp, field)
    _healthy(api_server)


@pytest.mark.parametrize("value", [HUGE, f"-{HUGE}", HUGER, "NaN", "Infinity"])
def test_a_huge_or_non_finite_duration_in_a_result_is_a_400(api_server, agent, task_id, value):
    resp = _post(
        api_server,
        f"/api/tasks/{task_id}/result",
        f'{{"success": true, "duration_ms": {value}}}',
        **{"X-Agent-Token": agent["api_token"]},
    )
    _refused(resp, "duration_ms" if value.lstrip("-").isdigit() and len(value) < 1000 else "body")
    _healthy(api_server)


@pytest.mark.parametrize("path, name", [("/api/checks", "limit"), ("/api/agents/{agent_id}/stats", "hours")])
@pytest.mark.parametrize("value", [HUGE, HUGER, "1e400", "NaN", "-" + HUGE])
def test_a_huge_or_odd_number_in_a_query_is_a_400_naming_it(api_server, agent, path, name, value):
    resp = requests.get(f"{api_server}{path.format(agent_id=agent['agent_id'])}", params={name: value}, timeout=10)
    _refused(resp, name)
    _healthy(api_server)
