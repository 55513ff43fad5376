"""Following a check until it is finished: over the live WebSocket (issue 11's protocol)
when its URL is known and it opens, else by polling GET /api/checks/{id}.

The WebSocket protocol, as the client sees it:
- connect to `WS_URL?check_id=<id>`, then send one message (`request_snapshot`): API
  Gateway cannot send during `$connect`, so the server sends the snapshot in answer;
- `{"type": "snapshot", "check": <GET body>}` first, then `{"type": "result", "result": <row>}`
  per terminal task (a row already held is dropped by task_id), `{"type": "task", ...}` when
  one starts, and last `{"type": "status", ...}`, then a close with 1000;
- close 4404 (unknown check) and 4400 (malformed id) are input errors; any other early
  close, or a socket that will not open, falls back to polling from where it was.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from typing import Any

from .client import Api
from .errors import UsageError
from .protocol import TERMINAL_CHECK_STATUSES, TERMINAL_TASK_STATUSES

POLL_INTERVAL_S = 0.5
WS_OPEN_TIMEOUT_S = 3
WS_IDLE_CHECK_S = 5  # with no message for this long, look at the check over HTTP once
CLOSE_NOT_FOUND, CLOSE_BAD_REQUEST = 4404, 4400

OnUpdate = Callable[[dict[str, Any]], None]


def is_terminal(check: dict[str, Any]) -> bool:
    return check.get("status") in TERMINAL_CHECK_STATUSES


def apply_message(check: dict[str, Any] | None, message: dict[str, Any]) -> dict[str, Any] | None:
    """The check after one live message (a new dict; the input is left alone)."""
    kind = message.get("type")
    if kind == "snapshot":
        return copy.deepcopy(message["check"])
    if check is None:
        return None  # nothing to apply to before the snapshot
    check = copy.deepcopy(check)
    rows = check.setdefault("results", [])
    if kind == "result":
        row = message["result"]
        index = _row_index(rows, row.get("task_id"))
        if index is None:
            rows.append(row)
        elif rows[index].get("status") not in TERMINAL_TASK_STATUSES:
            rows[index] = row  # a duplicate of a terminal row is dropped
    elif kind == "task":
        index = _row_index(rows, message.get("task_id"))
        if index is not None and rows[index].get("status") not in TERMINAL_TASK_STATUSES:
            rows[index]["status"] = message.get("status", "in_progress")
            rows[index]["agent"] = message.get("agent") or rows[index].get("agent")
        if check.get("status") == "pending":
            check["status"] = "in_progress"
    elif kind == "status":
        check["status"] = message.get("status", check.get("status"))
        check["summary"] = message.get("summary") or check.get("summary")
        check["completed_at"] = message.get("completed_at")
    return check


def _row_index(rows: list[dict[str, Any]], task_id: str | None) -> int | None:
    return next((i for i, r in enumerate(rows) if r.get("task_id") == task_id), None)


def ws_address(ws_url: str, check_id: str) -> str:
    return f"{ws_url}{'&' if '?' in ws_url else '?'}check_id={check_id}"


def request_snapshot(ws, check_id: str) -> None:
    """The one message that asks the server for the snapshot (API Gateway cannot send
    during $connect). Kept apart so the message can follow the server if it changes."""
    ws.send(json.dumps({"action": "subscribe", "check_id": check_id}))


def watch(
    api: Api, check_id: str, on_update: OnUpdate, ws_url: str = "", first: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Follow the check to its end; `on_update` sees every state. Returns the API's final body."""
    check = first
    if ws_url and not (check and is_terminal(check)):
        check = _follow_socket(api, ws_url, check_id, on_update, check)
    if check is None or not is_terminal(check):
        _poll(api, check_id, on_update, check)
    final = api.check(check_id)
    on_update(final)
    return final


def _poll(api: Api, check_id: str, on_update: OnUpdate, check: dict[str, Any] | None) -> dict[str, Any]:
    while True:
        latest = api.check(check_id)
        if latest != check:
            on_update(latest)
        check = latest
        if is_terminal(check):
            return check
        time.sleep(POLL_INTERVAL_S)  # the polling interval itself, not a wait for a condition


def _follow_socket(
    api: Api, ws_url: str, check_id: str, on_update: OnUpdate, check: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Follow over the socket; returns the last known state (None or not terminal: poll on)."""
    try:
        from websockets.exceptions import ConnectionClosed, WebSocketException
        from websockets.sync.client import connect
    except ImportError:
        return check
    try:
        ws = connect(ws_address(ws_url, check_id), open_timeout=WS_OPEN_TIMEOUT_S, close_timeout=1)
    except (OSError, WebSocketException, TimeoutError):  # no socket: poll instead
        return check
    refusal: dict[str, Any] = {}
    try:
        with ws:
            request_snapshot(ws, check_id)
            check = _receive(api, ws, check_id, on_update, check, refusal)
    except ConnectionClosed as exc:
        _raise_refusal(exc.rcvd.code if exc.rcvd else None, refusal, check_id)
    except (OSError, WebSocketException, TimeoutError):
        pass  # dropped early: polling takes over from the last state
    return check


def _receive(api: Api, ws, check_id: str, on_update: OnUpdate, check, refusal: dict) -> dict[str, Any] | None:
    while check is None or not is_terminal(check):
        try:
            raw = ws.recv(timeout=WS_IDLE_CHECK_S)
        except TimeoutError:
            latest = api.check(check_id)  # a quiet socket: make sure nothing was missed
            if is_terminal(latest):
                return latest
            continue
        message = _parse(raw)
        if message.get("type") == "error":
            refusal.update(message)
            continue
        updated = apply_message(check, message)
        if updated is not None and updated != check:
            check = updated
            on_update(check)
    return check


def _parse(raw: str | bytes) -> dict[str, Any]:
    try:
        message = json.loads(raw)
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}


def _raise_refusal(code: int | None, refusal: dict[str, Any], check_id: str) -> None:
    code = code if code in (CLOSE_NOT_FOUND, CLOSE_BAD_REQUEST) else refusal.get("code")
    if code == CLOSE_NOT_FOUND:
        raise UsageError(refusal.get("message") or f"check {check_id} not found")
    if code == CLOSE_BAD_REQUEST:
        raise UsageError(refusal.get("message") or f"{check_id!r} is not a check id")
