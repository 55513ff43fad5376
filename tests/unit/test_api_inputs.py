"""Input parsing and the error shape, without servers."""

from __future__ import annotations

import pytest

from chalicelib import inputs
from chalicelib.errors import BadRequest, Conflict, ValidationFailed
from chalicelib.ratelimit import Decision, client_ip


def test_error_body_has_code_message_and_field_details():
    exc = ValidationFailed("target is required", field="target")
    assert exc.status == 400
    assert exc.body() == {
        "error": {
            "code": "validation_error",
            "message": "target is required",
            "details": [{"field": "target", "message": "target is required"}],
        }
    }
    conflict = Conflict("done", code="task_finished", extra={"task": {"status": "completed"}})
    assert conflict.body()["task"] == {"status": "completed"} and conflict.body()["error"]["code"] == "task_finished"


@pytest.mark.parametrize(
    "raw, code",
    [
        (b"{", "invalid_json"),
        (b"[]", "validation_error"),
        (b"\xc3\x28", "invalid_json"),
        (b"Infinity", "invalid_json"),
        (b"[" * 100000 + b"]" * 100000, "invalid_json"),
    ],
)
def test_bad_bodies_are_400_naming_the_body(raw, code):
    with pytest.raises(BadRequest) as info:
        inputs.parse_json_body(raw, 1 << 20)
    assert info.value.code == code and info.value.details[0]["field"] == "body"


def test_body_over_the_limit_is_refused_before_parsing():
    with pytest.raises(BadRequest) as info:
        inputs.parse_json_body(b'{"a": "' + b"x" * 100 + b'"}', 50)
    assert info.value.code == "body_too_large"


def test_optional_body_may_be_empty():
    assert inputs.parse_json_body(None, 10, required=False) == {}


@pytest.mark.parametrize("value", [True, "3", 3.5, None])
def test_integer_fields_reject_other_types(value):
    if value is None:
        with pytest.raises(ValidationFailed):
            inputs.integer({"n": value}, "n", required=True)
    else:
        with pytest.raises(ValidationFailed) as info:
            inputs.integer({"n": value}, "n")
        assert info.value.details[0]["field"] == "n"


@pytest.mark.parametrize("high", [None, 1000.0])
def test_a_huge_integer_in_a_number_field_is_a_400_naming_it(high):
    body = inputs.parse_json_body(b'{"duration_ms": 1' + b"0" * 400 + b"}", 1 << 20)
    with pytest.raises(ValidationFailed) as info:
        inputs.number(body, "duration_ms", low=0, high=high)
    assert info.value.details[0]["field"] == "duration_ms"


def test_string_lists_name_the_bad_item_and_drop_duplicates():
    assert inputs.string_list({"c": ["HTTP", "http", "ping"]}, "c", max_items=5, choices=("http", "ping")) == [
        "http",
        "ping",
    ]
    with pytest.raises(ValidationFailed) as info:
        inputs.string_list({"c": ["http", 3]}, "c", max_items=5)
    assert info.value.details[0]["field"] == "c[1]"


def test_rate_limit_decision_headers():
    assert Decision(True, 100, 99, 3000).headers() == {
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Remaining": "99",
        "X-RateLimit-Reset": "3000",
    }
    assert Decision(False, 100, 0, 12).headers()["Retry-After"] == "12"


def test_client_ip_prefers_the_gateway_peer_over_a_client_written_header():
    assert client_ip("8.8.4.4", "1.2.3.4") == "8.8.4.4"
    assert client_ip("10.1.2.3", "1.2.3.4, 10.0.0.9") == "1.2.3.4"


def test_importing_the_app_connects_to_nothing_even_with_no_configuration():
    """Chalice imports app.py while packaging, on a machine with no servers and no settings."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    probe = (
        "import socket\n"
        "def refuse(*a, **k):\n"
        "    raise AssertionError('app.py connected at import time')\n"
        "socket.create_connection = refuse\n"
        "socket.socket.connect = refuse\n"
        "import app\n"
        "assert '/api/checks' in app.app.routes\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
