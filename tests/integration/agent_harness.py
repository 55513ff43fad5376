"""Helpers for the agent's integration tests (tests/integration/test_agent_*.py).

- `AgentProcess`: `python -m agent` as a subprocess with its own state folder
  and log file; `agent_procs` (in each test module via `pytest_plugins`-free
  import) stops every one that is still running.
- `SlowHttpServer`: answers only when the test releases it, and counts requests.
- `CountingTcpListener`: a listening socket that counts accepted connections.
- `ToggleProxy`: a TCP proxy in front of the API that the test closes (connections
  refused) and reopens on the same port.
- `wait_until`: bounded polling on a condition; nothing sleeps in place of a condition.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import requests
from psycopg.rows import dict_row

from scripts.localcloud.procs import ServiceError, wait_for

ROOT = Path(__file__).resolve().parents[2]
REGISTRATION_TOKEN = "test-registration-token"
WAIT_S = 60


def wait_until(predicate, what: str, timeout: float = WAIT_S, interval: float = 0.05, diagnostics=None):
    """Poll until `predicate()` is truthy (procs.wait_for, the one bounded poll); fail naming `what`
    (plus diagnostics) on timeout."""
    try:
        return wait_for(predicate, timeout, what, interval=interval, max_interval=interval)
    except ServiceError as exc:
        extra = f"\n{diagnostics()}" if diagnostics else ""
        raise AssertionError(f"{exc}{extra}") from None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AgentProcess:
    def __init__(self, name: str, api_url: str, redis_url: str, state_dir: Path, **env: str):
        self.name = name
        self.state_dir = state_dir
        self.log_path = state_dir.parent / f"{state_dir.name}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HC_")}
        self.env.update(
            {
                "HC_API_URL": api_url,
                "HC_REDIS_URL": redis_url,
                "HC_AGENT_NAME": name,
                "HC_AGENT_LOCATION": f"{name}, Testland",
                "HC_REGISTRATION_TOKEN": REGISTRATION_TOKEN,
                "HC_STATE_DIR": str(state_dir),
                "HC_ALLOW_PRIVATE_TARGETS": "true",
                "HC_HEARTBEAT_INTERVAL_S": "0.5",
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.env.update(env)
        self.proc: subprocess.Popen | None = None

    def start(self) -> AgentProcess:
        """Start (or, after it exited, restart) the agent on the same state folder."""
        assert not self.running(), "agent is already running"
        log = open(self.log_path, "a")  # noqa: SIM115 - the child owns it from here
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        finally:
            log.close()
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text()
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return f"--- agent {self.name} log ---\n" + "\n".join(self.log().splitlines()[-lines:])

    def state(self) -> dict | None:
        import json

        try:
            return json.loads((self.state_dir / "state.json").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def spooled(self) -> list[str]:
        spool = self.state_dir / "spool"
        return sorted(p.stem for p in spool.glob("*.json")) if spool.exists() else []

    def signal(self, sig: int) -> None:
        if self.running():
            self.proc.send_signal(sig)

    def wait(self, timeout: float = WAIT_S) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """Teardown: SIGTERM, then SIGKILL if it lingers. Only our own child, by pid."""
        if not self.running():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


class SlowHttpServer:
    """GET / answers 200 only once `release()` is called; counts requests as they arrive."""

    def __init__(self):
        self.gate = threading.Event()
        self.requests = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - http.server's naming
                with outer._lock:
                    outer.requests += 1
                outer.gate.wait(120)
                body = b"finally\n"
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client (a killed agent) is gone

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def release(self) -> None:
        self.gate.set()

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


class CountingTcpListener:
    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


class ToggleProxy:
    """Forwards 127.0.0.1:port to the API; `close()` refuses connections until `open()`."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self._listener = sock
        self._stop.clear()
        self._thread = threading.Thread(target=self._accept_loop, args=(sock,), daemon=True)
        self._thread.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.update((client, upstream))
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        sel.register(a, selectors.EVENT_READ, b)
        sel.register(b, selectors.EVENT_READ, a)
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(0.1):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            sel.close()
            with self._lock:
                self._conns.difference_update((a, b))
            a.close()
            b.close()

    def close(self) -> None:
        """Stop listening and cut every open connection: the API looks down."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class Db:
    """Direct reads of PostgreSQL for waiting on conditions (no API rate limit in the way)."""

    def __init__(self, url: str):
        self.url = url

    def one(self, sql: str, *params):
        with psycopg.connect(self.url, row_factory=dict_row, autocommit=True) as conn:
            return conn.execute(sql, params).fetchone()

    def all(self, sql: str, *params):
        with psycopg.connect(self.url, row_factory=dict_row, autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    def task_of(self, check_id: str) -> dict:
        return self.one("SELECT id, status, attempts, error FROM check_tasks WHERE check_id = %s", check_id)

    def results_of(self, check_id: str) -> list[dict]:
        return self.all("SELECT task_id, success, data, error FROM check_results WHERE check_id = %s", check_id)

    def agent_named(self, name: str) -> dict | None:
        return self.one(
            "SELECT id, name, registered_at, last_heartbeat, current_tasks FROM agents WHERE name = %s", name
        )


def create_check(api_url: str, target: str, check_type: str, agent_id: str, options: dict | None = None) -> dict:
    body = {"target": target, "checks": [check_type], "agents": [agent_id]}
    if options:
        body["options"] = {check_type: options}
    resp = requests.post(f"{api_url}/api/checks", json=body, timeout=10)
    assert resp.status_code == 202, resp.text
    return resp.json()


def wait_online(db: Db, agent: AgentProcess) -> dict:
    """The agent registered and has sent at least one heartbeat since."""

    def heartbeating():
        row = db.agent_named(agent.name)
        return row if row and row["last_heartbeat"] and row["last_heartbeat"] > row["registered_at"] else None

    return wait_until(heartbeating, f"agent {agent.name} to register and heartbeat", diagnostics=agent.tail)


# -- fixtures (imported by the test modules) ------------------------------------

import pytest  # noqa: E402


@pytest.fixture
def start_agent(api_server, redis_url, clean_state, tmp_path):
    """Start `python -m agent` subprocesses; every one still running is stopped at the end."""
    started: list[AgentProcess] = []

    def start(name: str, api_url: str | None = None, **env: str) -> AgentProcess:
        agent = AgentProcess(name, api_url or api_server, redis_url, tmp_path / name, **env).start()
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


@pytest.fixture
def proxy(api_server):
    """The agent's way to the API (a ToggleProxy), which the test can cut and restore."""
    p = ToggleProxy(int(api_server.rsplit(":", 1)[1]))
    p.open()
    yield p
    p.close()


@pytest.fixture
def slow_http():
    server = SlowHttpServer()
    yield server
    server.close()


@pytest.fixture
def tcp_listener():
    listener = CountingTcpListener()
    yield listener
    listener.close()


@pytest.fixture
def db(pg_url) -> Db:
    return Db(pg_url)


@pytest.fixture
def stream_pending(redis_url):
    """How many entries of an agent's stream are taken but not acknowledged."""
    import redis as redis_lib

    from chalicelib.protocol import STREAM_GROUP, task_stream_key

    client = redis_lib.Redis.from_url(redis_url)

    def pending(agent_id: str) -> int:
        return int(client.xpending(task_stream_key(agent_id), STREAM_GROUP)["pending"])

    yield pending
    client.close()
