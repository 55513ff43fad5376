"""A second API process of the stack's own kind (whatever `scripts.localcloud.stack.step_api`
starts: chalice local today), on a free port and a database of the bench's choosing, with the
time from its start to its first answered request. Scenario 6 points one at the bench database;
scenario 7 times a fresh one."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import requests

from bench.harness import STATE, Bench, free_port
from scripts.localcloud import stack


@dataclass
class ApiProcess:
    url: str
    first_answer_s: float
    profile: stack.Profile

    @property
    def pid(self) -> int | None:
        return stack.managed_pid(self.profile, "api")

    def stop(self) -> None:
        stack.stop_managed(self.profile, ["api"], grace=10)


def start(bench: Bench, database_url: str, redis_db: int = 1) -> ApiProcess:
    """Start it and wait until GET /health answers 200; the wait is polled every 5 ms from spawn."""
    profile = stack.Profile("bench", STATE / "api", STATE / "api" / "stack.env")
    stack.stop_managed(profile, ["api"], grace=10)  # one a previous run left
    s = stack.Stack(profile, with_localstack=False, with_agents=False, with_netns=False)
    s.ports = {"api": free_port()}
    redis_url = bench.env["REDIS_URL"].rsplit("/", 1)[0] + f"/{redis_db}"  # its own Redis database number
    s.env = {
        "API_URL": f"http://127.0.0.1:{s.ports['api']}",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REGISTRATION_TOKEN": bench.env["REGISTRATION_TOKEN"],
        "ADMIN_TOKEN": bench.env["ADMIN_TOKEN"],
    }
    s.api_env = stack._api_environment(s)
    url = s.env["API_URL"]
    first: dict[str, float] = {}
    began = time.perf_counter()
    stop_polling = threading.Event()

    def poll():
        while not stop_polling.is_set():
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    first["s"] = time.perf_counter() - began
                    return
            except requests.RequestException:
                pass
            time.sleep(0.005)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        stack.step_api(s)
    finally:
        poller.join(timeout=10)
        stop_polling.set()
    return ApiProcess(url, first.get("s", time.perf_counter() - began), profile)
