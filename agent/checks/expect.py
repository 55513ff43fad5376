"""http `expect`: the assertions about the last response (chalicelib/httpopts.py validates them).

Every assertion is evaluated, not only up to the first failure, so a result shows all
that held and all that did not: `data.assertions` is a list of
`{assertion, expected, passed, seen}` in the order of httpopts.EXPECT_KEYS. A failure
is error kind `assertion_failed`, whose message names the first failing assertion and
what was seen (the check's own problems, a refused connection or a bad certificate,
keep their kinds: assertions are about a response that arrived).

The body assertions read what the check read: at most BODY_CAP_BYTES (http.py), decoded
with the response's charset (else UTF-8, bad bytes replaced).
"""

from __future__ import annotations

import json
import re
from email.message import Message
from typing import Any

from chalicelib import httpopts

from .base import CheckFailure

SEEN_CHARS = 200  # of a body or header value, in a result


def wants_body(expect: dict | None) -> bool:
    return bool(expect) and any(k in expect for k in ("body_contains", "body_matches", "json"))


def _clip(text: str) -> str:
    return text if len(text) <= SEEN_CHARS else text[:SEEN_CHARS] + "…"


def _status_text(ranges: list[list[int]]) -> str:
    return ", ".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges)


def body_text(body: bytes | None, content_type: str | None) -> str | None:
    if body is None:
        return None
    charset = "utf-8"
    if content_type:
        message = Message()
        message["content-type"] = content_type
        charset = message.get_content_charset() or "utf-8"
    try:
        return body.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


def evaluate(expect: dict, status: int, headers: Message | None, body: bytes | None, truncated: bool) -> list[dict]:
    """The assertions' outcomes. `headers` is every response header; `body` None: none was read (HEAD)."""
    out: list[dict] = []

    def record(name: str, expected: Any, passed: bool, seen: Any) -> None:
        out.append({"assertion": name, "expected": expected, "passed": passed, "seen": seen})

    if "status" in expect:
        ranges = expect["status"]
        record("status", _status_text(ranges), any(low <= status <= high for low, high in ranges), str(status))
    for name, rule in (expect.get("headers") or {}).items():
        values = headers.get_all(name) if headers is not None else None
        value = ", ".join(values) if values else None
        if rule is True:
            record(f"headers.{name}", "present", value is not None, _clip(value) if value is not None else "absent")
        else:
            passed = value is not None and re.search(rule, value) is not None
            record(f"headers.{name}", rule, passed, _clip(value) if value is not None else "absent")
    text = body_text(body, headers.get("content-type") if headers is not None else None)
    no_body = "no body was read" + (" (HEAD)" if body is None else "")
    if "body_contains" in expect:
        wanted = expect["body_contains"]
        passed = text is not None and wanted in text
        record("body_contains", wanted, passed, _body_seen(text, wanted, passed, truncated) if text else no_body)
    if "body_matches" in expect:
        pattern = expect["body_matches"]
        match = re.search(pattern, text) if text is not None else None
        seen = _clip(match.group(0)) if match else (_body_seen(text, None, False, truncated) if text else no_body)
        record("body_matches", pattern, match is not None, seen)
    if "json" in expect:
        _evaluate_json(expect["json"], text, truncated, record)
    return out


def _body_seen(text: str, wanted: str | None, passed: bool, truncated: bool) -> str:
    if passed and wanted:
        at = text.find(wanted)
        return f"found at character {at}"
    suffix = f" (the first {len(text.encode())} bytes were read)" if truncated else ""
    return f"the body begins {_clip(text)!r}{suffix}"


def _evaluate_json(wanted: dict, text: str | None, truncated: bool, record) -> None:
    document = None
    problem = None
    if text is None:
        problem = "no body was read"
    else:
        try:
            document = json.loads(text)
        except ValueError as exc:
            problem = f"the body is not JSON ({exc.msg} at character {exc.pos})" + (
                "; it was cut at the read limit" if truncated else ""
            )
    for path, expected in wanted.items():
        if problem:
            record(f"json.{path}", expected, False, problem)
            continue
        value = httpopts.walk_json(document, httpopts.parse_json_path(path))
        if value is httpopts.MISSING:
            record(f"json.{path}", expected, False, "no such path")
        else:
            # JSON equality: 1 == 1.0, but true is not 1
            passed = value == expected and isinstance(value, bool) == isinstance(expected, bool)
            record(f"json.{path}", expected, passed, value if _small(value) else _clip(json.dumps(value)))


def _small(value: Any) -> bool:
    return not isinstance(value, (dict, list)) and len(str(value)) <= SEEN_CHARS


def check(assertions: list[dict], data: dict, address: str | None) -> None:
    """Raise assertion_failed naming the first failing assertion and what it saw."""
    failed = [a for a in assertions if not a["passed"]]
    if not failed:
        return
    first = failed[0]
    more = f" (and {len(failed) - 1} more failed)" if len(failed) > 1 else ""
    raise CheckFailure(
        "assertion_failed",
        f"expect.{first['assertion']}: expected {_show(first['expected'])}, saw {_show(first['seen'])}{more}",
        data=data,
        address=address,
    )


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
