"""The agent's engine: checks in flight wait on its event loop, not on threads of their own.

500 http checks against a server that holds every request until the test releases it are
all in flight at once on one agent at the default concurrency, and the agent holds no more
threads than it does idle plus its task workers (agent/runner.py TASK_WORKERS). The old
engine held two threads per check in flight (over 1,000 here), and its concurrency of 64
let only 64 wait at once.
"""

from __future__ import annotations

import selectors
import socket
import threading

import pytest

from agent.config import DEFAULT_CONCURRENCY
from agent.runner import TASK_WORKERS
from chalicelib import checks
from tests.integration.agent_harness import db, start_agent, wait_online, wait_until  # noqa: F401
from tests.integration.test_agent_slow_drip import connections_to, threads_of

CHECKS = 500
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
# Long enough that the first check still waits when the last one starts on a busy machine.
TIMEOUT_S = 60


class HeldHttpServer:
    """Reads every request and answers none until `release()`; one thread for all connections."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.held = 0  # requests read and not answered
        self.release_all = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="held-http", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.listener, selectors.EVENT_READ)
        waiting: dict[socket.socket, bytes] = {}
        held: list[socket.socket] = []
        while not self.stop.is_set():
            for key, _ in selector.select(0.05):
                if key.fileobj is self.listener:
                    conn, _ = self.listener.accept()
                    conn.setblocking(False)
                    waiting[conn] = b""
                    selector.register(conn, selectors.EVENT_READ)
                    continue
                conn = key.fileobj
                try:
                    data = conn.recv(4096)
                except OSError:
                    data = b""
                waiting[conn] += data
                if not data or b"\r\n\r\n" in waiting[conn]:
                    selector.unregister(conn)
                    del waiting[conn]
                    held.append(conn) if data else conn.close()
                    self.held = len(held)
            if self.release_all.is_set():
                for conn in held:
                    try:
                        conn.setblocking(True)
                        conn.sendall(RESPONSE)
                    except OSError:
                        pass
                    conn.close()
                held.clear()
                self.held = 0
        for conn in [*held, *waiting]:
            conn.close()
        selector.close()
        self.listener.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


@pytest.fixture
def held_server():
    server = HeldHttpServer()
    yield server
    server.close()


def _create(agent_id: str, url: str) -> str:
    """A check made by the API's own service (as POST /api/checks does, without 500 HTTP round
    trips to the one-process local API in the way); the agent then starts and answers it
    through the API as always."""
    request = checks.parse_request(
        {"target": url, "checks": ["http"], "agents": [agent_id], "options": {"http": {"timeout": TIMEOUT_S}}}
    )
    return checks.create(request, client_ip="203.0.113.9")["check_id"]


def test_500_checks_in_flight_hold_no_thread_each(settings, start_agent, db, held_server):
    assert DEFAULT_CONCURRENCY >= CHECKS  # the default lets them all wait at once
    agent = start_agent("Engine")  # the default concurrency
    wait_online(db, agent)
    agent_id = agent.state()["agent_id"]
    wait_until(lambda: threads_of(agent.pid) <= 8, "the agent idle", diagnostics=agent.tail)
    idle_threads = threads_of(agent.pid)

    url = f"http://127.0.0.1:{held_server.port}/"
    check_ids = [_create(agent_id, url) for _ in range(CHECKS)]

    peak = {"threads": 0}

    def all_in_flight() -> bool:
        peak["threads"] = max(peak["threads"], threads_of(agent.pid))
        return held_server.held == CHECKS

    wait_until(all_in_flight, f"{CHECKS} checks waiting on the server at once", timeout=120, diagnostics=agent.tail)
    assert connections_to(agent.pid, held_server.port) == CHECKS  # each check holds its socket...
    threads = threads_of(agent.pid)
    # ...and no thread: the idle agent's threads plus its task workers, whatever is in flight.
    assert max(threads, peak["threads"]) <= idle_threads + TASK_WORKERS, (idle_threads, threads, peak)

    held_server.release_all.set()

    def all_done() -> bool:
        row = db.one(
            "SELECT count(*) AS n FROM check_tasks WHERE check_id = ANY(%s::uuid[]) AND status = 'completed'",
            check_ids,
        )
        return row["n"] == CHECKS

    wait_until(all_done, f"all {CHECKS} checks to complete", timeout=120, diagnostics=agent.tail)
    ok = db.one("SELECT count(*) AS n FROM check_results WHERE check_id = ANY(%s::uuid[]) AND success", check_ids)
    assert ok["n"] == CHECKS
