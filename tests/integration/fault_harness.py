"""Processes that the fault tests (tests/integration/test_fault_*.py, issue 16's suite) break on purpose.

A fault only ever hits a server the test started for itself: its own PostgreSQL or Redis (the
project's local cloud, scripts/localcloud/, in the test's tmp folder on free ports), its own API
process, its own agents. The session's shared test servers, `make run`'s stack and other
checkouts' servers are never touched.

- `OwnRedis`: a redis-server; `lose()` kills it and deletes its data, `start()` brings up an empty
  one on the same port.
- `OwnPostgres`: a PostgreSQL cluster, migrated; `stop()`/`start()` on the same port.
- `ApiProcess`: the local API server (tests.conftest.start_chalice_local) on a port of its own.
- `Scheduler`: the local scheduler (EventBridge's stand-in) running the sweep, time-scaled.
- `Fleet`: agents (agent_harness.AgentProcess) against one API and Redis.
- `DelayedHttpServer`: a target that takes a while to answer.
- `fault_procs` (fixture): everything above that a test started is stopped at its end, in reverse.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from scripts.localcloud.postgres import Postgres
from scripts.localcloud.procs import pid_alive, spawn, stop
from scripts.localcloud.redis import Redis
from tests.conftest import ADMIN_TOKEN, TEST_ENV, free_port, start_chalice_local
from tests.integration.agent_harness import AgentProcess, Db, wait_until


class OwnRedis:
    """A redis-server of the test's own (tmp folder, free port)."""

    def __init__(self, state_dir: Path):
        self.server = Redis(state_dir, free_port())
        self.url = f"redis://127.0.0.1:{self.server.port}/0"

    def start(self) -> OwnRedis:
        self.server.start(log=lambda *_: None)
        return self

    def lose(self) -> None:
        """SIGKILL, then delete everything it had on disk: the next start is empty."""
        pid = self.server.pid()
        assert pid, "the test's Redis is not running"
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(pid), "the killed redis-server to exit", timeout=10)
        for path in self.server.dir.iterdir():
            if path.name != "redis.conf":
                shutil.rmtree(path) if path.is_dir() else path.unlink()

    def stop(self) -> None:
        self.server.stop()


class OwnPostgres:
    """A PostgreSQL cluster of the test's own (tmp folder, free port), migrated."""

    def __init__(self, state_dir: Path):
        self.server = Postgres(state_dir, free_port())
        self.url = self.server.url

    def start(self) -> OwnPostgres:
        from chalicelib.db import migrate

        self.server.start(log=lambda *_: None)
        migrate(self.url, log=lambda *_: None)
        return self

    def stop(self) -> None:
        """`pg_ctl stop -m fast`: every connection is cut, new ones are refused."""
        self.server.stop()

    def remove(self) -> None:
        self.server.stop()
        self.server.remove_data()


def api_env(database_url: str, redis_url: str, **overrides: str) -> dict[str, str]:
    """The environment of a test API or scheduler process: the test stage, these servers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HC_")}
    env.update(TEST_ENV, DATABASE_URL=database_url, REDIS_URL=redis_url)
    env.pop("HC_WS_MANAGEMENT_URL", None)  # no live-update pushes to a server the test did not start
    env.update(overrides)
    return env


class ApiProcess:
    """The local API server on a port of its own, on the test's own servers."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.env = env
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> ApiProcess:
        assert not self.running(), "the API is already running"
        self.proc = start_chalice_local(self.port, self.env, self.log_path, "the test's API")
        assert self.proc.poll() is None, f"the API exited: {self.log_path.read_text()[-2000:]}"
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.running():
            stop(self.proc.pid)
            self.proc.wait(10)


class Scheduler:
    """`python -m scripts.scheduler --only sweep`: the sweep every 60 s / `time_scale`."""

    def __init__(self, env: dict[str, str], log_path: Path, time_scale: float):
        self.env = env
        self.log_path = log_path
        self.period_s = 60 / time_scale
        self.time_scale = time_scale
        self.proc: subprocess.Popen | None = None

    def start(self) -> Scheduler:
        argv = [sys.executable, "-m", "scripts.scheduler", "--stage", "test", "--only", "sweep"]
        argv += ["--time-scale", str(self.time_scale), "--run-at-start"]
        self.proc = spawn(argv, self.env, self.log_path)
        wait_until(lambda: self.runs() >= 1 or self.proc.poll() is not None, "the first sweep", timeout=60)
        assert self.proc.poll() is None, self.log_path.read_text()[-2000:]
        return self

    def runs(self) -> int:
        text = self.log_path.read_text() if self.log_path.exists() else ""
        return text.count(" scheduler run sweep ")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop(self.proc.pid)
            self.proc.wait(10)


class Fleet:
    """Agents named `<prefix>-<n>` against one API and one Redis, each with its own state folder."""

    def __init__(self, tmp_path: Path, api_url: str, redis_url: str, procs: list, **env: str):
        self.tmp_path = tmp_path
        self.api_url = api_url
        self.redis_url = redis_url
        self.env = env
        self.agents: list[AgentProcess] = []
        self._procs = procs

    def start(self, count: int, prefix: str = "agent") -> list[AgentProcess]:
        new = [
            AgentProcess(f"{prefix}-{i}", self.api_url, self.redis_url, self.tmp_path / f"{prefix}-{i}", **self.env)
            for i in range(len(self.agents), len(self.agents) + count)
        ]
        for agent in new:
            agent.start()
            self._procs.append(agent)
        self.agents.extend(new)
        return new

    def wait_online(self, db: Db) -> dict[str, str]:
        """Every agent registered and heart-beating; returns {name: agent id}."""
        for agent in self.agents:
            wait_until(lambda a=agent: _beating(db, a), f"agent {agent.name} to heartbeat", diagnostics=agent.tail)
        return {agent.name: agent.state()["agent_id"] for agent in self.agents}

    def tails(self) -> str:
        return "\n".join(agent.tail(15) for agent in self.agents)


def _teardown(proc) -> None:
    if isinstance(proc, OwnPostgres):
        proc.remove()
    elif hasattr(proc, "stop"):
        proc.stop()
    else:
        proc.close()  # agent_harness's servers


def _beating(db: Db, agent: AgentProcess) -> bool:
    """The agent saved its identity and has heart-beaten since it registered."""
    row = db.agent_named(agent.name)
    return bool((agent.state() or {}).get("agent_id") and row and row["last_heartbeat"] > row["registered_at"])


class _BusyServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # every agent's checks at once, never a refused connection


class DelayedHttpServer:
    """Answers every GET with 200 after `delay_s`: a target whose checks take a while, so that an
    agent killed at any moment has checks running. Counts the requests."""

    def __init__(self, delay_s: float):
        self.requests = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - http.server's naming
                with outer._lock:
                    outer.requests += 1
                outer._closing.wait(delay_s)  # the target's own slowness, not a synchronisation
                body = b"ok\n"
                with suppress(OSError):  # the agent may have been killed meanwhile
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = _BusyServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fault_procs():
    """A list the test appends what it starts to; each is stopped at the end, the last first."""
    procs: list = []
    yield procs
    for proc in reversed(procs):
        try:
            _teardown(proc)
        except Exception as exc:  # noqa: BLE001 - stop the others all the same
            print(f"teardown of {type(proc).__name__} failed: {exc}")


def create(api_url: str, body: dict, expect: int = 202) -> dict:
    """POST /api/checks; asserts the status and returns the body."""
    resp = requests.post(f"{api_url}/api/checks", json=body, timeout=15)
    assert resp.status_code == expect, resp.text
    return resp.json()


def metrics_text(api_url: str) -> str:
    resp = requests.get(f"{api_url}/metrics", headers={"X-Admin-Token": ADMIN_TOKEN}, timeout=15)
    assert resp.status_code == 200, resp.text
    return resp.text
