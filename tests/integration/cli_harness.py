"""Fake agents for the CLI's tests: they register over HTTP, read their own Redis stream
(as the real agent does), start each task and post a canned result of the right shape.

A `FakeAgent` answers after `delay_s`, or only once the test opens its `gate`, so a test
decides the order in which results arrive. `fails` names the check types it reports as
failed. `run_cli` runs the installed console script's module as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import redis as redis_lib
import requests

from chalicelib.protocol import CHECK_TYPES, task_stream_key

ROOT = Path(__file__).resolve().parents[2]
REGISTRATION_TOKEN = "test-registration-token"


def canned_data(check_type: str, ms: float) -> dict:
    return {
        "http": {
            "status_code": 200,
            "reason": "OK",
            "http_version": "HTTP/1.1",
            "final_url": "http://t/",
            "redirects": [],
            "timings_ms": {"dns": 0.1, "connect": ms / 3, "tls": None, "ttfb": ms / 2, "download": 0.2, "total": ms},
            "body_bytes": 12,
        },
        "ping": {
            "address": "192.0.2.1",
            "packets_sent": 4,
            "packets_received": 4,
            "loss_pct": 0,
            "rtt_ms": {"min": ms - 0.5, "avg": ms, "max": ms + 0.5, "stddev": 0.3},
            "rtts_ms": [ms] * 4,
        },
        "dns": {
            "record_type": "A",
            "resolver": "192.0.2.53",
            "rcode": "NOERROR",
            "query_time_ms": ms,
            "answers": [{"name": "example.com.", "type": "A", "ttl": 60, "value": "192.0.2.1"}],
        },
        "tcp": {"address": "192.0.2.1", "port": 443, "connect_ms": ms},
        "mtr": {
            "address": "192.0.2.1",
            "protocol": "icmp",
            "port": None,
            "reached": True,
            "count": 3,
            "rounds_done": 3,
            "hops": [
                {
                    "ttl": 1,
                    "address": "192.0.2.254",
                    "addresses": ["192.0.2.254"],
                    "hostname": "gw.example.test",
                    "sent": 3,
                    "received": 2,
                    "loss_pct": 33.3,
                    "rtt_ms": {"last": ms / 2, "min": ms / 2, "avg": ms / 2, "max": ms / 2, "stddev": 0.0},
                    "jitter_ms": {"min": 0.0, "avg": 0.0, "max": 0.0},
                    "rtts_ms": [ms / 2, None, ms / 2],
                },
                {
                    "ttl": 2,
                    "address": "192.0.2.1",
                    "addresses": ["192.0.2.1"],
                    "hostname": None,
                    "sent": 3,
                    "received": 3,
                    "loss_pct": 0.0,
                    "rtt_ms": {"last": ms, "min": ms, "avg": ms, "max": ms, "stddev": 0.0},
                    "jitter_ms": {"min": 0.0, "avg": 0.0, "max": 0.0},
                    "rtts_ms": [ms, ms, ms],
                },
            ],
            "rtt_ms": {"last": ms, "min": ms, "avg": ms, "max": ms, "stddev": 0.0},
            "loss_pct": 0.0,
        },
        "traceroute": {
            "address": "192.0.2.1",
            "reached": True,
            "hops": [
                {"ttl": 1, "address": "192.0.2.254", "hostname": None, "rtts_ms": [ms / 2], "loss_pct": 0},
                {"ttl": 2, "address": "192.0.2.1", "hostname": None, "rtts_ms": [ms], "loss_pct": 0},
            ],
        },
    }[check_type]


class FakeAgent:
    def __init__(
        self,
        api_url: str,
        redis_url: str,
        name: str,
        location: str,
        region: str | None = None,
        ms: float = 10.0,
        delay_s: float = 0.0,
        fails: tuple[str, ...] = (),
        gated: bool = False,
    ):
        self.api_url, self.name, self.location, self.ms = api_url, name, location, ms
        self.delay_s, self.fails = delay_s, fails
        self.gate = threading.Event()
        if not gated:
            self.gate.set()
        self.tasks_done: list[str] = []
        self._stop = threading.Event()
        body = {"name": name, "location": location, "capabilities": list(CHECK_TYPES), "version": "fake"}
        if region:
            body["region"] = region
        reply = requests.post(
            f"{api_url}/api/agents/register",
            json=body,
            headers={"X-Registration-Token": REGISTRATION_TOKEN},
            timeout=10,
        )
        assert reply.status_code in (200, 201), reply.text
        self.id, self.token = reply.json()["agent_id"], reply.json()["api_token"]
        self._post("/api/agents/heartbeat", {"current_tasks": 0, "version": "fake"})
        self._redis = redis_lib.Redis.from_url(redis_url, decode_responses=True)
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"fake-{name}")
        self._thread.start()

    def _post(self, path: str, body: dict | None = None) -> requests.Response:
        return requests.post(f"{self.api_url}{path}", json=body, headers={"X-Agent-Token": self.token}, timeout=10)

    def _run(self) -> None:
        last_id, beats = "0", 0
        while not self._stop.is_set():
            entries = self._redis.xread({task_stream_key(self.id): last_id}, count=10, block=200) or []
            for _stream, items in entries:
                for entry_id, fields in items:
                    last_id = entry_id
                    self._answer(json.loads(fields["task"]))
            beats += 1
            if beats % 10 == 0:
                self._post("/api/agents/heartbeat", {"current_tasks": 0, "version": "fake"})

    def _answer(self, task: dict) -> None:
        self._post(f"/api/tasks/{task['task_id']}/start")
        # Simulated work: the agent's own pace, or the test's gate; never the test's synchronisation.
        self._stop.wait(self.delay_s)
        while not self.gate.wait(0.1):
            if self._stop.is_set():
                return
        failed = task["check_type"] in self.fails
        body = {
            "success": not failed,
            "duration_ms": self.ms,
            "address": "192.0.2.1",
            "data": {} if failed else canned_data(task["check_type"], self.ms),
            "error": {"kind": "refused", "message": "connection refused"} if failed else None,
        }
        self._post(f"/api/tasks/{task['task_id']}/result", body)
        self.tasks_done.append(task["task_id"])

    def stop(self) -> None:
        self._stop.set()
        self.gate.set()
        self._thread.join(10)
        self._redis.close()


def cli_env(api_url: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTCHECKER_")}
    env.pop("NO_COLOR", None)
    if api_url:
        env["HOSTCHECKER_API_URL"] = api_url
    env.update({"PYTHONUNBUFFERED": "1", "COLUMNS": "160", **extra})
    return env


def cli_argv(*args: str) -> list[str]:
    """The installed console script when there is one (what users run), else the module."""
    script = ROOT / ".venv" / "bin" / "hostchecker"
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "cli", *args]


def run_cli(
    api_url: str | None, *args: str, timeout: float = 60, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess:
    return subprocess.run(
        cli_argv(*args), cwd=cwd or ROOT, env=cli_env(api_url, **env), capture_output=True, text=True, timeout=timeout
    )


# -- fixtures (imported by the test modules) ------------------------------------

import pytest  # noqa: E402


@pytest.fixture
def fake_agents(api_server, redis_url, clean_state):
    """Start fake agents on a clean database; every one is stopped at the end."""
    started: list[FakeAgent] = []

    def start(name: str, location: str, **kw) -> FakeAgent:
        agent = FakeAgent(api_server, redis_url, name, location, **kw)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()
