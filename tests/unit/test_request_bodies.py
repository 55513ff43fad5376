"""The request-body validator (chalicelib/bodies.py) says what JSON Schema 2020-12 says.

fastjsonschema implements draft 7; OpenAPI 3.1's schemas are 2020-12. The request schemas
keep to keywords both drafts define alike, and on a corpus of bodies the validator's verdict
is the reference implementation's (jsonschema's Draft202012Validator).
"""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from chalicelib import bodies, openapi
from chalicelib.errors import ValidationFailed

# Keywords with one meaning in draft 7 and 2020-12 (plus annotations and our x-error).
SHARED_KEYWORDS = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "const",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "items",
    "minItems",
    "maxItems",
    "maxProperties",
    "propertyNames",
    "if",
    "then",
    "$ref",
    "description",
    "default",
    "x-error",
}
OPERATIONS = [
    (method.upper(), path) for path, item in openapi.PATHS.items() for method, op in item.items() if "requestBody" in op
]


def _keywords(schema, out: set) -> set:
    if isinstance(schema, dict):
        for key, value in schema.items():
            out.add(key)
            if key == "properties":
                for sub in value.values():
                    _keywords(sub, out)
            elif key in ("items", "additionalProperties", "propertyNames", "if", "then") and isinstance(value, dict):
                _keywords(value, out)
    return out


@pytest.mark.parametrize("method, route", OPERATIONS)
def test_request_schemas_use_only_keywords_draft_7_and_2020_12_share(method, route):
    used = _keywords(bodies.schema_of(method, route), set())
    assert used <= SHARED_KEYWORDS, used - SHARED_KEYWORDS


CORPUS = {
    "/api/checks": [
        {"target": "example.com", "checks": ["http"]},
        {"target": "example.com", "checks": ["http"], "limit": 2.0},
        {"target": "example.com", "checks": ["http"], "limit": 2.5},
        {"target": "", "checks": ["http"]},
        {"target": " ", "checks": ["http"]},
        {"target": "x", "checks": []},
        {"target": "x", "checks": ["HTTP"]},
        {"target": "x", "checks": ["dns"], "options": {"dns": {"record_type": "MX", "resolver": None}}},
        {"target": "x", "checks": ["http"], "options": {"http": {"path": "no-slash"}}},
        {"target": "x", "checks": ["http"], "options": {"http": {"expected_status": [200, 299]}}},
        {"target": "x", "checks": ["http"], "options": {"http": {"expected_status": [200]}}},
        {"target": "x", "checks": ["http"], "options": {"http": {"expected_status": "2xx"}}},
        {"target": "x", "checks": ["http"], "options": {"http": {"timeout": 10**30}}},
        {"target": "x", "checks": ["http"], "agents": ["not-a-uuid"]},
        {"target": "x", "checks": ["http"], "agents": ["5f0c4ed6-35a1-4c57-9f2c-1b8e7c1ad3f1"]},
        {"target": "x", "checks": ["http"], "unknown": 1},
        {"target": "x" * 2049, "checks": ["http"]},
        # issue 18's request options: headers, auth, body, expect, http_version, the DNS transports
        {"target": "x", "checks": ["http"], "options": {"http": {"headers": {"X-A": "1"}, "http_version": "2"}}},
        {"target": "x", "checks": ["http"], "options": {"http": {"headers": {"bad name": "1"}}}},
        {"target": "x", "checks": ["http"], "options": {"http": {"headers": {f"X-{i}": "v" for i in range(17)}}}},
        {"target": "x", "checks": ["http"], "options": {"http": {"auth": {"password": "p"}}}},
        {"target": "x", "checks": ["http"], "options": {"http": {"method": "POST", "body": "a=1", "ocsp": True}}},
        {"target": "x", "checks": ["http"], "options": {"http": {"expect": {"status": [200], "body_contains": "ok"}}}},
        {"target": "x", "checks": ["http"], "options": {"http": {"expect": {"nope": 1}}}},
        {"target": "x", "checks": ["http"], "options": {"http": {"http_version": "3"}}},
        {"target": "x", "checks": ["dns"], "options": {"dns": {"protocol": "dot", "dnssec": True}}},
        {"target": "x", "checks": ["dns"], "options": {"dns": {"protocol": "DoT"}}},
        {"target": "x", "checks": ["dns"], "options": {"dns": {"protocol": "doh", "doh_path": "q"}}},
        {"target": "x", "checks": ["dns"], "options": {"dns": {"record_type": "HTTPS", "trace": True}}},
    ],
    "/api/agents/register": [
        {"name": "a", "location": "b"},
        {"name": "", "location": "b"},
        {"name": "a"},
        {"name": "a", "location": "b", "capabilities": ["http", "ping", "dns", "tcp", "traceroute", "http"]},
        {"name": "a", "location": "b", "replace": 1},
    ],
    "/api/agents/heartbeat": [
        {},
        {"current_tasks": 3.0},
        {"current_tasks": 100_001},
        {"current_tasks": -1},
        {"version": "v" * 33},
        {"clock_offset_ms": 1e12},
    ],
    "/api/tasks/results": [
        {"results": [{"task_id": "8a4f6c1e-0000-4000-8000-000000000001", "success": True}]},
        {"results": [{"task_id": "8a4f6c1e-0000-4000-8000-000000000001", "success": False}]},
        {"results": [{"success": True}]},
        {"results": ["x"]},
        {"started": ["8a4f6c1e-0000-4000-8000-000000000001"]},
        {"started": [1]},
        {"results": [], "extra": 1},
        {},
    ],
    "/api/tasks/{task_id}/result": [
        {"success": True},
        {"success": False},
        {"success": False, "error": None},
        {"success": False, "error": {"kind": "refused", "message": "no"}},
        {"success": False, "error": {"kind": "nope", "message": "no"}},
        {"success": True, "duration_ms": 86_400_001},
        {"success": True, "duration_ms": -0.5},
        {"success": "yes"},
    ],
}


@pytest.mark.parametrize("method, route", OPERATIONS)
def test_the_validator_agrees_with_json_schema_2020_12(method, route):
    schema = dict(openapi.PATHS[route][method.lower()]["requestBody"]["content"]["application/json"]["schema"])
    reference = Draft202012Validator(
        dict(schema, components={"schemas": openapi.SCHEMAS}), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    assert CORPUS[route], route
    for body in CORPUS[route]:
        expected = not list(reference.iter_errors(body))
        try:
            bodies.validate(method, route, body)
            valid = True
        except ValidationFailed as exc:
            valid = False
            assert exc.details[0]["field"] and exc.details[0]["message"], exc.details
        assert valid == expected, (route, body)


def test_a_header_name_that_is_not_a_token_is_named():
    body = {"target": "x", "checks": ["http"], "options": {"http": {"headers": {"bad name": "1"}}}}
    with pytest.raises(ValidationFailed) as caught:
        bodies.validate("POST", "/api/checks", body)
    assert caught.value.details[0]["field"] == "options.http.headers.bad name"
    assert "HTTP header name" in caught.value.details[0]["message"]


def test_a_violation_names_the_nested_field():
    with pytest.raises(ValidationFailed) as caught:
        bodies.validate("POST", "/api/checks", {"target": "x", "checks": ["http"], "options": {"http": {"port": 0}}})
    assert caught.value.details == [{"field": "options.http.port", "message": "options.http.port must be at least 1"}]
    with pytest.raises(ValidationFailed) as caught:
        bodies.validate("POST", "/api/checks", {"target": "x", "checks": ["http"], "agents": ["x", "y"]})
    assert caught.value.details[0]["field"] == "agents[0]"
    with pytest.raises(ValidationFailed) as caught:
        bodies.validate("POST", "/api/checks", {"checks": ["http"]})
    assert caught.value.details[0] == {"field": "target", "message": "target is required"}
