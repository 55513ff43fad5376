"""Scenario 5: fan-out. POST one check × 5 types to 10, 50 and 100 registered online agents
(registered through the API, heartbeating, no process behind them), interleaved sizes, measured
as the client sees the POST (fresh connections); the checks are deleted again."""

from __future__ import annotations

import statistics
import time

import requests

from bench import profile
from bench.harness import Bench, synthetic_client
from bench.results import scenario_result

NUMBER = 5
TITLE = "Fan-out: one check × 5 types to 10/50/100 agents (POST /api/checks)"
TARGET = "≤ 15 ms at 100 agents, flat per task"
TYPES = ["http", "ping", "dns", "tcp", "traceroute"]
SIZES = (10, 50, 100)
ROUNDS = 7
HEARTBEAT_EVERY_S = 15  # well inside the 30 s heartbeat TTL


def _rounds(bench: Bench, agents: list[dict], check_ids: list[str], samples: dict[int, list[float]]) -> None:
    beat_at = 0.0
    for i in range(ROUNDS + 1):  # the first round warms up
        order = SIZES if i % 2 == 0 else tuple(reversed(SIZES))
        for n in order:
            if time.monotonic() - beat_at > HEARTBEAT_EVERY_S:
                for agent in agents:
                    bench.heartbeat(agent)
                beat_at = time.monotonic()
            body = {"target": "127.0.0.1", "checks": TYPES, "agents": [a["agent_id"] for a in agents[:n]]}
            began = time.perf_counter()
            reply = requests.post(
                f"{bench.api}/api/checks", json=body, timeout=30, headers={"X-Forwarded-For": synthetic_client()}
            )
            elapsed = (time.perf_counter() - began) * 1000
            if reply.status_code != 202:
                raise RuntimeError(f"POST /api/checks answered {reply.status_code}: {reply.text[:200]}")
            created = reply.json()
            if len(created["tasks"]) != n * len(TYPES):
                raise RuntimeError(f"{n} agents × 5 types gave {len(created['tasks'])} tasks")
            check_ids.append(created["check_id"])
            if i:
                samples[n].append(elapsed)


def run(bench: Bench) -> dict:
    agents = [bench.register_fake(f"fan{i}", TYPES) for i in range(max(SIZES))]
    check_ids, samples = [], {n: [] for n in SIZES}
    recorder = profile.Recorder(bench.stack_pids()["api"], "s5-api")
    try:
        with recorder:
            _rounds(bench, agents, check_ids, samples)
    finally:
        for check_id in check_ids:
            bench.delete_check(check_id)
        for agent in agents:
            bench.retire(agent["agent_id"])
            bench.agents.remove(agent)
    medians = {n: statistics.median(v) for n, v in samples.items()}
    per_task_us = (medians[100] - medians[10]) / ((100 - 10) * len(TYPES)) * 1000
    metrics = {f"agents_{n}_ms": round(m, 1) for n, m in medians.items()}
    metrics["marginal_us_per_task"] = round(per_task_us, 1)
    metrics["agents_100_per_task_us"] = round(medians[100] / (100 * len(TYPES)) * 1000, 1)
    met = medians[100] <= 15
    figure = " / ".join(f"{medians[n]:.1f}" for n in SIZES) + " ms (10 / 50 / 100 agents, median of 7)"
    notes = f"{per_task_us:.0f} µs per extra task ({len(TYPES)} tasks per agent); fresh connection per POST"
    if not met:
        notes += "; " + profile.note("API (heartbeats included)", recorder.result)
    return scenario_result(NUMBER, TITLE, figure, TARGET, met, notes, metrics)
