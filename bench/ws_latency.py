"""Latency of live results: from a result being posted to the API to its `result` message
arriving on a WebSocket subscribed to the check (p50, p95).

    .venv/bin/python bench/ws_latency.py [--env .local/stack.env] [--checks 20] [--agents 3]

Reads API_URL, WS_URL, REGISTRATION_TOKEN and ADMIN_TOKEN from the stack.env that `make up`
writes. It registers its own fake agents (retired again at the end), creates checks for them
only, subscribes to each check, and reports every task's result itself, timing:
- `sent`: POST /api/tasks/{id}/result sent -> the `result` message received;
- `answered`: the POST's answer -> the message (negative: the push beat the answer, since the
  API pushes before it answers);
- `committed`: the result's transaction committed (PostgreSQL's `pg_xact_commit_timestamp`, with
  `track_commit_timestamp` on, as the stack's PostgreSQL runs) -> the message: the result accepted,
  stored for good, to the client having it. None where the stamps are off.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parents[1]


def read_env(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            values[key] = shlex.split(value)[0] if value else ""
    return values


def percentile(values: list[float], pct: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


class Receiver(threading.Thread):
    """Reads one check's socket and stamps each result's arrival by task id."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.snapshot = threading.Event()
        self.arrived: dict[str, float] = {}
        self.arrived_wall: dict[str, float] = {}  # time.time(), to compare with PostgreSQL's stamps

    def run(self):
        with connect(self.url, open_timeout=10) as ws:
            ws.send(json.dumps({"action": "subscribe"}))
            try:
                for raw in ws:
                    self._stamp(json.loads(raw))
            except ConnectionClosed:  # the server closes after the status; an early close shows as missing
                return

    def _stamp(self, msg: dict) -> None:
        if msg["type"] == "snapshot":
            self.snapshot.set()
        elif msg["type"] == "result":
            self.arrived.setdefault(msg["result"]["task_id"], time.perf_counter())
            self.arrived_wall.setdefault(msg["result"]["task_id"], time.time())


def commit_times(database_url: str, task_ids: list[str]) -> dict[str, float]:
    """{task_id: when its result's transaction committed (epoch s)}; empty where PostgreSQL does not
    keep commit timestamps (track_commit_timestamp off)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as db:
        if db.execute("SHOW track_commit_timestamp").fetchone()[0] != "on":
            return {}
        rows = db.execute(
            """SELECT task_id::text, extract(epoch FROM pg_xact_commit_timestamp(xmin))
                 FROM check_results WHERE task_id = ANY(%s::uuid[])""",
            (task_ids,),
        ).fetchall()
    return {task_id: float(at) for task_id, at in rows if at is not None}


def run_check(http: requests.Session, env: dict, agents: list[dict]) -> list[tuple[float, float, float | None]]:
    body = {"target": "127.0.0.1", "checks": ["tcp"], "agents": [a["agent_id"] for a in agents]}
    created = http.post(f"{env['API_URL']}/api/checks", json=body, timeout=10)
    created.raise_for_status()
    check = created.json()
    receiver = Receiver(f"{env['WS_URL']}?check_id={check['check_id']}")
    receiver.start()
    if not receiver.snapshot.wait(10):
        raise RuntimeError("no snapshot within 10 s")
    tokens = {a["agent_id"]: a["api_token"] for a in agents}
    timings = {}
    for task in check["tasks"]:
        headers = {"X-Agent-Token": tokens[task["agent_id"]]}
        sent = time.perf_counter()
        reply = http.post(
            f"{env['API_URL']}/api/tasks/{task['task_id']}/result",
            headers=headers,
            timeout=10,
            json={
                "success": True,
                "duration_ms": 1.0,
                "address": "127.0.0.1",
                "data": {"address": "127.0.0.1", "port": 80, "connect_ms": 1.0},
            },
        )
        reply.raise_for_status()
        timings[task["task_id"]] = (sent, time.perf_counter())
    receiver.join(timeout=10)
    missing = set(timings) - set(receiver.arrived)
    if missing:
        raise RuntimeError(f"{len(missing)} result(s) never arrived over the socket")
    committed = commit_times(env["DATABASE_URL"], list(timings)) if env.get("DATABASE_URL") else {}
    return [
        (
            receiver.arrived[t] - s,
            receiver.arrived[t] - a,
            receiver.arrived_wall[t] - committed[t] if t in committed else None,
        )
        for t, (s, a) in timings.items()
    ]


def register(http: requests.Session, env: dict, n: int) -> list[dict]:
    run = uuid.uuid4().hex[:6]
    agents = []
    for i in range(n):
        r = http.post(
            f"{env['API_URL']}/api/agents/register",
            timeout=10,
            json={"name": f"bench-ws-{run}-{i}", "location": f"Bench {i}", "capabilities": ["tcp"]},
            headers={"X-Registration-Token": env["REGISTRATION_TOKEN"]},
        )
        r.raise_for_status()
        agents.append(r.json())
    return agents


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", type=Path, default=ROOT / ".local" / "stack.env", help="the stack's stack.env")
    parser.add_argument("--checks", type=int, default=20, help="checks to run (each counts against the rate limit)")
    parser.add_argument("--agents", type=int, default=3, help="fake agents, one task each per check")
    args = parser.parse_args(argv)
    env = read_env(args.env)
    if not env.get("WS_URL"):
        print(f"{args.env} has no WS_URL: the stack runs no WebSocket endpoint", file=sys.stderr)
        return 2
    http = requests.Session()
    agents = register(http, env, args.agents)
    try:
        samples = [s for _ in range(args.checks) for s in run_check(http, env, agents)]
    finally:
        for agent in agents:
            http.delete(
                f"{env['API_URL']}/api/agents/{agent['agent_id']}",
                timeout=10,
                headers={"X-Admin-Token": env.get("ADMIN_TOKEN", "")},
            )
    for name, index in (("sent", 0), ("answered", 1), ("committed", 2)):
        values = [s[index] * 1000 for s in samples if s[index] is not None]
        if not values:
            continue
        print(
            f"result {name} -> update received: n={len(values)} p50={percentile(values, 50):.1f} ms "
            f"p95={percentile(values, 95):.1f} ms mean={statistics.mean(values):.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
