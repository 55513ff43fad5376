"""Request bodies, validated against the schemas the API serves (GET /api/openapi.json).

The OpenAPI document is the one truth about what a body may hold: every handler reads its
body through `read(method, route, raw)`, which finds the operation's requestBody in
`openapi.PATHS` (required or not, and its schema) and validates the body against that very
schema before the service sees it. A schema change is therefore a behaviour change, and
tests/unit/test_request_bodies.py walks every operation to keep it so.

The schemas are compiled by fastjsonschema (pure Python, a small import: this runs in
Lambda), each once and only when its operation is first called. What the services check
after it is what no schema can say (the target policy, agents that must exist, options of
types that were not requested); they never accept what the schema refuses.

Every violation is a 400 in the one error shape naming the field (`options.http.timeout`,
`agents[2]`), never a traceback. The request schemas keep to keywords that mean the same in
draft 7 (fastjsonschema's) and in 2020-12 (OpenAPI 3.1's); the unit test checks that too.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from .errors import ValidationFailed
from .inputs import parse_json_body

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Formats asserted in request bodies (RFC 4122's string form, as jsonschema checks it).
FORMATS = {"uuid": lambda value: bool(_UUID.match(value))}


def request_body(method: str, route: str) -> dict | None:
    """The operation's requestBody object as served, or None when it takes no body."""
    from .openapi import PATHS

    return PATHS.get(route, {}).get(method.lower(), {}).get("requestBody")


def schema_of(method: str, route: str) -> dict:
    """The requestBody's JSON schema with every $ref to components written in (it has no cycles)."""
    from .openapi import SCHEMAS

    body = request_body(method, route)
    if body is None:
        raise LookupError(f"{method} {route} takes no request body")
    return _inline(body["content"]["application/json"]["schema"], SCHEMAS)


def _inline(schema: Any, components: dict) -> Any:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if ref is not None:
            return _inline(components[ref.rsplit("/", 1)[-1]], components)
        return {key: _inline(value, components) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inline(item, components) for item in schema]
    return schema


@functools.cache
def validator(method: str, route: str):
    """The compiled validator of one operation's body, built on first use and kept."""
    import fastjsonschema

    return fastjsonschema.compile(schema_of(method, route), formats=FORMATS, use_default=False)


def read(method: str, route: str, raw: bytes | str | None, max_bytes: int) -> dict[str, Any]:
    """The body of a request to `method route`, parsed and valid by the served schema.

    An absent body is `{}` where the document says the body is optional (and then `{}` must
    be valid too), else a 400 naming `body`."""
    body = request_body(method, route)
    if body is None:
        raise LookupError(f"{method} {route} takes no request body; document it in chalicelib/openapi.py")
    doc = parse_json_body(raw, max_bytes, required=body.get("required", False))
    validate(method, route, doc)
    return doc


def validate(method: str, route: str, doc: Any) -> None:
    """Raise ValidationFailed, naming the field, unless `doc` is valid by the operation's schema."""
    import fastjsonschema

    try:
        validator(method, route)(doc)
    except fastjsonschema.JsonSchemaValueException as exc:
        field, message = explain(exc)
        raise ValidationFailed(message, field=field) from None


# ---- a violation, in words that name the field


def _field(path: list) -> str:
    out = ""
    for part in path[1:]:  # path[0] is fastjsonschema's name for the root, "data"
        index = isinstance(part, int) or (isinstance(part, str) and part.isdigit())  # fastjsonschema: "2"
        out += f"[{part}]" if index else (f".{part}" if out else str(part))
    return out


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


_TYPE_WORDS = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}
# What a pattern means, for the message (a regex is no help to the person who sent the body).
PATTERN_WORDS = {r"\S": "must not be empty or only spaces", "^/": "must start with /"}


def explain(exc) -> tuple[str, str]:
    """(field, message) for a fastjsonschema violation."""
    field, rule, limit, value = _field(list(exc.path)), exc.rule, exc.rule_definition, exc.value
    definition = exc.definition if isinstance(exc.definition, dict) else {}
    where = field or "body"
    if rule == "required":
        missing = next((name for name in limit if not (isinstance(value, dict) and name in value)), limit[0])
        field = _join(field, missing)
        return field, definition.get("x-error") or f"{field} is required"
    if definition.get("x-error"):
        return where, definition["x-error"]
    if rule == "additionalProperties":
        known = list(definition.get("properties", {}))
        unknown = sorted(set(value) - set(known)) if isinstance(value, dict) else []
        name = _join(field, unknown[0]) if unknown else where
        return name, f"unknown field (known: {', '.join(known)})"
    if rule == "propertyNames" and isinstance(value, dict) and isinstance(limit, dict):
        # name the key itself (options.http.headers.Bad Name), as the other field errors do
        pattern = limit.get("pattern")
        bad = next((k for k in value if pattern and not re.search(pattern, k)), None)
        if bad is not None:
            name = _join(field, bad)
            return name, f"{name} is not an HTTP header name (a token of at most 64 characters)"
    if rule == "type":
        kinds = limit if isinstance(limit, list) else [limit]
        if "number" in kinds and "integer" in kinds:
            kinds = [k for k in kinds if k != "integer"]
        return where, f"{where} must be {' or '.join(_TYPE_WORDS.get(k, k) for k in kinds)}"
    if rule in ("enum", "const"):
        choices = limit if rule == "enum" else [limit]
        return where, f"{where} must be one of {', '.join('null' if c is None else str(c) for c in choices)}"
    words = {
        "minimum": f"must be at least {limit}",
        "maximum": f"must be at most {limit}",
        "exclusiveMinimum": f"must be more than {limit}",
        "exclusiveMaximum": f"must be less than {limit}",
        "minLength": "must not be empty" if limit == 1 else f"must be at least {limit} characters",
        "maxLength": f"must be at most {limit} characters",
        "minItems": f"must hold at least {limit} items",
        "maxItems": f"may hold at most {limit} items",
        "maxProperties": f"may hold at most {limit} fields",
        "propertyNames": "has a field name that is not valid (an HTTP header name: a token of at most 64 characters)",
        "pattern": PATTERN_WORDS.get(limit, f"must match the pattern {limit}") if isinstance(limit, str) else "",
        "format": "must be an id (UUID)" if limit == "uuid" else f"must be a valid {limit}",
    }
    return where, f"{where} {words.get(rule, f'is not valid ({rule})')}"
