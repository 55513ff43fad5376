"""The http check's richer request and its assertions: validation (API and agent alike),
redaction for the read side, and the JSON path the `expect.json` assertion walks.

Pure standard library, like `protocol` (the agent and the CLI import it).

    options.http.method    GET | HEAD | OPTIONS | POST
    options.http.body      a small request body (POST only, at most MAX_BODY bytes of UTF-8)
    options.http.headers   {name: value}, at most MAX_HEADERS; names the request machinery owns
                           (Content-Length, Connection, ...) are refused; Host is allowed but
                           its value goes through the target policy (chalicelib/targets.py)
    options.http.auth      {username, password}: HTTP basic auth. Stored to reach the agent,
                           never shown again: reads get `password: REDACTED` (redact_options)
    options.http.expect    the assertions, all of which must hold (agent/checks/expect.py):
        status          [200, "301-302", ...]  the status must be one of these (replaces expected_status)
        headers         {name: regex | true}   present (true) or matching the pattern (re.search)
        body_contains   "text"                 a substring of the body (first BODY_CAP bytes, UTF-8)
        body_matches    "regex"                re.search over the same text
        json            {path: value}          the body is JSON and each path equals its value
                                               ($.a.b[0], $["odd key"]; `$` alone is the document)
"""

from __future__ import annotations

import re
from typing import Any

from .protocol import OptionError, parse_expected_status

MAX_HEADERS = 16
MAX_HEADER_VALUE = 1024
MAX_BODY = 8192
MAX_ASSERTIONS = 16
MAX_PATTERN = 255
REDACTED = "********"

# Framing and connection headers belong to the request machinery (HTTP/1.1 and HTTP/2 alike).
OWNED_HEADERS = frozenset(
    ("content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "proxy-connection", "trailer")
)
# Values never shown back (the options are public, like the checks).
SECRET_HEADERS = frozenset(("authorization", "proxy-authorization", "cookie"))
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")
EXPECT_KEYS = ("status", "headers", "body_contains", "body_matches", "json")


def validate_headers(value: Any, field: str) -> dict[str, str]:
    """{name: value} of at most MAX_HEADERS custom request headers; names keep their case."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OptionError(field, 'must be an object of header names to values, like {"Accept-Language": "de"}')
    if len(value) > MAX_HEADERS:
        raise OptionError(field, f"at most {MAX_HEADERS} headers (got {len(value)})")
    out: dict[str, str] = {}
    seen: set[str] = set()
    for name, text in value.items():
        where = f"{field}.{name}"
        if not _TOKEN.match(name):
            raise OptionError(where, "is not a valid header name (letters, digits and !#$%&'*+.^_`|~-)")
        lower = name.lower()
        if lower in seen:
            raise OptionError(where, "is given twice (header names are case-insensitive)")
        seen.add(lower)
        if lower in OWNED_HEADERS:
            raise OptionError(where, "is set by the check itself and cannot be given")
        if not isinstance(text, str):
            raise OptionError(where, "must be a string")
        if len(text) > MAX_HEADER_VALUE:
            raise OptionError(where, f"must be at most {MAX_HEADER_VALUE} characters")
        if any(c in text for c in "\r\n\0"):
            raise OptionError(where, "must not contain line breaks or NUL")
        if lower in SECRET_HEADERS and text == REDACTED:
            raise OptionError(where, "is the redaction mark of a stored check; give the value itself")
        if not text.isascii():
            raise OptionError(where, "must be ASCII (encode other text, e.g. RFC 8187)")
        out[name] = text
    return out


def header(headers: dict[str, str], name: str) -> str | None:
    """A header's value by case-insensitive name."""
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def validate_auth(value: Any, field: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"username", "password"}:
        raise OptionError(field, "must be {username, password}")
    out = {}
    for key in ("username", "password"):
        text = value.get(key, "")
        if not isinstance(text, str):
            raise OptionError(f"{field}.{key}", "must be a string")
        if len(text) > 255:
            raise OptionError(f"{field}.{key}", "must be at most 255 characters")
        if any(c in text for c in "\r\n\0"):
            raise OptionError(f"{field}.{key}", "must not contain line breaks or NUL")
        out[key] = text
    if not out["username"]:
        raise OptionError(f"{field}.username", "must not be empty")
    if ":" in out["username"]:
        raise OptionError(f"{field}.username", "must not contain ':' (basic auth joins user:password)")
    if out["password"] == REDACTED:
        raise OptionError(f"{field}.password", "is the redaction mark of a stored check; give the password itself")
    return out


def validate_body(value: Any, method: str, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise OptionError(field, "must be a string")
    if method != "POST":
        raise OptionError(field, f"a body is sent with POST only (method is {method})")
    if len(value.encode("utf-8")) > MAX_BODY:
        raise OptionError(field, f"must be at most {MAX_BODY} bytes")
    return value


def _pattern(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise OptionError(field, "must be a non-empty regular expression")
    if len(value) > MAX_PATTERN:
        raise OptionError(field, f"must be at most {MAX_PATTERN} characters")
    try:
        re.compile(value)
    except re.error as exc:
        raise OptionError(field, f"is not a valid regular expression: {exc}") from None
    return value


def validate_expect(value: Any, field: str) -> dict[str, Any] | None:
    """The assertions, normalized: status as [[low, high], ...]; a bad regex or path is a 400 naming it."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise OptionError(field, f"must be an object with some of {', '.join(EXPECT_KEYS)}")
    unknown = sorted(set(value) - set(EXPECT_KEYS))
    if unknown:
        raise OptionError(f"{field}.{unknown[0]}", f"unknown assertion (known: {', '.join(EXPECT_KEYS)})")
    out: dict[str, Any] = {}
    if "status" in value:
        statuses = value["status"]
        statuses = statuses if isinstance(statuses, list) else [statuses]
        if not statuses or len(statuses) > MAX_ASSERTIONS:
            raise OptionError(f"{field}.status", f"must list 1 to {MAX_ASSERTIONS} codes or ranges")
        # parse_expected_status also takes its own output ([low, high]) back: the agent normalizes again
        out["status"] = [parse_expected_status(s, f"{field}.status[{i}]") for i, s in enumerate(statuses)]
    if "headers" in value:
        wanted = value["headers"]
        if not isinstance(wanted, dict) or not wanted or len(wanted) > MAX_ASSERTIONS:
            raise OptionError(f"{field}.headers", f"must map 1 to {MAX_ASSERTIONS} header names to a regex or true")
        out["headers"] = {}
        for name, rule in wanted.items():
            if not _TOKEN.match(name):
                raise OptionError(f"{field}.headers.{name}", "is not a valid header name")
            if rule is not True:
                rule = _pattern(rule, f"{field}.headers.{name}")
            out["headers"][name] = rule
    if "body_contains" in value:
        text = value["body_contains"]
        if not isinstance(text, str) or not text or len(text) > MAX_PATTERN:
            raise OptionError(f"{field}.body_contains", f"must be a non-empty string of at most {MAX_PATTERN}")
        out["body_contains"] = text
    if "body_matches" in value:
        out["body_matches"] = _pattern(value["body_matches"], f"{field}.body_matches")
    if "json" in value:
        wanted = value["json"]
        if not isinstance(wanted, dict) or not wanted or len(wanted) > MAX_ASSERTIONS:
            raise OptionError(f"{field}.json", f"must map 1 to {MAX_ASSERTIONS} JSON paths to values")
        for path in wanted:
            parse_json_path(path, f"{field}.json.{path}")
        out["json"] = dict(wanted)
    if not out:
        raise OptionError(field, f"must hold at least one of {', '.join(EXPECT_KEYS)}")
    return out


def validate_http(out: dict[str, Any], prefix: str) -> None:
    """Checks across the http options, in place (normalize_options calls it)."""
    out["headers"] = validate_headers(out.get("headers"), f"{prefix}.headers")
    out["auth"] = validate_auth(out.get("auth"), f"{prefix}.auth")
    out["body"] = validate_body(out.get("body"), out["method"], f"{prefix}.body")
    out["expect"] = validate_expect(out.get("expect"), f"{prefix}.expect")
    if out["auth"] and header(out["headers"], "authorization") is not None:
        raise OptionError(f"{prefix}.auth", "and an Authorization header cannot both be given")


def redact_options(options: Any) -> Any:
    """A check's stored options ({type: {...}}), as reads show them: no password, no secret header value."""
    if not isinstance(options, dict):
        return options
    out = dict(options)
    http = out.get("http")
    if isinstance(http, dict):
        out["http"] = redact_http(http)
    return out


def redact_http(http: dict[str, Any]) -> dict[str, Any]:
    http = dict(http)
    if isinstance(http.get("auth"), dict):
        http["auth"] = {"username": http["auth"].get("username"), "password": REDACTED}
    if isinstance(http.get("headers"), dict):
        http["headers"] = {k: (REDACTED if k.lower() in SECRET_HEADERS else v) for k, v in http["headers"].items()}
    return http


# ---- JSON paths: $, .name, [index], ["key"] (a small subset of RFC 9535, enough to name one value)

_PATH_TOKEN = re.compile(r"""\.([A-Za-z_][A-Za-z0-9_-]*)|\[(-?\d+)\]|\[\s*"((?:[^"\\]|\\.)*)"\s*\]""")


def parse_json_path(path: Any, field: str = "path") -> list[str | int]:
    """`$.items[0]["full name"]` -> ["items", 0, "full name"]."""
    if not isinstance(path, str) or not path.startswith("$") or len(path) > MAX_PATTERN:
        raise OptionError(field, 'a JSON path starts with $, like $.status or $.items[0]["name"]')
    steps: list[str | int] = []
    pos = 1
    while pos < len(path):
        match = _PATH_TOKEN.match(path, pos)
        if not match:
            raise OptionError(field, f'cannot read the JSON path from {path[pos:]!r} on (use .name, [0] or ["key"])')
        name, index, quoted = match.groups()
        if name is not None:
            steps.append(name)
        elif index is not None:
            steps.append(int(index))
        else:
            steps.append(re.sub(r"\\(.)", r"\1", quoted))
        pos = match.end()
    return steps


_MISSING = object()


def walk_json(document: Any, steps: list[str | int]) -> Any:
    """The value at `steps`, or MISSING."""
    value = document
    for step in steps:
        in_list = isinstance(step, int) and isinstance(value, list) and -len(value) <= step < len(value)
        in_object = isinstance(step, str) and isinstance(value, dict) and step in value
        if not (in_list or in_object):
            return _MISSING
        value = value[step]
    return value


MISSING = _MISSING
