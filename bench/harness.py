"""What every scenario shares: the stack it runs against, the processes the bench starts (targets,
agents, stub API, exporters), and small API helpers.

The stack is this checkout's `make up` stack (`.local/stack.env`). When it is not running the bench
brings it up (without LocalStack, which no scenario needs) and takes it down again at the end, so
the stack is left as it was found. Everything the bench starts itself lives under `.local/bench/`
(pid files, logs, agent state) and is stopped by pid when the run ends, whatever happens.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import subprocess
import sys
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench import procstat
from scripts.localcloud.procs import PidFile, spawn, stop, wait_for

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".local" / "bench"
RUN_ENV = ROOT / ".local" / "stack.env"
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
TIME = "/usr/bin/time"


def say(message: str) -> None:
    print(message, flush=True)


def read_env(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            values[key] = shlex.split(value)[0] if value else ""
    return values


def api_healthy(api_url: str) -> bool:
    try:
        reply = requests.get(f"{api_url}/health", timeout=3)
        body = reply.json()
    except (requests.RequestException, ValueError):
        return False
    return reply.status_code == 200 and body.get("database") == "up" and body.get("redis") == "up"


def synthetic_client() -> str:
    """An X-Forwarded-For address for one burst of requests. The local API sits behind a private hop,
    so it keys its per-IP limits by the first X-Forwarded-For hop (chalicelib/ratelimit.client_ip):
    spreading the bench's checks over addresses from the benchmarking range 198.18.0.0/15 keeps it
    from tripping, or using up, the quota of the person who runs it."""
    return f"198.18.{random.randint(0, 255)}.{random.randint(1, 254)}"


@dataclass
class Process:
    name: str
    pid: int
    log: Path
    started: int | None = None


@dataclass
class Bench:
    """One run: the stack's settings, the processes started, and a run id that names what it creates."""

    env: dict[str, str] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    started_stack: bool = False
    processes: list[Process] = field(default_factory=list)
    agents: list[dict] = field(default_factory=list)  # registered through the API: retired at the end
    cache: dict = field(default_factory=dict)  # results shared between scenarios (4 and 8)
    http: requests.Session = field(default_factory=requests.Session)

    @property
    def api(self) -> str:
        return self.env["API_URL"]

    # -- the stack -------------------------------------------------------------

    def ensure_stack(self) -> None:
        if RUN_ENV.exists():
            env = read_env(RUN_ENV)
            if env.get("API_URL") and api_healthy(env["API_URL"]):
                self.env = env
                say(f"==> using the running stack at {env['API_URL']}")
                return
        say("==> no healthy `make up` stack: bringing one up (python -m scripts.stack up --without-localstack)")
        from scripts.localcloud.stack import PROFILES, running_pieces

        was_running = running_pieces(PROFILES["run"])
        proc = subprocess.run(
            [PYTHON, "-m", "scripts.stack", "up", "--without-localstack"], cwd=ROOT, capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise RuntimeError(f"make up failed: {(proc.stdout + proc.stderr).strip().splitlines()[-3:]}")
        self.started_stack = not was_running  # something of it already ran: leave it running
        self.env = read_env(RUN_ENV)

    def stack_pids(self) -> dict[str, int | None]:
        """The stack's own processes by role: the API, PostgreSQL, Redis, the WebSocket emulator."""
        from scripts.localcloud.postgres import Postgres
        from scripts.localcloud.redis import Redis
        from scripts.localcloud.stack import PROFILES, managed_pid

        profile = PROFILES["run"]
        api = managed_pid(profile, "api") or listener_pid(int(self.env.get("PORT_API") or 0))
        return {
            "api": api,
            "postgres": Postgres(profile.state, 0).pid(),
            "redis": Redis(profile.state, 0).pid(),
            "websocket": managed_pid(profile, "websocket"),
        }

    def close(self) -> None:
        for agent in self.agents:
            self.retire(agent["agent_id"])
        self.agents.clear()
        self.stop_all()
        if self.started_stack:
            say("==> taking down the stack the bench brought up")
            subprocess.run([PYTHON, "-m", "scripts.stack", "down"], cwd=ROOT, capture_output=True)

    # -- processes ---------------------------------------------------------------

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Process:
        log = STATE / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_bytes(b"")
        pid_file = PidFile(STATE / "pids" / f"{name}.pid")
        proc = spawn(argv, env or self.base_env(), log, pid_file)
        record = Process(name, proc.pid, log, (pid_file.read() or (0, None))[1])
        self.processes.append(record)
        return record

    def stop_process(self, process: Process, grace: float = 10.0) -> None:
        if process in self.processes:
            self.processes.remove(process)
        stop((process.pid, process.started), grace=grace, group=True)
        (STATE / "pids" / f"{process.name}.pid").unlink(missing_ok=True)

    def stop_all(self) -> None:
        for process in list(reversed(self.processes)):
            with suppress(Exception):
                self.stop_process(process)

    @staticmethod
    def base_env() -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HC_", "PYTEST"))}
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start_ready(self, name: str, module: str, timeout: float = 20) -> tuple[Process, dict]:
        """A bench helper (`python -m bench.X --ready-file F`) and what it wrote to F."""
        ready = STATE / f"{name}.ready"
        ready.unlink(missing_ok=True)
        process = self.start(name, [PYTHON, "-m", module, "--ready-file", str(ready)])
        wait_for(lambda: ready.exists() or self._died(process), timeout, f"{name} to start")
        return process, json.loads(ready.read_text())

    @staticmethod
    def _died(process: Process) -> bool:
        if not procstat._stat_fields(process.pid):
            raise RuntimeError(f"{process.name} exited: {process.log.read_text()[-500:]}")
        return False

    def targets(self) -> dict:
        """The loopback probe targets (bench/targets.py), started once per run."""
        if "targets" not in self.cache:
            process, ports = self.start_ready("targets", "bench.targets")
            self.cache["targets"] = ports
            self.cache["targets_pid"] = process.pid
        return self.cache["targets"]

    # -- agents ----------------------------------------------------------------

    def agent_env(self, name: str, api_url: str | None = None, **extra: str) -> dict[str, str]:
        env = self.base_env()
        env.update(
            {
                "HC_API_URL": api_url or self.api,
                "HC_REDIS_URL": self.env["REDIS_URL"],
                "HC_AGENT_NAME": name,
                "HC_AGENT_LOCATION": "Bench, loopback",
                "HC_AGENT_REGION": "bench-1",
                "HC_REGISTRATION_TOKEN": self.env["REGISTRATION_TOKEN"],
                "HC_STATE_DIR": str(STATE / "agents" / name),
                "HC_ALLOW_PRIVATE_TARGETS": "true",
                "HC_LOG_FORMAT": "json",
            }
        )
        env.update(extra)
        return env

    def start_agent(self, label: str, api_url: str | None = None, timed: bool = False, **extra: str) -> dict:
        """A real agent process (`python -m agent`) in the host namespace, registered with the API and
        online. `timed`: under /usr/bin/time, whose peak RSS `stop_agent` returns."""
        name = f"bench-{self.run_id}-{label}"
        state_dir = STATE / "agents" / name
        subprocess.run(["rm", "-rf", str(state_dir)], check=False)
        argv = [PYTHON, "-m", "agent"]
        if timed:
            argv = [TIME, "-f", "bench-maxrss-kb %M", *argv]
        process = self.start(f"agent-{label}", argv, self.agent_env(name, api_url, **extra))
        state_file = state_dir / "state.json"

        def registered():
            self._died(process)
            try:
                return json.loads(state_file.read_text()).get("agent_id")
            except (OSError, ValueError):
                return None

        agent_id = wait_for(registered, 60, f"agent {name} to register")
        agent = {"agent_id": agent_id, "name": name, "process": process, "timed": timed}
        if api_url is None:
            self.agents.append(agent)
            wait_for(lambda: self.agent_online(agent_id), 60, f"agent {name} to be online")
        return agent

    def agent_pid(self, agent: dict) -> int:
        """The agent's Python process (under /usr/bin/time it is time's child)."""
        pid = agent["process"].pid
        return (procstat.child_pid(pid) or pid) if agent["timed"] else pid

    def stop_agent(self, agent: dict) -> float | None:
        """Stop the agent (it drains); returns its peak RSS in MB when it ran under /usr/bin/time."""
        process = agent["process"]
        if agent["timed"]:
            child = procstat.child_pid(process.pid)
            if child:
                stop(child, grace=30)  # time itself reports once its child has exited
            with suppress(Exception):
                wait_for(lambda: not procstat._stat_fields(process.pid), 10, "time to report")
        self.stop_process(process, grace=30)
        if agent in self.agents:
            self.retire(agent["agent_id"])
            self.agents.remove(agent)
        if agent["timed"]:
            for line in process.log.read_text(errors="replace").splitlines():
                if line.startswith("bench-maxrss-kb "):
                    return int(line.split()[1]) / 1024
        return None

    def agent_online(self, agent_id: str) -> bool:
        reply = self.http.get(f"{self.api}/api/agents/{agent_id}", timeout=10)
        return reply.status_code == 200 and reply.json().get("status") == "online"

    # -- API helpers -----------------------------------------------------------

    def register_fake(self, label: str, capabilities: list[str]) -> dict:
        """An agent that exists only through the API (no process): for fan-out and live-push scenarios."""
        reply = self.http.post(
            f"{self.api}/api/agents/register",
            timeout=10,
            json={"name": f"bench-{self.run_id}-{label}", "location": "Bench", "capabilities": capabilities},
            headers={"X-Registration-Token": self.env["REGISTRATION_TOKEN"]},
        )
        reply.raise_for_status()
        agent = reply.json()
        self.agents.append(agent)
        return agent

    def heartbeat(self, agent: dict) -> None:
        reply = self.http.post(
            f"{self.api}/api/agents/heartbeat",
            timeout=10,
            json={"current_tasks": 0, "version": "bench"},
            headers={"X-Agent-Token": agent["api_token"]},
        )
        reply.raise_for_status()

    def retire(self, agent_id: str) -> None:
        with suppress(requests.RequestException):
            self.http.delete(
                f"{self.api}/api/agents/{agent_id}", timeout=10, headers={"X-Admin-Token": self.env["ADMIN_TOKEN"]}
            )

    def post_check(self, body: dict, session: requests.Session | None = None) -> dict:
        reply = (session or self.http).post(
            f"{self.api}/api/checks", json=body, timeout=30, headers={"X-Forwarded-For": synthetic_client()}
        )
        if reply.status_code != 202:
            raise RuntimeError(f"POST /api/checks answered {reply.status_code}: {reply.text[:300]}")
        return reply.json()

    def delete_check(self, check_id: str) -> None:
        with suppress(requests.RequestException):
            self.http.delete(
                f"{self.api}/api/checks/{check_id}", timeout=10, headers={"X-Admin-Token": self.env["ADMIN_TOKEN"]}
            )

    def db(self):
        import psycopg

        return psycopg.connect(self.env["DATABASE_URL"], autocommit=True)

    def counter(self, name: str, labels: tuple[str, ...] = ()) -> int:
        """A Prometheus counter's value as the API keeps it in Redis (chalicelib/metrics.py)."""
        import redis

        from chalicelib import metrics

        with redis.Redis.from_url(self.env["REDIS_URL"]) as r:
            return int(r.hget(metrics.KEY, metrics.counter_field(name, labels)) or 0)


def wait_until(predicate, timeout: float, interval: float = 0.01):
    """Poll `predicate` until truthy (returned) or `timeout` passes (None): the bench's bounded wait."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def listener_pid(port: int) -> int | None:
    """The pid listening on TCP `port` (ss -ltnp), for a stack whose API runs under another name."""
    if not port:
        return None
    proc = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True)
    for part in proc.stdout.split("pid=")[1:]:
        digits = part.split(",")[0]
        if digits.isdigit():
            return int(digits)
    return None


def free_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
