"""The websocket handlers of app.py, invoked with generated API Gateway events over real
PostgreSQL and Redis; the `@connections` management API is a recording stand-in for AWS's
(it answers as AWS does: 200 to a send, 204 to a delete, 410 for a gone connection)."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import app as app_module
from chalicelib import config, live


class ManagementApi:
    """Records what the app sends; connections in `gone` answer 410 (GoneException)."""

    def __init__(self):
        self.sent: list[tuple[str, dict]] = []
        self.deleted: list[tuple[str, str | None]] = []
        self.gone: set[str] = set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_):
                pass

            def _reply(self, status):
                body = b'{"message": "gone"}' if status == 410 else b""
                self.send_response(status)
                if status == 410:
                    self.send_header("x-amzn-ErrorType", "GoneException")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                connection_id = self.path.rsplit("/", 1)[-1]
                data = self.rfile.read(int(self.headers["Content-Length"]))
                if connection_id in outer.gone:
                    return self._reply(410)
                outer.sent.append((connection_id, json.loads(data)))
                self._reply(200)

            def do_DELETE(self):
                connection_id = self.path.rsplit("/", 1)[-1]
                outer.deleted.append((connection_id, self.headers.get(live.CLOSE_CODE_HEADER)))
                self._reply(410 if connection_id in outer.gone else 204)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def types(self, connection_id: str) -> list[str]:
        return [m["type"] for c, m in self.sent if c == connection_id]

    def close(self):
        self.server.shutdown()


@pytest.fixture
def management(settings):
    fake = ManagementApi()
    config.reset_settings(ws_management_url=fake.url)
    yield fake
    fake.close()


def event(route: str, connection_id: str, query: dict | None = None, body: str | None = None) -> dict:
    """An API Gateway WebSocket event, as the Lambda receives it."""
    kind = {"$connect": "CONNECT", "$default": "MESSAGE", "$disconnect": "DISCONNECT"}[route]
    out = {
        "requestContext": {
            "routeKey": route,
            "eventType": kind,
            "connectionId": connection_id,
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "stage": "v1",
            "apiId": "abc123",
            "requestId": uuid.uuid4().hex,
            "messageDirection": "IN",
            "connectedAt": int(time.time() * 1000),
            "identity": {"sourceIp": "203.0.113.9"},
        },
        "isBase64Encoded": False,
    }
    if route == "$connect":
        out["queryStringParameters"] = query
        out["headers"] = {"Host": "abc123.execute-api.eu-west-1.amazonaws.com"}
    if body is not None:
        out["body"] = body
    return out


def _subscribe(connection_id: str, check_id: str) -> None:
    assert app_module.ws_connect(event("$connect", connection_id, {"check_id": check_id}), None) == {"statusCode": 200}
    assert app_module.ws_message(event("$default", connection_id, body='{"action":"subscribe"}'), None) == {
        "statusCode": 200
    }


def _check_with_tasks(api, n_agents=2):
    agents = {a["agent_id"]: a for a in (api.register(f"agent-{i}", f"City {i}") for i in range(n_agents))}
    created = api.create_check(checks=("http",)).body
    return agents, created


def test_connect_subscribes_with_a_ttl_and_disconnect_forgets(management, redis_client):
    check_id = str(uuid.uuid4())
    reply = app_module.ws_connect(event("$connect", "conn-a", {"check_id": check_id}), None)
    assert reply == {"statusCode": 200}
    assert redis_client.smembers(live.check_key(check_id)) == {"conn-a"}
    assert 0 < redis_client.ttl(live.check_key(check_id)) <= live.TTL_S
    assert redis_client.hget(live.conn_key("conn-a"), "check_id") == check_id
    app_module.ws_disconnect(event("$disconnect", "conn-a"), None)
    assert not redis_client.exists(live.check_key(check_id), live.conn_key("conn-a"))


def test_first_message_sends_the_snapshot_and_later_pushes_follow(api, management):
    agents, created = _check_with_tasks(api)
    _subscribe("conn-b", created["check_id"])
    assert management.types("conn-b") == ["snapshot"]
    first, second = created["tasks"]
    api.start(agents[first["agent_id"]], first["task_id"])
    api.result(agents[first["agent_id"]], first["task_id"])
    app_module.ws_message(event("$default", "conn-b", body="again"), None)  # not a second snapshot
    api.result(agents[second["agent_id"]], second["task_id"])
    assert management.types("conn-b") == ["snapshot", "task", "result", "result", "status"]
    assert management.deleted == [("conn-b", "1000")]
    status = management.sent[-1][1]
    assert status["status"] == "completed" and status["summary"]["http"]["ok"] == 2


def test_a_result_in_the_snapshot_is_not_pushed_again(api, management):
    agents, created = _check_with_tasks(api)
    first, second = created["tasks"]
    api.result(agents[first["agent_id"]], first["task_id"])
    _subscribe("conn-c", created["check_id"])
    api.result(agents[second["agent_id"]], second["task_id"])
    pushed = [m["result"]["task_id"] for c, m in management.sent if m["type"] == "result"]
    assert pushed == [second["task_id"]]


@pytest.mark.parametrize(
    "query, code", [({"check_id": "nope"}, "4400"), (None, "4400"), ({"check_id": str(uuid.uuid4())}, "4404")]
)
def test_a_bad_check_id_gets_an_error_message_and_a_close_code(management, query, code):
    app_module.ws_connect(event("$connect", "conn-d", query), None)
    app_module.ws_message(event("$default", "conn-d", body="{}"), None)
    ((_, message),) = management.sent
    assert message["type"] == "error" and str(message["code"]) == code and message["message"]
    assert management.deleted == [("conn-d", code)]


def test_a_gone_connection_is_pruned_and_ingestion_goes_on(api, management, redis_client):
    agents, created = _check_with_tasks(api)
    _subscribe("conn-e", created["check_id"])
    management.gone.add("conn-e")
    first = created["tasks"][0]
    reply = api.result(agents[first["agent_id"]], first["task_id"])
    assert reply.status == 200
    assert "conn-e" not in redis_client.smembers(live.check_key(created["check_id"]))


def test_an_unanswering_management_api_never_fails_ingestion_and_is_tried_once(api, management):
    """The endpoint accepts connections and never answers: the push gives up after the read
    timeout, with no retry, and the result is stored (printed: the time it cost); the next
    result does not try again."""
    agents, created = _check_with_tasks(api)
    _subscribe("conn-f", created["check_id"])
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        config.reset_settings(ws_management_url=f"http://127.0.0.1:{silent.getsockname()[1]}")
        first = created["tasks"][0]
        started = time.perf_counter()
        reply = api.result(agents[first["agent_id"]], first["task_id"])
        elapsed = time.perf_counter() - started
        second = created["tasks"][1]
        api.start(agents[second["agent_id"]], second["task_id"])
        again = api.result(agents[second["agent_id"]], second["task_id"])
        accepted = 0
        silent.setblocking(False)
        while True:
            try:
                silent.accept()[0].close()
                accepted += 1
            except BlockingIOError:
                break
    finally:
        silent.close()
    assert reply.status == 200 and reply.body["status"] == "completed" and again.status == 200
    assert accepted == 1  # one attempt, no retries, none while paused
    print(f"result accepted in {elapsed:.3f} s with a silent management API")


def test_a_push_that_finds_the_connection_busy_leaves_a_note_and_the_holder_sends_it(api, management, monkeypatch):
    """A result's ingestion never waits for another sender's lock: the other sender (here the push
    of the check's other result, in the middle of its send) finds the note and catches up."""
    agents, created = _check_with_tasks(api)
    first, second = created["tasks"]
    _subscribe("conn-g", created["check_id"])
    real_post, nested = live.post, []

    def post(url, connection_id, message):
        if message.get("type") == "result" and not nested:
            # While this push holds the connection, the other result arrives and is pushed.
            nested.append(api.result(agents[first["agent_id"]], first["task_id"]))
        real_post(url, connection_id, message)

    monkeypatch.setattr(live, "post", post)
    assert api.result(agents[second["agent_id"]], second["task_id"]).status == 200
    assert nested[0].status == 200
    # The nested push found the lock held and left its note; the holder served it before letting go.
    assert management.types("conn-g") == ["snapshot", "result", "result", "status"]
    pushed = [m["result"]["task_id"] for c, m in management.sent if m["type"] == "result"]
    assert sorted(pushed) == sorted([first["task_id"], second["task_id"]])
    assert management.deleted == [("conn-g", "1000")]


def test_publishing_a_batch_reads_every_checks_ready_connections_in_its_one_round_trip(
    management, redis_client, monkeypatch, count_round_trips
):
    """A published batch is one Redis round trip, its subscribers' ready flags included: the
    connections pushed to are each check's ready ones, not the others (SMEMBERS and then an HGET
    per member were a round trip more per event)."""
    from chalicelib import queue

    checks = [str(uuid.uuid4()) for _ in range(3)]
    for n, check_id in enumerate(checks):
        for conn, ready in ((f"ready-{n}", "1"), (f"waiting-{n}", "0")):
            redis_client.sadd(live.check_key(check_id), conn)
            redis_client.hset(live.conn_key(conn), mapping={"check_id": check_id, "ready": ready})
    pushed: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(live, "_fan_out", lambda url, check_id, ev, conns, deadline: pushed.append((check_id, conns)))

    with count_round_trips() as sends:
        queue.publish_many([(c, {"type": "check", "check_id": c, "status": "completed"}, None) for c in checks])

    assert len(sends) == 1, f"{len(sends)} round trips to Redis"
    assert pushed == [(c, [f"ready-{n}"]) for n, c in enumerate(checks)]
