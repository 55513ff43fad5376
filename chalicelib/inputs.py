"""Request input parsing: JSON bodies, query parameters and typed fields.

Every problem becomes a 400 that names the field, never a 500.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from typing import Any

from .errors import BadRequest, NotFound, ValidationFailed

_MISSING = object()


def parse_json_body(raw: bytes | str | None, max_bytes: int, required: bool = True) -> dict[str, Any]:
    """The request body as a JSON object."""
    if raw is None or raw == b"" or raw == "":
        if required:
            raise ValidationFailed("a JSON object body is required", field="body")
        return {}
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > max_bytes:
        raise BadRequest(f"body is {size} bytes; the limit is {max_bytes}", field="body", code="body_too_large")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        doc = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except UnicodeDecodeError:
        raise BadRequest("body is not valid UTF-8", field="body", code="invalid_json") from None
    except _Unrepresentable as exc:
        raise BadRequest(f"body is not valid JSON: {exc}", field="body", code="invalid_json") from None
    except (ValueError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not valid JSON"
        raise BadRequest(f"body is not valid JSON: {reason}", field="body", code="invalid_json") from None
    if not isinstance(doc, dict):
        raise ValidationFailed("body must be a JSON object", field="body")
    _reject_unstorable_strings(doc)
    return doc


class _Unrepresentable(ValueError):
    """A JSON value PostgreSQL (and JSON itself) cannot hold."""


def _reject_constant(name: str):
    raise _Unrepresentable(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 would be stored as Infinity, which is not JSON
        raise _Unrepresentable(f"number {text[:32]} is out of range")
    return value


# PostgreSQL text and jsonb cannot hold NUL, and a lone surrogate (valid in JSON's
# \uD800 escapes) is not encodable as UTF-8: refuse them here, naming the field,
# rather than fail later inside the database driver.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _reject_unstorable_strings(doc: dict) -> None:
    stack: list[tuple[str, Any]] = [("", doc)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                field = f"{path}.{key}" if path else key
                if _UNSTORABLE.search(key):
                    raise ValidationFailed(
                        f"a key in {path or 'body'} contains a NUL or unpaired surrogate character",
                        field=path or "body",
                    )
                stack.append((field, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
        elif isinstance(value, str) and _UNSTORABLE.search(value):
            raise ValidationFailed(f"{path} contains a NUL or unpaired surrogate character", field=path)


def clean_text(value: str, field: str) -> str:
    """A query-string value that can be stored and compared (see _UNSTORABLE)."""
    if _UNSTORABLE.search(value):
        raise ValidationFailed(f"{field} contains a NUL or unpaired surrogate character", field=field)
    return value


def _given(body: dict, name: str, field: str, required: bool) -> Any:
    """The value of `name`, or _MISSING when absent or null (an error if `required`)."""
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise ValidationFailed(f"{field} is required", field=field)
        return _MISSING
    return value


def reject_unknown(body: dict, allowed: tuple[str, ...], prefix: str = "") -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ValidationFailed(f"unknown field (known: {', '.join(allowed)})", field=prefix + unknown[0])


def string(
    body: dict,
    name: str,
    *,
    required: bool = False,
    max_len: int = 255,
    min_len: int = 0,
    default: Any = None,
    field: str | None = None,
) -> str | None:
    field = field or name
    value = _given(body, name, field, required)
    if value is _MISSING:
        return default
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be a string", field=field)
    value = value.strip()
    if required and not value:
        raise ValidationFailed(f"{field} must not be empty", field=field)
    if len(value) < min_len:
        raise ValidationFailed(f"{field} must be at least {min_len} characters", field=field)
    if len(value) > max_len:
        raise ValidationFailed(f"{field} must be at most {max_len} characters", field=field)
    return value


def integer(
    body: dict,
    name: str,
    *,
    required: bool = False,
    low: int | None = None,
    high: int | None = None,
    default: Any = None,
    field: str | None = None,
) -> int | None:
    field = field or name
    value = _given(body, name, field, required)
    if value is _MISSING:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON Schema: 2.0 is an integer (and bounded by the schema before this)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(f"{field} must be an integer", field=field)
    _bounds(field, value, low, high)
    return value


def number(
    body: dict,
    name: str,
    *,
    required: bool = False,
    low: float | None = None,
    high: float | None = None,
    default: Any = None,
    field: str | None = None,
) -> float | None:
    field = field or name
    value = _given(body, name, field, required)
    if value is _MISSING:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationFailed(f"{field} must be a number", field=field)
    # Bounds first: Python compares an int of any size with a float exactly, while
    # float() (and math.isfinite) of an integer literal like 1e400's digits overflows.
    _bounds(field, value, low, high)
    try:
        value = float(value)
    except OverflowError:
        raise ValidationFailed(f"{field} is out of range", field=field) from None
    if not math.isfinite(value):
        raise ValidationFailed(f"{field} must be a number", field=field)
    return value


def boolean(
    body: dict, name: str, *, required: bool = False, default: Any = None, field: str | None = None
) -> bool | None:
    field = field or name
    value = _given(body, name, field, required)
    if value is _MISSING:
        return default
    if not isinstance(value, bool):
        raise ValidationFailed(f"{field} must be true or false", field=field)
    return value


def string_list(
    body: dict,
    name: str,
    *,
    max_items: int,
    max_len: int = 255,
    choices: tuple[str, ...] | None = None,
    required: bool = False,
    field: str | None = None,
) -> list[str] | None:
    field = field or name
    value = _given(body, name, field, required)
    if value is _MISSING:
        return None
    if not isinstance(value, list):
        raise ValidationFailed(f"{field} must be an array of strings", field=field)
    if len(value) > max_items:
        raise ValidationFailed(f"{field} may hold at most {max_items} items", field=field)
    out: list[str] = []
    for i, item in enumerate(value):
        item_field = f"{field}[{i}]"
        if not isinstance(item, str) or not item.strip():
            raise ValidationFailed(f"{item_field} must be a non-empty string", field=item_field)
        item = item.strip()
        if len(item) > max_len:
            raise ValidationFailed(f"{item_field} must be at most {max_len} characters", field=item_field)
        if choices is not None:
            item = item.lower()
            if item not in choices:
                raise ValidationFailed(f"{item_field} must be one of {', '.join(choices)}", field=item_field)
        if item not in out:
            out.append(item)
    return out


def _bounds(field: str, value: float, low: float | None, high: float | None) -> None:
    if low is not None and value < low:
        raise ValidationFailed(f"{field} must be at least {low}", field=field)
    if high is not None and value > high:
        raise ValidationFailed(f"{field} must be at most {high}", field=field)


def query_int(params: dict | None, name: str, default: int, low: int, high: int) -> int:
    raw = (params or {}).get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ValidationFailed(f"{name} must be an integer", field=name) from None
    _bounds(name, value, low, high)
    return value


def uuid_or_404(value: str, what: str) -> str:
    """A path id; anything that is not a UUID cannot exist."""
    try:
        return str(uuid.UUID(value))
    except (TypeError, ValueError, AttributeError):
        raise NotFound(f"{what} {value!r} not found") from None


def uuid_field(value: Any, field: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (TypeError, ValueError, AttributeError):
        raise ValidationFailed(f"{field} must be an id (UUID)", field=field) from None
