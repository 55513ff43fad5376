"""The auth matrix, against the real API process (issue 16, suite 8).

Every route × {no token, a wrong token, another agent's token, the admin token, the right
token} gets the documented status. The credential goes in the header the route reads
(public routes get it in every header, and ignore it). Afterwards the API's and an
agent's logs are scanned for every token: none may appear. The token compares are
constant-time: the code path is checked (hmac.compare_digest), not the timing.
"""

from __future__ import annotations

import hmac

import pytest
import requests

from chalicelib import agents as agents_service
from chalicelib import checks as checks_service
from chalicelib.errors import Forbidden
from tests.conftest import API_SERVER_LOGS
from tests.integration.agent_harness import db, start_agent, wait_online  # noqa: F401 - fixtures
from tests.integration.conftest import ADMIN_TOKEN, REGISTRATION_TOKEN, register_over_http

CREDENTIALS = ("none", "wrong", "other_agent", "admin", "right")
WRONG = "not-a-token-of-ours-0123456789"

# (method, path template, header the route reads or None for a public route,
#  {credential: status}); "right" last, since it may change the state the others see.
PUBLIC = dict.fromkeys(CREDENTIALS, 200)
AGENT_ONLY = {"none": 401, "wrong": 401, "other_agent": 403, "admin": 401, "right": 200}
# the right token of an admin route is the admin token: not sent twice (None)
ADMIN_ONLY = {"none": 401, "wrong": 403, "other_agent": 403, "admin": 204, "right": None}
MATRIX = [
    ("GET", "/health", None, PUBLIC),
    ("GET", "/api/openapi.json", None, PUBLIC),
    ("GET", "/api/checks", None, PUBLIC),
    ("POST", "/api/checks", None, dict.fromkeys(CREDENTIALS, 202)),
    ("GET", "/api/checks/{check_id}", None, PUBLIC),
    ("GET", "/api/agents", None, PUBLIC),
    ("GET", "/api/agents/{agent_id}", None, PUBLIC),
    ("GET", "/api/agents/{agent_id}/stats", None, PUBLIC),
    ("GET", "/api/tasks/{start_task}", None, PUBLIC),
    (
        "POST",
        "/api/agents/register",
        "X-Registration-Token",
        {"none": 401, "wrong": 403, "other_agent": 403, "admin": 403, "right": 201},
    ),
    # another agent's token is that agent's own heartbeat: accepted, for that agent
    ("POST", "/api/agents/heartbeat", "X-Agent-Token", {**AGENT_ONLY, "other_agent": 200}),
    ("POST", "/api/tasks/{start_task}/start", "X-Agent-Token", AGENT_ONLY),
    ("POST", "/api/tasks/{result_task}/result", "X-Agent-Token", AGENT_ONLY),
    ("DELETE", "/api/checks/{doomed_check}", "X-Admin-Token", ADMIN_ONLY),
]


def _register(api_server: str, name: str) -> dict:
    return register_over_http(api_server, name)


def _check(api_server: str, agent: dict) -> dict:
    resp = requests.post(
        f"{api_server}/api/checks",
        json={"target": "example.com", "checks": ["tcp"], "agents": [agent["agent_id"]]},
        timeout=10,
    )
    assert resp.status_code == 202, resp.text
    return resp.json()


@pytest.fixture
def world(api_server, clean_state) -> dict:
    """Two agents, and checks whose tasks belong to the first."""
    me, other = _register(api_server, "me-1"), _register(api_server, "other-1")
    first, second, doomed = (_check(api_server, me) for _ in range(3))
    return {
        "me": me,
        "other": other,
        "agent_id": me["agent_id"],
        "check_id": first["check_id"],
        "start_task": first["tasks"][0]["task_id"],
        "result_task": second["tasks"][0]["task_id"],
        "doomed_check": doomed["check_id"],
    }


def _token(credential: str, header: str | None, world: dict) -> str | None:
    right = {"X-Registration-Token": REGISTRATION_TOKEN, "X-Admin-Token": ADMIN_TOKEN}.get(
        header, world["me"]["api_token"]
    )
    return {
        "none": None,
        "wrong": WRONG,
        "other_agent": world["other"]["api_token"],
        "admin": ADMIN_TOKEN,
        "right": right,
    }[credential]


def _body(method: str, path: str) -> dict | None:
    if path == "/api/checks" and method == "POST":
        return {"target": "example.com", "checks": ["tcp"]}
    if path == "/api/agents/register":
        return {"name": "new-1", "location": "Frankfurt"}
    if path.endswith("/result"):
        return {"success": True, "duration_ms": 1.0, "data": {}}
    if method == "POST":
        return {}
    return None


def test_every_route_gives_the_documented_status_for_every_credential(api_server, world):
    seen = {}
    for method, template, header, expected in MATRIX:
        path = template.format(**world)
        for credential in CREDENTIALS:
            if expected[credential] is None:
                continue
            token = _token(credential, header, world)
            names = [header] if header else ["X-Agent-Token", "X-Admin-Token", "X-Registration-Token"]
            headers = {name: token for name in names} if token is not None else {}
            resp = requests.request(
                method, f"{api_server}{path}", json=_body(method, template), headers=headers, timeout=15
            )
            seen[(method, template, credential)] = resp.status_code
            if resp.status_code >= 400:
                assert resp.json()["error"]["code"], resp.text  # the JSON error shape, always
    wanted = {(m, t, c): expected[c] for m, t, _, expected in MATRIX for c in CREDENTIALS if expected[c]}
    wrong = {k: (seen[k], wanted[k]) for k in wanted if seen[k] != wanted[k]}
    assert not wrong, f"(route, credential): (got, documented) {wrong}"


def test_no_token_appears_in_the_api_or_agent_logs(api_server, world, start_agent, db):
    agent = start_agent("Scanned")
    wait_online(db, agent)
    secrets = {
        REGISTRATION_TOKEN,
        ADMIN_TOKEN,
        world["me"]["api_token"],
        world["other"]["api_token"],
        agent.state()["api_token"],
    }
    # every route once more with every secret in its header, so the logs have had their chance
    for method, template, header, _ in MATRIX[:-1]:
        for secret in secrets:
            requests.request(
                method,
                f"{api_server}{template.format(**world)}",
                json=_body(method, template),
                headers={header or "X-Agent-Token": secret},
                timeout=15,
            )
    logs = {"api": API_SERVER_LOGS[-1].read_text(errors="replace"), "agent": agent.log()}
    assert all(logs.values())
    leaks = [(where, secret[:6] + "…") for where, text in logs.items() for secret in secrets if secret in text]
    assert not leaks, f"tokens found in logs: {leaks}"


@pytest.mark.parametrize(
    "check, setting",
    [
        (agents_service.check_registration_token, "registration_token"),
        (checks_service.check_admin_token, "admin_token"),
    ],
)
def test_token_compares_go_through_hmac_compare_digest(settings, monkeypatch, check, setting):
    calls = []
    compare = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    expected = getattr(settings, setting)
    with pytest.raises(Forbidden):
        check("x" * len(expected))  # same length, wrong: only a constant-time compare can tell
    check(expected)
    assert calls == [(b"x" * len(expected), expected.encode()), (expected.encode(), expected.encode())]
