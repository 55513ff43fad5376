"""The OpenAPI document is the one truth about request bodies (issue 16, defect 8).

Each handler validates its body against the very schema GET /api/openapi.json serves
(chalicelib/bodies.py), so the two cannot drift: changing the served schema changes what
the route accepts. Then one test per disagreement the document and the code used to have.
"""

from __future__ import annotations

import copy
import uuid

import pytest
from jsonschema import Draft202012Validator

from chalicelib import bodies, openapi
from tests.integration.conftest import REGISTRATION_TOKEN


def _operations_with_a_body(doc: dict) -> list[tuple[str, str, dict]]:
    return [
        (method.upper(), path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if "requestBody" in op
    ]


def _served_schema(doc: dict, op: dict) -> dict:
    return dict(op["requestBody"]["content"]["application/json"]["schema"], components=doc["components"])


@pytest.fixture
def agent(api):
    return api.register("fra-1", "Frankfurt")


def _valid_requests(api, agent) -> dict[str, tuple[str, dict, dict]]:
    """operationId -> (path, a body valid by its schema, headers that get past auth)."""
    token = {"X-Agent-Token": agent["api_token"]}
    return {
        "createCheck": ("/api/checks", {"target": "example.com", "checks": ["tcp"]}, {}),
        "registerAgent": (
            "/api/agents/register",
            {"name": "fra-2", "location": "Frankfurt"},
            {"X-Registration-Token": REGISTRATION_TOKEN},
        ),
        "agentHeartbeat": ("/api/agents/heartbeat", {"current_tasks": 0, "version": "t"}, token),
        # No such task: a valid body gets as far as the 404.
        "postResult": (
            f"/api/tasks/{uuid.uuid4()}/result",
            {"success": True, "duration_ms": 1.5, "address": "192.0.2.1", "data": {}, "error": None},
            token,
        ),
        # A batch naming an unknown task: valid, answered 200 with that entry's 404 in its place.
        "postResults": ("/api/tasks/results", {"results": [{"task_id": str(uuid.uuid4()), "success": True}]}, token),
    }


def test_every_request_body_is_validated_by_the_schema_the_api_serves(api, agent, monkeypatch):
    doc = api.get("/api/openapi.json").body
    requests = _valid_requests(api, agent)
    operations = _operations_with_a_body(doc)
    assert {op["operationId"] for _, _, op in operations} == set(requests), "a body without a test here"
    for method, route, op in operations:
        path, body, headers = requests[op["operationId"]]
        # The validator compiles exactly what is served.
        assert bodies.schema_of(method, route) == bodies._inline(_served_schema(doc, op), doc["components"]["schemas"])
        assert not list(Draft202012Validator(_served_schema(doc, op)).iter_errors(body)), op["operationId"]
        before = api.post(path, body, headers=headers)
        assert before.status != 400, (op["operationId"], before.body)

        # Tighten the served schema: the same valid body is now refused by the route itself.
        name = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        tightened = copy.deepcopy(openapi.SCHEMAS[name])
        tightened["maxProperties"] = len(body) - 1
        monkeypatch.setitem(openapi.SCHEMAS, name, tightened)
        bodies.validator.cache_clear()
        try:
            served = api.get("/api/openapi.json").body["components"]["schemas"][name]
            assert served["maxProperties"] == len(body) - 1
            after = api.post(path, body, headers=headers)
            assert after.status == 400, (op["operationId"], after.body)
            assert after.body["error"]["details"][0]["field"] == "body", after.body
        finally:
            monkeypatch.undo()
            bodies.validator.cache_clear()


def _field_of(reply) -> str:
    assert reply.status == 400, reply.body
    assert "Traceback" not in reply.raw.decode()
    return reply.body["error"]["details"][0]["field"]


def _schema(name: str) -> dict:
    return openapi.document()["components"]["schemas"][name]


def test_the_heartbeat_body_is_optional_in_the_document_as_in_the_code(api, agent):
    op = openapi.document()["paths"]["/api/agents/heartbeat"]["post"]
    assert op["requestBody"]["required"] is False
    reply = api.call("POST", "/api/agents/heartbeat", headers={"X-Agent-Token": agent["api_token"]}, raw="")
    assert reply.status == 200, reply.body


def test_current_tasks_and_duration_ms_have_the_maximum_the_code_enforces(api, agent):
    heartbeat = _schema("HeartbeatRequest")["properties"]["current_tasks"]
    result = _schema("ResultRequest")["properties"]["duration_ms"]
    assert heartbeat["maximum"] == 100_000 and result["maximum"] == 24 * 3600 * 1000
    assert _field_of(api.heartbeat(agent, current_tasks=100_001)) == "current_tasks"
    assert api.heartbeat(agent, current_tasks=100_000).status == 200
    task = f"/api/tasks/{uuid.uuid4()}/result"
    token = {"X-Agent-Token": agent["api_token"]}
    too_long = {"success": True, "duration_ms": 24 * 3600 * 1000 + 1}
    assert _field_of(api.post(task, too_long, headers=token)) == "duration_ms"
    # An integer with 400 digits is out of range, not a 500 (it is never converted to a float first).
    huge = api.call("POST", task, headers=token, raw='{"success": true, "duration_ms": ' + "9" * 400 + "}")
    assert _field_of(huge) == "duration_ms"


@pytest.mark.parametrize("value", ["", "   "])
def test_name_location_and_target_may_not_be_empty_as_the_schema_says(api, value):
    for schema, prop in (("RegisterRequest", "name"), ("RegisterRequest", "location"), ("CheckRequest", "target")):
        assert _schema(schema)["properties"][prop]["minLength"] == 1, prop
        assert list(Draft202012Validator(_schema(schema)["properties"][prop]).iter_errors(value)), (prop, value)
    registration = {"X-Registration-Token": REGISTRATION_TOKEN}
    reply = api.post("/api/agents/register", {"name": value, "location": "Frankfurt"}, headers=registration)
    assert _field_of(reply) == "name"
    reply = api.post("/api/agents/register", {"name": "x", "location": value}, headers=registration)
    assert _field_of(reply) == "location"
    assert _field_of(api.create_check(value)) == "target"


def test_an_integral_float_is_an_integer_as_json_schema_says(api, agent, db):
    assert not list(Draft202012Validator({"type": "integer"}).iter_errors(2.0))
    assert api.heartbeat(agent, current_tasks=2.0).status == 200
    assert db.execute("SELECT current_tasks FROM agents WHERE id = %s", (agent["agent_id"],)).fetchone() == {
        "current_tasks": 2
    }
    reply = api.create_check(checks=["tcp", "http"], limit=1.0, options={"tcp": {"port": 443.0}})
    assert reply.status == 202, reply.body
    check = api.get(f"/api/checks/{reply.body['check_id']}").body
    assert check["options"]["tcp"]["port"] == 443 and isinstance(check["options"]["tcp"]["port"], int)
    # Not integral: still refused, naming the field.
    assert _field_of(api.heartbeat(agent, current_tasks=2.5)) == "current_tasks"
    assert _field_of(api.create_check(checks=["tcp"], options={"tcp": {"port": 443.5}})) == "options.tcp.port"


def test_a_failed_result_requires_its_error_in_the_schema_as_in_the_code(api, agent):
    schema = dict(_schema("ResultRequest"), components=openapi.document()["components"])
    validator = Draft202012Validator(schema)
    assert list(validator.iter_errors({"success": False}))
    assert list(validator.iter_errors({"success": False, "error": None}))
    assert not list(validator.iter_errors({"success": False, "error": {"kind": "refused", "message": "no"}}))
    assert not list(validator.iter_errors({"success": True}))
    task = f"/api/tasks/{uuid.uuid4()}/result"
    token = {"X-Agent-Token": agent["api_token"]}
    for body in ({"success": False}, {"success": False, "error": None}):
        reply = api.post(task, body, headers=token)
        assert _field_of(reply) == "error"
        assert "required when success is false" in reply.body["error"]["message"]
