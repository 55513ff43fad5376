"""Live results over an API Gateway WebSocket (DESIGN §5, `WS /api/ws/checks/{id}`).

Lifecycle of one connection (docs/api.md, "Live results"):
- `$connect` (`connect`): the check id comes from `?check_id=` (API Gateway has no path
  routing; the local emulator maps `/api/ws/checks/<id>` to the same event). A well-formed id
  is subscribed at once: `hc:ws:check:{id}` gets the connection id, `hc:ws:conn:{conn}` the
  check id, both with a TTL (API Gateway closes a connection after 2 h at most).
- API Gateway cannot post to a connection during `$connect`, so the snapshot is sent when the
  client sends its first message (`subscribe`); that works the same on AWS and locally.
  Subscribed first, snapshot second: nothing published in between is lost.
- Every published task/check event (`on_event`, called from `queue.publish`) is pushed to the
  ready subscribers of its check: `task` when one starts, `result` once per terminal task,
  `status` last, and then the connection is deleted (close 1000).

Exactly once: each connection has a set of what it was sent (`hc:ws:sent:{conn}`), and all
sends to one connection happen under a short per-connection lock, so a result racing the
final status is either sent before it or found by the catch-up that precedes the status.
A push never waits for that lock: when another sender holds it, the push leaves a note
(`hc:ws:note:{conn}`) and returns, and the holder catches up before it lets go. A result's
ingestion (the agent's request) thus never waits for a subscriber's snapshot or for another
result's push. Starts are marked in the same set (`started:{task}`), so a catch-up can send
those too, and none is sent twice.

Pushing is bounded: short timeouts, no retries, and a budget per event; a failure is logged
and counted, never raised into result ingestion. A GoneException prunes the connection. An
endpoint that timed out is left alone for PAUSE_S by this process, so an outage of the
management API costs one timeout per warm Lambda instance, not one per result (clients
reconnect or poll, and the next snapshot has everything).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from . import checks, observability, queue
from .config import boto3_client, get_settings
from .errors import NotFound

log = logging.getLogger(__name__)

TTL_S = 2 * 3600 + 300  # API Gateway's connection limit is 2 h
LOCK_TIMEOUT_S = 10  # a crashed holder frees the lock after this
LOCK_WAIT_S = 2.0  # a push waits at most this long for a connection's lock
PUSH_BUDGET_S = 2.0  # all pushes of one event together
CONNECT_TIMEOUT_S = 0.5
READ_TIMEOUT_S = 1.0
PAUSE_S = 30  # after a timeout, this process stops pushing to that endpoint
TERMINAL_TASK = ("completed", "failed")
TERMINAL_CHECK = ("completed", "failed")
STATUS_MARK = "status"  # in the sent set: the final status went out

CLOSE_NORMAL = 1000
CLOSE_UNAVAILABLE = 1011  # the snapshot could not be read: the client polls and reconnects
CLOSE_BAD_REQUEST = 4400
CLOSE_NOT_FOUND = 4404
# The emulator closes with this code when a DeleteConnection carries it; API Gateway closes
# with its own code and ignores the header. The `error` message before the close says the
# same on both, so clients can rely on either.
CLOSE_CODE_HEADER = "X-Hc-Close-Code"


def check_key(check_id: str) -> str:
    return f"hc:ws:check:{check_id}"


def conn_key(connection_id: str) -> str:
    return f"hc:ws:conn:{connection_id}"


def sent_key(connection_id: str) -> str:
    return f"hc:ws:sent:{connection_id}"


def lock_key(connection_id: str) -> str:
    return f"hc:ws:lock:{connection_id}"


def note_key(connection_id: str) -> str:
    """Set by a pusher that found the connection's lock held: its holder catches up before it goes."""
    return f"hc:ws:note:{connection_id}"


def started_mark(task_id: str) -> str:
    """In the sent set: the connection has heard that this task started (or how it ended)."""
    return f"started:{task_id}"


class Gone(Exception):
    """The connection no longer exists (410 from the management API)."""


# ---- the management API client: built once from config

_client = None
_client_url: str | None = None
_client_lock = threading.Lock()
_close_code = threading.local()
_paused_until: dict[str, float] = {}  # management URL -> monotonic time pushes resume


def management_url(event_context: dict | None = None) -> str:
    """The `@connections` endpoint: the setting (REST Lambdas, the local stack), else derived
    from the websocket event itself (the websocket Lambdas on AWS)."""
    url = get_settings().ws_management_url
    if url or not event_context:
        return url.rstrip("/")
    return f"https://{event_context['domainName']}/{event_context['stage']}"


def _add_close_code(request, **_):
    code = getattr(_close_code, "value", None)
    if code is not None:
        request.headers[CLOSE_CODE_HEADER] = str(code)


def _management_client(url: str):
    global _client, _client_url
    if _client is None or _client_url != url:
        with _client_lock:
            if _client is None or _client_url != url:
                from botocore import UNSIGNED
                from botocore.config import Config

                config = Config(
                    connect_timeout=CONNECT_TIMEOUT_S,
                    read_timeout=READ_TIMEOUT_S,
                    retries={"total_max_attempts": 1},
                    # the local emulator is plain http and checks no signature
                    **({"signature_version": UNSIGNED} if url.startswith("http://") else {}),
                )
                client = boto3_client("apigatewaymanagementapi", endpoint_url=url, config=config)
                client.meta.events.register("before-send.apigatewaymanagementapi.DeleteConnection", _add_close_code)
                _client, _client_url = client, url
    return _client


def _is_gone(exc: Exception) -> bool:
    response = getattr(exc, "response", None) or {}
    return (
        response.get("Error", {}).get("Code") == "GoneException"
        or response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 410
    )


def post(url: str, connection_id: str, message: dict[str, Any]) -> None:
    """Send one message; raises Gone when the connection is gone."""
    data = json.dumps(message, separators=(",", ":"), default=str).encode()
    try:
        _management_client(url).post_to_connection(ConnectionId=connection_id, Data=data)
    except Exception as exc:
        if _is_gone(exc):
            raise Gone(connection_id) from exc
        raise


def close(url: str, connection_id: str, code: int = CLOSE_NORMAL) -> None:
    _close_code.value = code
    try:
        _management_client(url).delete_connection(ConnectionId=connection_id)
    except Exception as exc:  # noqa: BLE001 - a failed close is logged; the TTL forgets the rest
        if not _is_gone(exc):
            log.warning("live: closing connection %s failed: %s", connection_id, exc)
    finally:
        _close_code.value = None


# ---- subscriptions


def parse_check_id(query: dict[str, str] | None) -> tuple[str | None, str | None]:
    """(check id, None) or (None, why it is refused)."""
    raw = (query or {}).get("check_id")
    if not raw:
        return None, "check_id is required: connect to WS_URL?check_id=<check id>"
    try:
        return str(uuid.UUID(raw)), None
    except (TypeError, ValueError, AttributeError):
        return None, f"check_id must be a check id (UUID), got {raw[:64]!r}"


def connect(connection_id: str, query: dict[str, str] | None) -> None:
    """Subscribe the connection (a malformed id is remembered and refused on the first message)."""
    check_id, problem = parse_check_id(query)
    pipe = queue.get_redis().pipeline(transaction=True)
    if check_id:
        pipe.sadd(check_key(check_id), connection_id)
        pipe.expire(check_key(check_id), TTL_S)
        pipe.hset(conn_key(connection_id), mapping={"check_id": check_id, "ready": "0"})
    else:
        pipe.hset(conn_key(connection_id), mapping={"problem": problem, "ready": "0"})
    pipe.expire(conn_key(connection_id), TTL_S)
    pipe.execute()


def disconnect(connection_id: str) -> None:
    r = queue.get_redis()
    check_id = r.hget(conn_key(connection_id), "check_id")
    pipe = r.pipeline(transaction=True)
    if check_id:
        pipe.srem(check_key(check_id), connection_id)
    pipe.delete(conn_key(connection_id), sent_key(connection_id), note_key(connection_id))
    pipe.execute()


def _forget(check_id: str | None, connection_id: str) -> None:
    pipe = queue.get_redis().pipeline(transaction=True)
    if check_id:
        pipe.srem(check_key(check_id), connection_id)
    pipe.delete(conn_key(connection_id), sent_key(connection_id), note_key(connection_id))
    pipe.execute()


@contextmanager
def _connection_lock(connection_id: str, wait_s: float) -> Iterator[bool]:
    lock = queue.get_redis().lock(
        lock_key(connection_id), timeout=LOCK_TIMEOUT_S, sleep=0.005, blocking_timeout=max(wait_s, 0.0)
    )
    held = lock.acquire()
    try:
        yield held
    finally:
        if held:
            with suppress(queue.RedisError):  # expired meanwhile: nothing to release
                lock.release()


def _mark_sent(connection_id: str, *keys: str) -> list[str]:
    """Of `keys`, those not sent before (now marked sent)."""
    if not keys:
        return []
    pipe = queue.get_redis().pipeline(transaction=True)
    for key in keys:
        pipe.sadd(sent_key(connection_id), key)
    pipe.expire(sent_key(connection_id), TTL_S)
    added = pipe.execute()[:-1]
    return [key for key, new in zip(keys, added, strict=True) if new]


# ---- messages (the protocol; docs/api.md)


def result_message(row: dict[str, Any]) -> dict[str, Any]:
    return {"type": "result", "result": row}


def task_message(row: dict[str, Any]) -> dict[str, Any]:
    return {"type": "task", "task_id": row["task_id"], "status": row["status"], "agent": row["agent"]}


def status_message(view: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "status",
        "status": view["status"],
        "summary": view["summary"],
        "verdict": view.get("verdict"),
        "completed_at": view["completed_at"],
    }


def error_message(code: int, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


# ---- the first message: snapshot (and, for a finished check, the status at once)


def message(connection_id: str, body: str | None, event_context: dict | None = None) -> None:
    """A client message. The first one asks for the snapshot; later ones are ignored."""
    url = management_url(event_context)
    state = queue.get_redis().hgetall(conn_key(connection_id))
    if not state:
        _refuse(
            url,
            connection_id,
            None,
            CLOSE_BAD_REQUEST,
            "this connection has no subscription; connect to WS_URL?check_id=<check id>",
        )
    elif state.get("problem"):
        _refuse(url, connection_id, None, CLOSE_BAD_REQUEST, state["problem"])
    elif state.get("ready") != "1":
        try:
            _send_snapshot(url, connection_id, state["check_id"])
        except Exception as exc:  # noqa: BLE001 - database down: say so rather than leave it silent
            log.warning("live: snapshot for %s failed: %s", connection_id, exc)
            _refuse(
                url,
                connection_id,
                state["check_id"],
                CLOSE_UNAVAILABLE,
                "live updates are unavailable right now; poll GET /api/checks/{id}",
            )


def _refuse(url: str, connection_id: str, check_id: str | None, code: int, reason: str) -> None:
    try:
        post(url, connection_id, error_message(code, reason))
    except Exception as exc:  # noqa: BLE001 - closing is what matters
        log.info("live: error message to %s not sent: %s", connection_id, exc)
    _forget(check_id, connection_id)
    close(url, connection_id, code)


def _send_snapshot(url: str, connection_id: str, check_id: str) -> None:
    with _connection_lock(connection_id, LOCK_WAIT_S) as held:
        if not held or queue.get_redis().hget(conn_key(connection_id), "ready") == "1":
            return
        try:
            view = checks.get(check_id)
        except NotFound:
            _refuse(url, connection_id, check_id, CLOSE_NOT_FOUND, f"check {check_id} not found")
            return
        try:
            post(url, connection_id, {"type": "snapshot", "check": view})
            told = [r["task_id"] for r in view["results"] if r["status"] in TERMINAL_TASK]
            told += [started_mark(r["task_id"]) for r in view["results"] if r["status"] != "pending"]
            _mark_sent(connection_id, *told)
            queue.get_redis().hset(conn_key(connection_id), "ready", "1")
            # Whatever finished between the snapshot's read and `ready` (its pusher skipped us).
            _catch_up(url, connection_id, check_id)
            _serve_notes(url, connection_id, check_id)
        except Gone:
            _forget(check_id, connection_id)
            return
    _notes_after_release(url, connection_id, check_id)


def _catch_up(url: str, connection_id: str, check_id: str) -> None:
    """Send the terminal results not sent yet; if the check is finished, the status and close."""
    try:
        view = checks.get(check_id, settle=False)
    except NotFound:
        _refuse(url, connection_id, check_id, CLOSE_NOT_FOUND, f"check {check_id} was deleted")
        return
    rows = {r["task_id"]: r for r in view["results"] if r["status"] in TERMINAL_TASK}
    for task_id in _mark_sent(connection_id, *rows, *map(started_mark, rows)):
        if task_id in rows:
            post(url, connection_id, result_message(rows[task_id]))
    running = {started_mark(r["task_id"]): r for r in view["results"] if r["status"] == "in_progress"}
    for mark in _mark_sent(connection_id, *running):
        post(url, connection_id, task_message(running[mark]))
    if view["status"] in TERMINAL_CHECK and _mark_sent(connection_id, STATUS_MARK):
        post(url, connection_id, status_message(view))
        _forget(check_id, connection_id)
        close(url, connection_id, CLOSE_NORMAL)


# ---- fan-out of published events (called from queue.publish)


def enabled() -> bool:
    """Whether published events are pushed to WebSocket subscribers (a management endpoint is set)."""
    return bool(get_settings().ws_management_url)


def on_event(check_id: str, event: dict[str, Any], ready: list[str] | None = None) -> None:
    """Push one published event to the check's subscribers that are ready (`ready`: their connection
    ids when the caller already read them with `read_ready`; else they are read here). Never raises;
    bounded in time."""
    url = get_settings().ws_management_url
    if not url:
        return
    started = time.monotonic()
    if started < _paused_until.get(url, 0.0):
        observability.count("LivePushSkipped")
        return
    try:
        connections = sorted(ready) if ready is not None else _ready_connections(check_id)
        if connections:
            _fan_out(url, check_id, event, connections, started + PUSH_BUDGET_S)
    except Exception as exc:  # noqa: BLE001 - live updates must never fail ingestion
        log.warning("live: push for check %s failed: %s", check_id, exc)
        observability.count("LivePushFailures")
    finally:
        elapsed_ms = (time.monotonic() - started) * 1000
        if elapsed_ms > 1:
            observability.count("LivePushMs", elapsed_ms, unit=MetricUnit.Milliseconds)


# A check's subscribers whose connection is ready (its `ready` flag is "1"), read in one command:
# SMEMBERS and then an HGET per member took two round trips per pushed event. The connection keys
# are named from the members, so they are not in KEYS: fine with one shard (infra/core.yaml deploys
# ElastiCache with NumNodeGroups 1); more shards would need the keys hash-tagged together. EVAL,
# not EVALSHA: redis-py asks SCRIPT EXISTS before every pipeline that holds a registered script,
# which would put the round trip back; Redis caches the compiled script by its hash either way.
_READY_LUA = """
local ready = {}
for _, c in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('HGET', ARGV[1] .. c, 'ready') == '1' then ready[#ready + 1] = c end
end
return ready
"""


def read_ready(client, check_id: str) -> Any:
    """Queue (on a pipeline) or run the read of `check_id`'s ready connections: a list of ids."""
    return client.eval(_READY_LUA, 1, check_key(check_id), conn_key(""))


def _ready_connections(check_id: str) -> list[str]:
    return sorted(read_ready(queue.get_redis(), check_id))


def _fan_out(url: str, check_id: str, event: dict[str, Any], connections: list[str], deadline: float) -> None:
    for connection_id in connections:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            log.warning("live: push budget spent; %d connection(s) of check %s skipped", len(connections), check_id)
            observability.count("LivePushSkipped")
            return
        try:
            _deliver_or_leave_a_note(url, connection_id, check_id, event)
        except Gone:
            _forget(check_id, connection_id)
            observability.count("LiveConnectionsPruned")
        except (ConnectTimeoutError, ReadTimeoutError, EndpointConnectionError) as exc:
            _paused_until[url] = time.monotonic() + PAUSE_S
            log.warning("live: %s did not answer (%s); pushes paused for %d s", url, exc, PAUSE_S)
            observability.count("LivePushFailures")
            return
        except Exception as exc:  # noqa: BLE001 - one bad connection must not stop the others
            log.warning("live: push to %s failed: %s", connection_id, exc)
            observability.count("LivePushFailures")


def _deliver_or_leave_a_note(url: str, connection_id: str, check_id: str, event: dict[str, Any]) -> None:
    """Push `event` under the connection's lock, never waiting for it: a result's ingestion must
    not wait while another sender (a snapshot, another result) holds it. When it is held, a note
    is left instead, and the holder catches up before it lets go (`_serve_notes`): the catch-up
    sends every result, start and final status not sent yet, so the note stands for the event.
    The note is set before the next try (`_notes_after_release`), so either the holder sees it
    or that try takes the lock."""
    with _connection_lock(connection_id, 0) as held:
        if held:
            _deliver(url, connection_id, check_id, event)
            _serve_notes(url, connection_id, check_id)
    if not held:
        queue.get_redis().set(note_key(connection_id), "1", ex=LOCK_TIMEOUT_S)
    _notes_after_release(url, connection_id, check_id)


def _serve_notes(url: str, connection_id: str, check_id: str) -> None:
    """(Holding the connection's lock.) Catch up once for every note left while it was held."""
    r = queue.get_redis()
    while r.getdel(note_key(connection_id)):
        if r.hget(conn_key(connection_id), "ready") != "1":
            return  # closed and forgotten meanwhile (its final status went out)
        _catch_up(url, connection_id, check_id)


def _notes_after_release(url: str, connection_id: str, check_id: str) -> None:
    """A note left between the holder's last look and its release: whoever takes the lock next serves it."""
    while queue.get_redis().exists(note_key(connection_id)):
        with _connection_lock(connection_id, 0) as held:
            if not held:
                return  # its new holder serves it
            _serve_notes(url, connection_id, check_id)


def _deliver(url: str, connection_id: str, check_id: str, event: dict[str, Any]) -> None:
    kind = event.get("type")
    if kind == "task":
        row = event["task"]
        if event.get("late"):
            return  # its task was already reported failed, once
        if row["status"] in TERMINAL_TASK:
            if row["task_id"] in _mark_sent(connection_id, row["task_id"], started_mark(row["task_id"])):
                post(url, connection_id, result_message(row))
        elif row["status"] == "in_progress" and _mark_sent(connection_id, started_mark(row["task_id"])):
            post(url, connection_id, task_message(row))
    elif kind == "check" and event.get("status") in TERMINAL_CHECK:
        _catch_up(url, connection_id, check_id)
    elif kind == "check" and event.get("status") == "deleted":
        _refuse(url, connection_id, check_id, CLOSE_NOT_FOUND, f"check {check_id} was deleted")
