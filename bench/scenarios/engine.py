"""Scenario 3: the agent's engine against Prometheus blackbox_exporter, same loopback target, same
concurrency, interleaved rounds, as a ratio of probes per second: (a) TCP connect, (b) HTTP GET.

The agent is the real `python -m agent` (its real runner path: Redis stream in, start, check,
result, XACK), with the API replaced by bench/stub_api.py so that the API's own cost is not what
is measured. It runs one engine process per core (HC_ENGINES, agent/engines.py), as blackbox_exporter's
Go runtime runs on every core; the machine's other work (the target, wrk, the stub) shares them.
Tasks are put on its stream directly, as the API would. blackbox_exporter runs on loopback with the
bench's own config (tcp_connect and http_2xx modules) and is driven by wrk at the same number of
connections as the agent's concurrency, so both run that many probes at once.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
import uuid

import redis
import requests

from bench import procstat, profile, wrk
from bench.harness import PYTHON, ROOT, STATE, Bench, free_port, say
from bench.results import scenario_result
from bench.stats import ratio
from scripts.localcloud.procs import wait_for

NUMBER = 3
TITLE = "Agent engine vs blackbox_exporter (same target, same concurrency): (a) TCP, (b) HTTP"
TARGET = "(a) ≥ 1.5×, (b) ≥ 1.2× blackbox's probes/s"
BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"
# The agent's HC_CONCURRENCY for this scenario (its default is 512, agent/config.py); wrk holds as many
# probes open at blackbox.
CONCURRENCY = 64
ROUND_S = 4.0
WARM_UP_S = 0.5
ROUNDS = 3
# Stream entries for the first agent round; later rounds take 3× what it managed over a round and its
# warm-up. A round whose backlog ran out inside the counted window is run again with more (agent_round).
FIRST_BACKLOG = 10_000
MAX_BACKLOG = 120_000
CONFIG = """modules:
  tcp_connect:
    prober: tcp
    timeout: 5s
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      method: GET
"""


CORES = os.cpu_count() or 1
# The agent's engine processes (HC_ENGINES): one per core.
ENGINES = CORES
# An engine's share of one core from which a round is bound by the engines' interpreter locks.
ONE_CORE_BOUND = 0.9
# The machine's busy share of its cores from which a round is bound by the cores themselves.
FULL_MACHINE = 0.9


def start_blackbox(bench: Bench) -> tuple[str, int]:
    config = STATE / "blackbox.yml"
    config.write_text(CONFIG)
    port = free_port()
    process = bench.start(
        "blackbox",
        [BLACKBOX, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
    )
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return requests.get(f"{url}/metrics", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    wait_for(up, 20, "blackbox_exporter to listen")
    return url, process.pid


def probe_ok(url: str) -> bool:
    text = requests.get(url, timeout=10).text
    return "probe_success 1" in text


def blackbox_round(probe_url: str, blackbox_pid: int) -> tuple[float, float, float]:
    """One wrk round at blackbox_exporter: (probes per second, blackbox's CPU as a share of one core,
    the whole machine's busy cores), the CPU figures over the whole wrk run."""
    cpu0, busy0 = procstat.cpu_ms([blackbox_pid]), procstat.machine_busy_ms()
    t0 = time.monotonic()
    per_s = wrk.run(probe_url, ROUND_S, CONCURRENCY, threads=2)["per_s"]
    wall_ms = 1000 * (time.monotonic() - t0)
    cpu1, busy1 = procstat.cpu_ms([blackbox_pid]), procstat.machine_busy_ms()
    return per_s, (cpu1 - cpu0) / wall_ms, _busy_cores(busy0, busy1)


def _busy_cores(before: tuple[float, float], after: tuple[float, float]) -> float:
    """Cores the whole machine kept busy between two procstat.machine_busy_ms readings."""
    elapsed = after[1] - before[1]
    return (after[0] - before[0]) / elapsed * CORES if elapsed > 0 else 0.0


def yardstick_round(mode: str, kind: str, port: int) -> dict:
    """bench/engine_floor.py: the bare-asyncio floor or the agent's check code alone, one round."""
    argv = [PYTHON, "-m", "bench.engine_floor", "--mode", mode, "--kind", kind, "--port", str(port)]
    argv += ["--concurrency", str(CONCURRENCY), "--seconds", str(ROUND_S)]
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _backlog(done: list[float]) -> int:
    """Stream entries for the next agent round: 3× what the last rounds managed, within bounds."""
    if not done:
        return FIRST_BACKLOG
    return max(FIRST_BACKLOG, min(MAX_BACKLOG, int(3 * (ROUND_S + WARM_UP_S) * max(done))))


def agent_round(
    r: redis.Redis, stub_url: str, agent: dict, backlog: int, check_type: str, target: str, options: dict
) -> tuple[float, float, float, dict[str, float]]:
    """Fill the agent's stream, count results at the stub over ROUND_S (after a short warm-up),
    then empty the stream and wait for the agent to finish what it holds. Returns (probes per
    second, the agent's processes' CPU over the counted window as a share of one core, the whole
    machine's busy cores over it, and the share of one core each process of `agent["beside"]`
    (name -> pid) used over it).

    The stream must still hold unread entries when the window closes, or the agent ran out of work
    inside it and the rate would be the backlog's, not the agent's: a round whose results by then
    reach the backlog less the agent's concurrency (what it may hold) is run again with 3× the
    backlog (up to MAX_BACKLOG, then it fails)."""
    while True:
        counted = _agent_round_once(r, stub_url, agent, backlog, check_type, target, options)
        if counted is not None:
            return counted
        if backlog >= MAX_BACKLOG:
            raise RuntimeError(f"the agent emptied a backlog of {backlog} tasks within one {ROUND_S:.0f} s round")
        say(f"    the agent ran out of its {backlog} tasks inside the window; again with more")
        backlog = min(MAX_BACKLOG, 3 * backlog)


def _agent_round_once(
    r: redis.Redis, stub_url: str, agent: dict, backlog: int, check_type: str, target: str, options: dict
) -> tuple[float, float, float, dict[str, float]] | None:
    agent_id, pid = agent["agent_id"], agent["pid"]
    stream = f"hc:tasks:{agent_id}"
    deadline_ms = int((time.time() + 120) * 1000)

    def results() -> int:
        return requests.get(f"{stub_url}/_bench/counts", timeout=5).json()["results"]

    before = results()  # the last round's results have all come (its settle loop below)
    pipe = r.pipeline(transaction=False)
    for _ in range(backlog):
        task = {
            "task_id": str(uuid.uuid4()),
            "check_id": str(uuid.uuid4()),
            "agent_id": agent_id,
            "check_type": check_type,
            "target": target,
            "options": options,
            "deadline_ms": deadline_ms,
            "created_at": "",
        }
        pipe.xadd(stream, {"task": json.dumps(task, separators=(",", ":"))})
    pipe.execute()
    time.sleep(WARM_UP_S)  # warm-up: the engine reaches its concurrency (a pace, not a synchronisation)
    beside = agent.get("beside", {})
    n0, t0, cpu0, busy0 = results(), time.monotonic(), procstat.cpu_ms([pid]), procstat.machine_busy_ms()
    beside0 = {name: procstat.cpu_ms([p]) for name, p in beside.items()}
    time.sleep(ROUND_S)
    n1, t1, cpu1, busy1 = results(), time.monotonic(), procstat.cpu_ms([pid]), procstat.machine_busy_ms()
    beside_shares = {name: (procstat.cpu_ms([p]) - beside0[name]) / (1000 * (t1 - t0)) for name, p in beside.items()}
    ran_out = n1 - before >= backlog - CONCURRENCY
    r.xtrim(stream, maxlen=0, approximate=False)
    settle_deadline = time.monotonic() + 30
    last = -1
    while time.monotonic() < settle_deadline:  # until the results stop coming
        now = results()
        if now == last:
            break
        last = now
        time.sleep(0.5)
    if ran_out:
        return None
    return (n1 - n0) / (t1 - t0), (cpu1 - cpu0) / (1000 * (t1 - t0)), _busy_cores(busy0, busy1), beside_shares


def run(bench: Bench) -> dict:
    ports = bench.targets()
    blackbox, blackbox_pid = start_blackbox(bench)
    stub_process, stub = bench.start_ready("stub-api", "bench.stub_api")
    stub_url = f"http://127.0.0.1:{stub['port']}"
    agent = bench.start_agent("engine", api_url=stub_url, HC_CONCURRENCY=str(CONCURRENCY), HC_ENGINES=str(ENGINES))
    agent["pid"] = bench.agent_pid(agent)
    redis_pid = bench.stack_pids()["redis"]
    agent["beside"] = {"the loopback target": bench.cache["targets_pid"], "the stub API": stub_process.pid}
    if redis_pid:
        agent["beside"]["Redis"] = redis_pid
    r = redis.Redis.from_url(bench.env["REDIS_URL"])
    kinds = {
        "tcp": {
            "port": ports["tcp"],
            "probe": f"{blackbox}/probe?module=tcp_connect&target=127.0.0.1:{ports['tcp']}",
            "task": ("tcp", "127.0.0.1", {"port": ports["tcp"]}),
        },
        "http": {
            "port": ports["http"],
            "probe": f"{blackbox}/probe?module=http_2xx&target=http://127.0.0.1:{ports['http']}/",
            "task": ("http", f"http://127.0.0.1:{ports['http']}/", {}),
        },
    }
    figures: dict[str, dict[str, list[float]]] = {k: {"agent": [], "blackbox": []} for k in kinds}
    prof = {}
    busy: dict[str, list[float]] = {k: [] for k in kinds}  # the agent's share of one core, per round
    # Per round: the agent's rounds' busy cores machine-wide; blackbox's own share of one core, and
    # the machine's busy cores, over its wrk rounds.
    machine: dict[str, dict[str, list[float]]] = {k: {"agent": [], "blackbox": [], "blackbox_own": []} for k in kinds}
    below: dict[str, dict[str, dict]] = {k: {} for k in kinds}  # kind -> floor/check -> one round
    beside_cpu: dict[str, dict[str, list[float]]] = {k: {} for k in kinds}  # kind -> process -> share, per round
    try:
        for kind, spec in kinds.items():
            if not probe_ok(spec["probe"]):
                raise RuntimeError(f"blackbox_exporter's {kind} probe of the bench target failed")
            done = figures[kind]["agent"]
            for i in range(ROUNDS):
                order = ("agent", "blackbox") if i % 2 == 0 else ("blackbox", "agent")
                for side in order:
                    if side == "blackbox":
                        per_s, own, cores = blackbox_round(spec["probe"], blackbox_pid)
                        figures[kind]["blackbox"].append(per_s)
                        machine[kind]["blackbox_own"].append(own)
                        machine[kind]["blackbox"].append(cores)
                    else:
                        per_s, core, cores, shares_beside = agent_round(
                            r, stub_url, agent, _backlog(done), *spec["task"]
                        )
                        for name, share in shares_beside.items():
                            beside_cpu[kind].setdefault(name, []).append(share)
                        done.append(per_s)
                        busy[kind].append(core)
                        machine[kind]["agent"].append(cores)
            # Below the agent, one round each: how far the check code alone, and bare asyncio, get.
            for mode in ("floor", "check"):
                below[kind][mode] = yardstick_round(mode, kind, spec["port"])
            # One more agent round under py-spy, not counted: the sampler costs CPU the figures would pay.
            recorder = profile.start_record(bench.agent_pid(agent), ROUND_S, f"s3-agent-{kind}")
            agent_round(r, stub_url, agent, _backlog(done), *spec["task"])  # (its figures are not counted)
            prof[kind] = profile.finish_record(recorder)
            say(f"    {kind}: agent {figures[kind]['agent']} blackbox {figures[kind]['blackbox']} probes/s")
        counts = requests.get(f"{stub_url}/_bench/counts", timeout=5).json()
    finally:
        bench.stop_agent(agent)
        r.delete(f"hc:tasks:{agent['agent_id']}")
    medians = {k: {side: statistics.median(v) for side, v in sides.items()} for k, sides in figures.items()}
    ratios = {k: ratio(m["agent"], m["blackbox"]) for k, m in medians.items()}
    metrics = {}
    for kind, m in medians.items():
        metrics[f"{kind}_agent_per_s"] = round(m["agent"], 1)
        metrics[f"{kind}_blackbox_per_s"] = round(m["blackbox"], 1)
        metrics[f"{kind}_ratio"] = ratios[kind]
    met = (ratios["tcp"] or 0) >= 1.5 and (ratios["http"] or 0) >= 1.2
    figure = (
        f"(a) TCP {ratios['tcp']}× ({medians['tcp']['agent']:.0f} vs {medians['tcp']['blackbox']:.0f} probes/s), "
        f"(b) HTTP {ratios['http']}× ({medians['http']['agent']:.0f} vs {medians['http']['blackbox']:.0f} probes/s)"
    )
    notes = [
        f"median of {ROUNDS} interleaved {ROUND_S:.0f} s rounds each, concurrency {CONCURRENCY}, the agent in "
        f"{ENGINES} engine process{'es' if ENGINES > 1 else ''} (HC_ENGINES={ENGINES}: one per core)"
    ]
    batch = counts["results"] / max(1, counts["requests"])
    metrics["results_per_request"] = round(batch, 1)
    notes.append(
        f"the agent's results came {batch:.1f} to a request ({counts['results']} results and {counts['starts']} "
        f"starts in {counts['requests']} batch requests, all rounds)"
    )
    for kind, shares in busy.items():
        if shares:
            metrics[f"{kind}_agent_core_share"] = round(statistics.median(shares), 2)
            notes.append(
                f"{kind}: the agent's processes used {100 * statistics.median(shares):.0f} % of one core over the "
                f"counted rounds ({1000 * statistics.median(shares) / max(1.0, medians[kind]['agent']):.2f} "
                "CPU-ms per probe)"
            )
    for kind, sides in machine.items():
        if not sides["blackbox"] or not sides["agent"]:
            continue
        own = statistics.median(sides["blackbox_own"])
        per_probe = 1000 * own / max(1.0, medians[kind]["blackbox"])
        metrics[f"{kind}_blackbox_core_share"] = round(own, 2)
        metrics[f"{kind}_machine_cores_agent"] = round(statistics.median(sides["agent"]), 2)
        metrics[f"{kind}_machine_cores_blackbox"] = round(statistics.median(sides["blackbox"]), 2)
        agent_core = statistics.median(busy[kind])
        agent_per_probe = 1000 * agent_core / max(1.0, medians[kind]["agent"])
        per_cpu = ratio(per_probe, agent_per_probe)  # probes per CPU-ms, the agent's over blackbox's
        metrics[f"{kind}_per_cpu_ratio"] = per_cpu
        per_cpu_text = (
            f"per CPU-ms the agent does {per_cpu}× blackbox's probes ({agent_per_probe:.2f} against "
            f"{per_probe:.2f} CPU-ms per probe)"
        )
        if agent_core >= ONE_CORE_BOUND * ENGINES:
            notes.append(
                f"**{kind}: the agent is bound by its engines' interpreters: its {ENGINES} engine(s) kept "
                f"{100 * agent_core:.0f} % of a core busy while blackbox_exporter spread over {own:.2f} cores; "
                f"{per_cpu_text}**"
            )
        else:
            notes.append(f"{kind}: {per_cpu_text}")
        split = ", ".join(f"{name} {statistics.median(v):.2f}" for name, v in beside_cpu[kind].items())
        busy_agent = statistics.median(sides["agent"])
        if busy_agent >= FULL_MACHINE * CORES:
            notes.append(
                f"**{kind}: the machine's {CORES} cores were full in the agent's rounds ({busy_agent:.2f} busy: its "
                f"engines {agent_core:.2f}, {split}, the kernel and the rest the remainder)**"
            )
        else:
            notes.append(f"{kind}: beside the agent's engines ({agent_core:.2f} cores) in its rounds: {split}")
        notes.append(
            f"{kind}: blackbox_exporter used {100 * own:.0f} % of one core ({per_probe:.2f} CPU-ms per probe)"
            f" and the machine {statistics.median(sides['blackbox']):.2f} of its {CORES} cores "
            f"in its rounds (wrk included); the machine {statistics.median(sides['agent']):.2f} cores in the agent's"
        )
    for kind, rounds in below.items():
        if not rounds:
            continue
        floor, check, bb = rounds["floor"], rounds["check"], medians[kind]["blackbox"]
        metrics[f"{kind}_floor_per_s"] = round(floor["per_s"], 1)
        metrics[f"{kind}_check_alone_per_s"] = round(check["per_s"], 1)
        notes.append(
            f"{kind} below the agent (one {ROUND_S:.0f} s round each, one process, one loop): bare asyncio "
            f"{floor['per_s']:.0f} probes/s ({ratio(floor['per_s'], bb)}× blackbox, {floor['cpu_ms']:.2f} CPU-ms "
            f"each), the check code alone {check['per_s']:.0f}/s ({ratio(check['per_s'], bb)}×, "
            f"{check['cpu_ms']:.2f} CPU-ms), the whole agent {medians[kind]['agent']:.0f}/s: the check costs "
            f"{check['cpu_ms'] - floor['cpu_ms']:.2f} CPU-ms over the floor, and queue, start and delivery "
            "the rest"
        )
    for kind in kinds:
        threshold = 1.5 if kind == "tcp" else 1.2
        if (ratios[kind] or 0) < threshold and kind in prof:
            notes.append(profile.note(f"agent ({kind})", prof[kind]))
    return scenario_result(NUMBER, TITLE, figure, TARGET, met, "; ".join(notes), metrics)
