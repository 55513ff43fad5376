"""Scenario 1: one TCP check to one host-namespace agent against a loopback port, from POST until
the client sees it complete; over the WebSocket and over polling, interleaved, as a ratio. The
stage breakdown comes from the task's own timestamps in PostgreSQL."""

from __future__ import annotations

import json
import statistics
import time

import requests
from websockets.sync.client import connect

from bench import profile
from bench.harness import Bench, synthetic_client
from bench.results import scenario_result
from bench.stats import ratio, summary

NUMBER = 1
TITLE = "End to end: POST a TCP check to one host agent until the client sees it complete"
TARGET = "p50 ≤ 8 ms, p95 ≤ 15 ms, over the WebSocket and over keep-alive polling"
ROUNDS = 30  # per mode
WARMUP = 3
PROFILED_ROUNDS = 10  # a separate pass under py-spy, not timed: the sampler costs CPU the figures would pay
TIMEOUT_S = 10.0
POLL_PAUSE_S = 0.002
DONE = ("completed", "failed")


def _post(session, api: str, body: dict) -> dict:
    reply = session.post(f"{api}/api/checks", json=body, timeout=10, headers={"X-Forwarded-For": synthetic_client()})
    if reply.status_code != 202:
        raise RuntimeError(f"POST /api/checks answered {reply.status_code}: {reply.text[:200]}")
    return reply.json()


def via_polling(api: str, body: dict, session: requests.Session | None) -> tuple[float, str, float]:
    """(seconds from POST to seeing it complete, check id, wall time seen). session None: a new
    connection for every request, else one keep-alive connection for all of them."""
    http = session or requests
    began = time.perf_counter()
    check = _post(http, api, body)
    deadline = began + TIMEOUT_S
    while time.perf_counter() < deadline:
        doc = http.get(f"{api}/api/checks/{check['check_id']}", timeout=10).json()
        if doc.get("status") in DONE:
            return time.perf_counter() - began, check["check_id"], time.time()
        time.sleep(POLL_PAUSE_S)
    raise RuntimeError(f"check {check['check_id']} not complete within {TIMEOUT_S} s (polling)")


def via_websocket(api: str, ws_url: str, body: dict) -> tuple[float, str, float]:
    began = time.perf_counter()
    check = _post(requests, api, body)
    with connect(f"{ws_url}?check_id={check['check_id']}", open_timeout=TIMEOUT_S) as ws:
        ws.send(json.dumps({"action": "subscribe"}))
        deadline = began + TIMEOUT_S
        while time.perf_counter() < deadline:
            msg = json.loads(ws.recv(timeout=max(0.01, deadline - time.perf_counter())))
            if (msg.get("type") == "snapshot" and msg["check"]["status"] in DONE) or (
                msg.get("type") == "status" and msg.get("status") in DONE
            ):
                return time.perf_counter() - began, check["check_id"], time.time()
    raise RuntimeError(f"check {check['check_id']} not complete within {TIMEOUT_S} s (WebSocket)")


STAGES = (
    ("POST→task row", "t_created", "client_sent"),
    ("row→enqueued", "t_enqueued", "t_created"),
    ("enqueued→started", "t_started", "t_enqueued"),
    ("started→result committed", "r_committed", "t_started"),
    ("committed→client saw it", "client_seen", "r_committed"),
)


def stage_breakdown(bench: Bench, samples: list[dict]) -> dict[str, float]:
    """Median ms of each stage, from the task's timestamps and the client's own clock (same machine)."""
    by_id = {s["check_id"]: s for s in samples}
    with bench.db() as db:
        # A stamp from now() is its transaction's start; the result's commit is PostgreSQL's own
        # commit timestamp (track_commit_timestamp, on in the stack's PostgreSQL), else its start.
        committed = (
            "extract(epoch FROM pg_xact_commit_timestamp(r.xmin))"
            if db.execute("SHOW track_commit_timestamp").fetchone()[0] == "on"
            else "extract(epoch FROM r.created_at)"
        )
        rows = db.execute(
            f"""SELECT t.check_id::text, extract(epoch FROM t.created_at), extract(epoch FROM t.enqueued_at),
                      extract(epoch FROM t.started_at), {committed}
                 FROM check_tasks t JOIN check_results r ON r.task_id = t.id
                WHERE t.check_id = ANY(%s::uuid[])""",
            (list(by_id),),
        ).fetchall()
    stages: dict[str, list[float]] = {name: [] for name, _, _ in STAGES}
    for check_id, created, enqueued, started, stored in rows:
        stamps = {
            "client_sent": by_id[check_id]["sent"],
            "client_seen": by_id[check_id]["seen"],
            "t_created": float(created),
            "t_enqueued": float(enqueued or created),
            "t_started": float(started or enqueued or created),
            "r_committed": float(stored),
        }
        for name, later, earlier in STAGES:
            stages[name].append((stamps[later] - stamps[earlier]) * 1000)
    return {name: round(statistics.median(v), 1) for name, v in stages.items() if v}


def run(bench: Bench) -> dict:
    ports = bench.targets()
    agent = bench.start_agent("e2e")
    body = {
        "target": "127.0.0.1",
        "checks": ["tcp"],
        "agents": [agent["agent_id"]],
        "options": {"tcp": {"port": ports["tcp"]}},
    }
    api, ws_url = bench.api, bench.env.get("WS_URL")
    keepalive = requests.Session()
    modes = {
        "poll": lambda: via_polling(api, body, keepalive),
        "poll_fresh": lambda: via_polling(api, body, None),
    }
    if ws_url:
        modes["ws"] = lambda: via_websocket(api, ws_url, body)
    samples: dict[str, list[dict]] = {mode: [] for mode in modes}
    recorder = profile.Recorder(bench.stack_pids()["api"], "s1-api")
    try:
        _rounds(modes, samples)
        with recorder:
            _rounds(modes, {mode: [] for mode in modes}, PROFILED_ROUNDS, warmup=0)
    finally:
        bench.stop_agent(agent)
    return _result(bench, samples, recorder.result)


def _rounds(modes: dict, samples: dict, rounds: int = ROUNDS, warmup: int = WARMUP) -> None:
    for i in range(warmup + rounds):
        names = list(modes)
        for mode in names[i % len(names) :] + names[: i % len(names)]:  # interleaved, rotating order
            sent = time.time()
            seconds, check_id, seen = modes[mode]()
            if i >= warmup:
                samples[mode].append({"ms": seconds * 1000, "check_id": check_id, "sent": sent, "seen": seen})


def _result(bench: Bench, samples: dict, prof: dict) -> dict:
    stats = {mode: summary([s["ms"] for s in values], 1) for mode, values in samples.items()}
    metrics = {}
    for mode, st in stats.items():
        metrics[f"{mode}_p50_ms"], metrics[f"{mode}_p95_ms"] = st["p50"], st["p95"]
    stages = {mode: stage_breakdown(bench, values) for mode, values in samples.items()}
    headline = [m for m in ("ws", "poll") if m in stats]
    met = all(stats[m]["p50"] <= 8 and stats[m]["p95"] <= 15 for m in headline) and "ws" in stats
    figure = "; ".join(
        f"{label} p50 {stats[m]['p50']} / p95 {stats[m]['p95']} ms"
        for m, label in (
            ("ws", "WebSocket"),
            ("poll", "keep-alive polling"),
            ("poll_fresh", "fresh-connection polling"),
        )
        if m in stats
    )
    notes = []
    if "ws" in stats:
        metrics["ws_over_poll_p50"] = ratio(stats["ws"]["p50"], stats["poll"]["p50"])
        notes.append(f"WebSocket/keep-alive polling p50 = {metrics['ws_over_poll_p50']}×")
    else:
        notes.append("no WS_URL in stack.env: WebSocket not measured")
    for mode in headline:
        breakdown = stages.get(mode) or {}
        for name, value in breakdown.items():
            metrics[f"{mode}_stage_{name.split('→')[0].lower().replace(' ', '_')}_ms"] = value
        notes.append(f"{mode} stages (median ms): " + ", ".join(f"{k} {v}" for k, v in breakdown.items()))
    slowest = max((stages.get("poll") or {"?": 0}).items(), key=lambda kv: kv[1])
    notes.append(f"largest polling stage: {slowest[0]} ({slowest[1]} ms)")
    if not met:
        notes.append(profile.note("API", prof))
    return scenario_result(NUMBER, TITLE, figure, TARGET, met, "; ".join(notes), metrics)
