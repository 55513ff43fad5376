"""Live results through the local WebSocket emulator: real processes all the way (the emulator
running app.py's websocket handlers, chalice local taking fake agents' results, PostgreSQL,
Redis), a Python websockets client, and the protocol of docs/api.md ("Live results")."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from contextlib import ExitStack
from itertools import zip_longest

import pytest

from tests.integration.agent_harness import wait_until
from tests.integration.live_harness import EmulatorProcess, Http, UnreadClient, receive_all, register_agents, subscribe

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def emulator(pg_url, redis_url, tmp_path_factory):
    proc = EmulatorProcess(pg_url, redis_url, tmp_path_factory.mktemp("ws") / "emulator.log").start()
    yield proc
    proc.stop()


@pytest.fixture
def http(api_server, clean_state) -> Http:
    return Http(api_server)


def _run_concurrently(http: Http, agents: dict, tasks: list[dict]) -> None:
    """Each agent reports its own tasks from its own thread, as three agents at once would."""
    errors = []

    def agent_loop(agent_id):
        try:
            for task in (t for t in tasks if t["agent_id"] == agent_id):
                Http(http.base).run_task(agents, task)
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=agent_loop, args=(a,)) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_a_subscriber_gets_snapshot_every_result_once_then_the_status_and_close_1000(emulator, http):
    agents = register_agents(http, 3)
    check = http.create_check(["http", "tcp"])
    assert len(check["tasks"]) == 6
    with subscribe(f"{emulator.ws_url}/?check_id={check['check_id']}") as ws:
        snapshot = json.loads(ws.recv(timeout=10))
        assert snapshot["type"] == "snapshot"
        assert snapshot["check"]["check_id"] == check["check_id"] and len(snapshot["check"]["results"]) == 6
        _run_concurrently(http, agents, check["tasks"])
        messages, code = receive_all(ws)
    assert code == 1000, messages
    results = Counter(m["result"]["task_id"] for m in messages if m["type"] == "result")
    assert results == Counter(t["task_id"] for t in check["tasks"])  # every task exactly once
    assert all(
        m["result"]["status"] == "completed" and m["result"]["success"] for m in messages if m["type"] == "result"
    )
    started = [m for m in messages if m["type"] == "task"]
    assert {m["task_id"] for m in started} <= set(results) and all(m["status"] == "in_progress" for m in started)
    assert all(m["agent"]["id"] in agents for m in started)
    final = messages[-1]
    assert final["type"] == "status" and final["status"] == "completed" and final["completed_at"]
    assert final["summary"]["http"]["ok"] == 3 and final["summary"]["tcp"]["total"] == 3
    assert [m["type"] for m in messages].count("status") == 1


def test_the_path_form_subscribes_like_the_query_parameter(emulator, http):
    agents = register_agents(http, 1)
    check = http.create_check(["tcp"])
    with subscribe(f"{emulator.ws_url}/api/ws/checks/{check['check_id']}") as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "snapshot"
        http.run_task(agents, check["tasks"][0])
        messages, code = receive_all(ws)
    assert code == 1000 and [m["type"] for m in messages] == ["task", "result", "status"]


def test_subscribing_after_the_check_finished_gets_snapshot_and_status_at_once(emulator, http):
    agents = register_agents(http, 3)
    check = http.create_check(["http", "tcp"])
    for task in check["tasks"]:
        http.run_task(agents, task)
    with subscribe(f"{emulator.ws_url}/?check_id={check['check_id']}") as ws:
        messages, code = receive_all(ws, timeout=10)
    assert code == 1000
    assert [m["type"] for m in messages] == ["snapshot", "status"]
    assert messages[0]["check"]["status"] == "completed" and messages[1]["status"] == "completed"
    assert all(r["status"] == "completed" for r in messages[0]["check"]["results"])


def test_a_check_without_agents_is_failed_in_the_snapshot_and_status(emulator, http):
    check = http.create_check(["http"])
    assert check["status"] == "failed"
    with subscribe(f"{emulator.ws_url}/?check_id={check['check_id']}") as ws:
        messages, code = receive_all(ws, timeout=10)
    assert code == 1000 and [m["type"] for m in messages] == ["snapshot", "status"]
    assert messages[1]["status"] == "failed"


@pytest.mark.parametrize(
    "query, code, words",
    [
        ("?check_id=0b7c3c36-8c0e-4a6b-9d55-3d2a3b1c0f00", 4404, "not found"),
        ("?check_id=not-a-uuid", 4400, "check_id must be"),
        ("", 4400, "check_id is required"),
    ],
)
def test_a_bad_check_id_is_refused_with_a_close_code_and_reason(emulator, http, query, code, words):
    with subscribe(f"{emulator.ws_url}/{query}") as ws:
        messages, close_code = receive_all(ws, timeout=10)
    assert close_code == code
    assert messages == [{"type": "error", "code": code, "message": messages[0]["message"]}]
    assert words in messages[0]["message"]


def _ingest(http: Http, agents: dict, tasks: list[dict], padding: int) -> float:
    started = time.perf_counter()
    for task in tasks:
        http.run_task(agents, task, padding=padding)
    return time.perf_counter() - started


def _round(emulator, http, agents, stuck: bool) -> tuple[float, str | None]:
    """Ingest a big-result check A (its subscriber reads, or never does) and a check B with a
    reading subscriber; returns (ingestion time of both, A's connection id when stuck)."""
    a, b = http.create_check(["http", "ping", "dns", "tcp", "traceroute"]), http.create_check(["http", "tcp"])
    connection_id = None
    with ExitStack() as stack:
        url_a = f"{emulator.ws_url}/?check_id={a['check_id']}"
        if stuck:
            stack.callback(UnreadClient(url_a).close)
            connection_id = wait_until(lambda: _connection_of(a["check_id"]), "A's subscription")
        else:  # it reads as the messages come, on a thread of its own, as a browser would
            reader_a = _Reading(stack.enter_context(subscribe(url_a)))
        reader_b = stack.enter_context(subscribe(f"{emulator.ws_url}/?check_id={b['check_id']}"))
        assert json.loads(reader_b.recv(timeout=10))["type"] == "snapshot"
        reading_b = _Reading(reader_b)
        interleaved = [t for pair in zip_longest(a["tasks"], b["tasks"]) for t in pair if t]
        elapsed = _ingest(http, agents, interleaved, padding=40_000)
        messages, code = reading_b.all()
        assert code == 1000 and messages[-1]["type"] == "status"
        if stuck:  # over its bound, the emulator closed it while the client still held it open
            wait_until(
                lambda: emulator.connection_info(connection_id) == 410, "the stuck client to be closed", timeout=10
            )
            wait_until(lambda: _connection_of(a["check_id"]) is None, "its subscription to be dropped")
            assert f"connection {connection_id}: " in emulator.log_path.read_text()  # over its bound
        else:
            assert reader_a.all()[1] == 1000
    return elapsed, connection_id


class _Reading(threading.Thread):
    """receive_all on its own thread from now on: a subscriber that reads as messages arrive (one
    read only once ingestion is over falls behind by then, and the emulator rightly closes it)."""

    def __init__(self, ws):
        super().__init__(daemon=True)
        self.ws, self.got = ws, ([], None)
        self.start()

    def run(self):
        self.got = receive_all(self.ws)

    def all(self) -> tuple[list[dict], int | None]:
        self.join(40)
        return self.got


def _connection_of(check_id: str) -> str | None:
    import redis

    from chalicelib.config import get_settings

    members = redis.Redis.from_url(get_settings().redis_url, decode_responses=True).smembers(f"hc:ws:check:{check_id}")
    return next(iter(members), None)


def test_a_client_that_never_reads_does_not_slow_ingestion_and_is_closed(emulator, http, settings):
    agents = register_agents(http, 3)
    _round(emulator, http, agents, stuck=False)  # warm-up: pools, caches, first connections
    baseline, _ = _round(emulator, http, agents, stuck=False)
    with_stuck, _ = _round(emulator, http, agents, stuck=True)
    print(f"ingestion: {baseline:.3f} s without, {with_stuck:.3f} s with a stuck subscriber")
    # A stuck client that held up pushes would show as B's results missing in _round (pushes paused
    # after a timeout), or as this ratio; the margin is for a shared, busy machine.
    assert with_stuck < 2.5 * baseline, (
        f"ingestion took {with_stuck:.3f} s with a stuck subscriber, {baseline:.3f} s without"
    )
