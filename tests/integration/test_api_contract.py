"""Walk every route, success and failure, and validate each response against the OpenAPI document."""

from __future__ import annotations

import re
import uuid

from jsonschema import Draft202012Validator

from tests.integration.conftest import ADMIN_TOKEN, REGISTRATION_TOKEN


def _operation(doc, path):
    for template in doc["paths"]:
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path.split("?")[0]):
            return template
    raise AssertionError(f"{path} is not documented")


def test_every_route_answers_as_the_openapi_document_says(api, db):
    doc = api.get("/api/openapi.json").body
    seen: set[tuple[str, str, str]] = set()

    def check(method, path, reply):
        template = _operation(doc, path)
        op = doc["paths"][template].get(method.lower())
        assert op is not None, f"{method} {template} undocumented"
        response = op["responses"].get(str(reply.status))
        assert response is not None, f"{method} {template} answered undocumented {reply.status}: {reply.body}"
        content = response.get("content")
        if content is None:
            assert not reply.raw, f"{method} {template} {reply.status} should have no body"
        elif "application/json" not in content:  # GET /metrics: Prometheus text
            assert reply.headers["Content-Type"].split(";")[0] in content, f"{method} {template} {reply.status}"
        else:
            schema = dict(content["application/json"]["schema"], components=doc["components"])
            errors = sorted(Draft202012Validator(schema).iter_errors(reply.body), key=str)
            assert not errors, f"{method} {template} {reply.status}: {errors[0].message} at {list(errors[0].path)}"
        for header in response.get("headers", {}):
            if header in ("Retry-After",) or header.startswith("X-RateLimit") or header == "Location":
                assert header in reply.headers, f"{method} {template} {reply.status} lacks {header}"
        seen.add((template, method.lower(), str(reply.status)))
        return reply

    reg = {"X-Registration-Token": REGISTRATION_TOKEN}
    agent = check(
        "POST",
        "/api/agents/register",
        api.post("/api/agents/register", {"name": "fra-1", "location": "Frankfurt"}, headers=reg),
    ).body
    check(
        "POST",
        "/api/agents/register",
        api.post("/api/agents/register", {"name": "fra-1", "location": "Frankfurt", "replace": True}, headers=reg),
    )
    agent = api.register("fra-2", "Frankfurt")
    other = api.register("sin-1", "Singapore")
    check(
        "POST",
        "/api/agents/register",
        api.post("/api/agents/register", {"name": "fra-2", "location": "F"}, headers=reg),
    )
    check("POST", "/api/agents/register", api.post("/api/agents/register", {"name": 1}, headers=reg))
    check("POST", "/api/agents/register", api.post("/api/agents/register", {"name": "x", "location": "y"}))
    check(
        "POST",
        "/api/agents/register",
        api.post("/api/agents/register", {"name": "x", "location": "y"}, headers={"X-Registration-Token": "no"}),
    )
    token = {"X-Agent-Token": agent["api_token"]}
    check("POST", "/api/agents/heartbeat", api.heartbeat(agent))
    check("POST", "/api/agents/heartbeat", api.post("/api/agents/heartbeat", {"current_tasks": -1}, headers=token))
    check("POST", "/api/agents/heartbeat", api.post("/api/agents/heartbeat", {}))
    check("GET", "/api/agents", api.get("/api/agents"))
    check("GET", f"/api/agents/{agent['agent_id']}", api.get(f"/api/agents/{agent['agent_id']}"))
    check("GET", "/api/agents/x", api.get("/api/agents/x"))

    created = check("POST", "/api/checks", api.create_check(checks=["http", "ping"])).body
    check("POST", "/api/checks", api.post("/api/checks", {"target": 5, "checks": ["http"]}))
    check("POST", "/api/checks", api.create_check(locations=["Mars"]))  # 400: no agent is there
    pinger = api.register("ping-only", "Frankfurt", capabilities=["ping"])
    failed = check("POST", "/api/checks", api.create_check(checks=["traceroute"], agents=[pinger["agent_id"]])).body
    assert failed["status"] == "failed"
    mine = [t for t in created["tasks"] if t["agent_id"] == agent["agent_id"]]
    theirs = [t for t in created["tasks"] if t["agent_id"] == other["agent_id"]]
    check("GET", f"/api/checks/{created['check_id']}", api.get(f"/api/checks/{created['check_id']}"))
    check("POST", f"/api/tasks/{mine[0]['task_id']}/start", api.start(agent, mine[0]["task_id"]))
    check("POST", f"/api/tasks/{mine[0]['task_id']}/start", api.start(other, mine[0]["task_id"]))
    check("POST", "/api/tasks/x/start", api.start(agent, "00000000-0000-0000-0000-000000000000"))
    check("POST", "/api/tasks/x/start", api.post("/api/tasks/x/start"))
    check("POST", f"/api/tasks/{mine[0]['task_id']}/result", api.result(agent, mine[0]["task_id"]))
    check("POST", f"/api/tasks/{mine[0]['task_id']}/result", api.result(agent, mine[0]["task_id"]))
    check("POST", f"/api/tasks/{mine[0]['task_id']}/start", api.start(agent, mine[0]["task_id"]))
    check("POST", f"/api/tasks/{mine[1]['task_id']}/result", api.result(agent, mine[1]["task_id"], success=False))
    check("POST", f"/api/tasks/{theirs[0]['task_id']}/result", api.result(agent, theirs[0]["task_id"]))
    check("POST", "/api/tasks/x/result", api.result(agent, "00000000-0000-0000-0000-000000000000"))
    check(
        "POST",
        "/api/tasks/x/result",
        api.post(
            f"/api/tasks/{theirs[0]['task_id']}/result", {"success": 1}, headers={"X-Agent-Token": other["api_token"]}
        ),
    )
    check("POST", "/api/tasks/x/result", api.post(f"/api/tasks/{theirs[0]['task_id']}/result", {"success": True}))
    batch = {
        "results": [
            {"task_id": mine[0]["task_id"], "success": True, "duration_ms": 1},  # a duplicate by now
            {"task_id": theirs[0]["task_id"], "success": True},  # 403
            {"task_id": "nope", "success": True},  # 400
        ],
        "started": [mine[0]["task_id"] if len(mine) < 3 else mine[2]["task_id"], str(uuid.UUID(int=0))],
    }
    token = {"X-Agent-Token": agent["api_token"]}
    check("POST", "/api/tasks/results", api.post("/api/tasks/results", batch, headers=token))
    check("POST", "/api/tasks/results", api.post("/api/tasks/results", {"results": "x"}, headers=token))
    check("POST", "/api/tasks/results", api.post("/api/tasks/results", batch))
    check("GET", f"/api/tasks/{mine[0]['task_id']}", api.get(f"/api/tasks/{mine[0]['task_id']}"))
    check("GET", "/api/tasks/x", api.get("/api/tasks/x"))
    db.execute(
        "UPDATE check_tasks SET deadline_at = now() - interval '1 second' WHERE check_id = %s", (created["check_id"],)
    )
    check("GET", f"/api/checks/{created['check_id']}", api.get(f"/api/checks/{created['check_id']}"))
    check("GET", f"/api/agents/{agent['agent_id']}/stats", api.get(f"/api/agents/{agent['agent_id']}/stats"))
    check("GET", "/api/agents/x/stats", api.get("/api/agents/x/stats"))
    check("GET", "/api/agents/x/stats", api.get(f"/api/agents/{agent['agent_id']}/stats?hours=-1"))

    check("GET", "/api/checks", api.get("/api/checks?limit=1"))
    check("GET", "/api/checks", api.get("/api/checks?status=nope"))
    check("GET", "/api/checks/x", api.get("/api/checks/00000000-0000-0000-0000-000000000000"))
    check("DELETE", "/api/checks/x", api.delete(f"/api/checks/{failed['check_id']}"))
    check("DELETE", "/api/checks/x", api.delete(f"/api/checks/{failed['check_id']}", headers={"X-Admin-Token": "nope"}))
    check(
        "DELETE",
        "/api/checks/x",
        api.delete(f"/api/checks/{failed['check_id']}", headers={"X-Admin-Token": ADMIN_TOKEN}),
    )
    check(
        "DELETE",
        "/api/checks/x",
        api.delete(f"/api/checks/{failed['check_id']}", headers={"X-Admin-Token": ADMIN_TOKEN}),
    )
    spare = api.register("spare-1")
    check("DELETE", "/api/agents/x", api.delete(f"/api/agents/{spare['agent_id']}"))
    check("DELETE", "/api/agents/x", api.delete(f"/api/agents/{spare['agent_id']}", headers={"X-Admin-Token": "no"}))
    check(
        "DELETE",
        "/api/agents/x",
        api.delete(f"/api/agents/{spare['agent_id']}", headers={"X-Admin-Token": ADMIN_TOKEN}),
    )
    check(
        "DELETE",
        "/api/agents/x",
        api.delete(f"/api/agents/{spare['agent_id']}", headers={"X-Admin-Token": ADMIN_TOKEN}),
    )
    check("GET", "/metrics", api.get("/metrics"))
    check("GET", "/metrics", api.get("/metrics", headers={"X-Admin-Token": "no"}))
    check("GET", "/metrics", api.get("/metrics", headers={"X-Admin-Token": ADMIN_TOKEN}))
    check("GET", "/health", api.get("/health"))
    check("GET", "/api/openapi.json", api.get("/api/openapi.json"))

    from chalicelib import config

    config.reset_settings(checks_per_hour=0)
    check("POST", "/api/checks", api.create_check())

    operations = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert {(p, m) for p, m, _ in seen} == operations
