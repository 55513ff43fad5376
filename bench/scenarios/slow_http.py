"""Scenario 4: 500 HTTP checks against a loopback server that answers after 1 s, all to one
host-namespace agent at its default concurrency: the time from the last POST answered to the last
result stored, and the POST rate. The same run gives scenario 8 its memory figures (the agent runs
under /usr/bin/time, and its RSS is sampled while the checks are in flight).

The agent is paused (SIGSTOP) while the 500 POSTs are made and resumed when the last one is
answered, so that the figure is the engine's and not the POST rate's: on a shared 2-core machine
the POSTs alone can take longer than the checks. Should the POSTs take longer than PAUSE_LIMIT_S, it
is resumed early and the notes say so: a longer pause would let the first tasks pass their deadline
(the http check's 15 s timeout) before the agent could run them."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from bench import procstat
from bench.harness import Bench, listener_pid, say, synthetic_client, wait_until
from bench.results import scenario_result

NUMBER = 4
TITLE = "500 HTTP checks against a 1 s server on one agent"
TARGET = "≤ 1.3 s from the last POST answered to all completed, at the default concurrency"
CHECKS = 500
POSTERS = 8
WAIT_S = 60
PAUSE_LIMIT_S = 8


def _post(api: str, body: dict) -> str:
    reply = requests.post(f"{api}/api/checks", json=body, timeout=30, headers={"X-Forwarded-For": synthetic_client()})
    if reply.status_code != 202:
        raise RuntimeError(f"POST /api/checks answered {reply.status_code}: {reply.text[:200]}")
    return reply.json()["check_id"]


def _finished(bench: Bench, agent_id: str) -> tuple[int, float | None, int]:
    """(tasks ended, when the last result the agent sent was stored, tasks in progress now). The agent
    is this scenario's own, so its tasks are the batch: the agent's index answers, where a join over
    the 500 check ids cost PostgreSQL 2-7 ms per sample, 5 % of the machine at two samples per 50 ms
    (measured with log_min_duration_statement=0), taken from the run it measures."""
    with bench.db() as db:
        done, in_flight = db.execute(
            """SELECT count(*) FILTER (WHERE status IN ('completed', 'failed')),
                      count(*) FILTER (WHERE status = 'in_progress')
                 FROM check_tasks WHERE agent_id = %s""",
            (agent_id,),
        ).fetchone()
        last = None
        if done == CHECKS:
            last = db.execute(
                "SELECT extract(epoch FROM max(created_at)) FROM check_results WHERE agent_id = %s", (agent_id,)
            ).fetchone()[0]
    return done, (float(last) if last else None), in_flight


def _failed(bench: Bench, agent_id: str) -> int:
    with bench.db() as db:
        return db.execute(
            "SELECT count(*) FROM check_tasks WHERE agent_id = %s AND status = 'failed'", (agent_id,)
        ).fetchone()[0]


def slow_batch(bench: Bench) -> dict:
    """Run the batch once per bench run; scenarios 4 and 8 both read it."""
    if "slow_batch" in bench.cache:
        return bench.cache["slow_batch"]
    ports = bench.targets()
    agent = bench.start_agent("slow", timed=True)
    pid = bench.agent_pid(agent)
    time.sleep(1.0)  # idle: let the agent settle after its first heartbeat (a pace, not a synchronisation)
    idle_mb = procstat.tree_rss_mb(pid)
    peak = {"mb": idle_mb, "in_flight": 0}
    sampling = threading.Event()

    def sample():
        while not sampling.wait(0.05):
            peak["mb"] = max(peak["mb"], procstat.tree_rss_mb(pid))

    def in_flight():
        while not sampling.wait(0.05):
            peak["in_flight"] = max(peak["in_flight"], _finished(bench, agent["agent_id"])[2])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    counter = threading.Thread(target=in_flight, daemon=True)
    counter.start()
    resumed_early = threading.Event()

    def resume_early():
        if not resumed_early.wait(PAUSE_LIMIT_S):
            resumed_early.set()
            os.kill(pid, signal.SIGCONT)

    body = {"target": f"http://127.0.0.1:{ports['http']}/slow?ms=1000", "checks": ["http"], "agents": []}
    body["agents"] = [agent["agent_id"]]
    stack = bench.stack_pids()
    roles = {
        "agent": [pid],
        "API": [stack["api"]],
        "PostgreSQL": [stack["postgres"]],
        "Redis": [stack["redis"]],
        "WebSocket": [stack["websocket"]],
        "1 s server": [listener_pid(ports["http"])],
    }
    roles = {role: [p for p in ps if p] for role, ps in roles.items()}
    try:
        os.kill(pid, signal.SIGSTOP)
        threading.Thread(target=resume_early, daemon=True).start()
        first = time.time()
        with ThreadPoolExecutor(POSTERS) as pool:
            list(pool.map(lambda _: _post(bench.api, body), range(CHECKS)))
        last_post = time.time()
        early = resumed_early.is_set()
        resumed_early.set()
        cpu_before = {role: procstat.cpu_ms(ps) for role, ps in roles.items()}
        machine_before = procstat.machine_busy_ms()
        os.kill(pid, signal.SIGCONT)
        say(f"    {CHECKS} POSTs in {last_post - first:.1f} s; waiting for the results")

        def all_done():
            done, last, _ = _finished(bench, agent["agent_id"])
            return last if done == CHECKS else None

        last_result = wait_until(all_done, WAIT_S, interval=0.05)
        cpu = {role: procstat.cpu_ms(ps) - cpu_before[role] for role, ps in roles.items()}
        machine_after = procstat.machine_busy_ms()
        done, last_seen, _ = _finished(bench, agent["agent_id"])
        failed = _failed(bench, agent["agent_id"])
    finally:
        os.kill(pid, signal.SIGCONT)
        sampling.set()
        sampler.join()
        counter.join()
        peak_time_mb = bench.stop_agent(agent)
    batch = {
        "post_s": last_post - first,
        "post_rate": CHECKS / (last_post - first),
        "after_last_post_s": ((last_result or last_seen or time.time()) - last_post),
        "wall_s": ((last_result or last_seen or time.time()) - first),
        "completed": done,
        "idle_mb": idle_mb,
        "peak_sampled_mb": peak["mb"],
        "peak_time_mb": peak_time_mb,
        "max_in_flight": peak["in_flight"],
        "resumed_early": early,
        "failed": failed,
        "window_cpu_ms": cpu,
        "machine_busy": (machine_after[0] - machine_before[0]) / max(1.0, machine_after[1] - machine_before[1]),
        "machine_busy_core_ms": machine_after[0] - machine_before[0],
    }
    bench.cache["slow_batch"] = batch
    return batch


def run(bench: Bench) -> dict:
    b = slow_batch(bench)
    met = b["completed"] == CHECKS and b["failed"] == 0 and b["after_last_post_s"] <= 1.3
    metrics = {
        "after_last_post_s": round(b["after_last_post_s"], 2),
        "wall_s": round(b["wall_s"], 2),
        "posts_per_s": round(b["post_rate"], 1),
        "completed": b["completed"],
        "failed": b["failed"],
        "max_in_flight": b["max_in_flight"],
        "window_cpu_ms": {role: round(v) for role, v in b["window_cpu_ms"].items()},
        "machine_busy": round(b["machine_busy"], 3),
    }
    figure = (
        f"{b['after_last_post_s']:.2f} s after the last POST ({b['wall_s']:.1f} s in all, "
        f"{b['completed']}/{CHECKS} ended, {b['failed']} failed); POSTs {b['post_rate']:.0f}/s"
    )
    notes = f"at most {b['max_in_flight']} tasks in progress at once (sampled from the DB every 50 ms)"
    spent = ", ".join(f"{role} {ms:.0f}" for role, ms in sorted(b["window_cpu_ms"].items(), key=lambda kv: -kv[1]))
    notes += (
        f"; CPU from the agent's resume to the last result (ms): {spent}; the whole machine "
        f"{100 * b['machine_busy']:.0f} % busy over its cores then ({b['machine_busy_core_ms']:.0f} core-ms)"
    )
    if b["failed"]:
        notes += f"; {b['failed']} tasks failed (their deadline passed before the agent ran them)"
    if b["resumed_early"]:
        notes += f"; the POSTs took over {PAUSE_LIMIT_S} s, so the agent was resumed before the last one"
    if b["after_last_post_s"] > 1.3 and b["max_in_flight"] < CHECKS:
        floor = CHECKS / max(1, b["max_in_flight"])
        notes += f"; with that many at a time, 500 one-second checks need ≥ {floor:.1f} s: the concurrency bound"
    return scenario_result(NUMBER, TITLE, figure, TARGET, met, notes, metrics)
