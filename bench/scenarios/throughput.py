"""Scenario 2: sustained throughput for 60 s through the whole local stack (wrk POSTs TCP checks to
two host-namespace agents against a loopback port), checked against PostgreSQL for lost and
duplicated tasks, with the CPU per task of the API, the agents and PostgreSQL from /proc, and
py-spy's top frames of the API and an agent while the load runs."""

from __future__ import annotations

import json
import time
from collections import Counter

from bench import procstat, profile, wrk
from bench.harness import Bench, say, wait_until
from bench.results import scenario_result

NUMBER = 2
TITLE = "Sustained throughput for 60 s through the whole local stack"
TARGET = "≥ 1,000 tasks/s, ≤ 2 CPU-ms/task, 0 lost, 0 duplicated"
LOAD_S = 60
DRAIN_S = 90  # the longest wait for the backlog once the load stops
CONNECTIONS = 16
AGENTS = 2
PROFILE_S = 5


def task_counts(bench: Bench, agent_ids: list[str], since: float) -> dict:
    with bench.db() as db:
        row = db.execute(
            """SELECT count(DISTINCT t.check_id), count(*),
                      count(*) FILTER (WHERE t.status = 'completed'),
                      count(*) FILTER (WHERE t.status = 'failed'),
                      count(*) FILTER (WHERE t.status IN ('pending', 'in_progress')),
                      count(r.task_id), count(*) FILTER (WHERE r.task_id IS NULL),
                      extract(epoch FROM max(r.created_at)), extract(epoch FROM min(t.created_at))
                 FROM check_tasks t LEFT JOIN check_results r ON r.task_id = t.id
                WHERE t.agent_id = ANY(%s::uuid[]) AND t.created_at >= to_timestamp(%s)""",
            (agent_ids, since),
        ).fetchone()
        duplicates = db.execute(
            """SELECT count(*) FROM (SELECT task_id FROM check_results WHERE agent_id = ANY(%s::uuid[])
                 AND created_at >= to_timestamp(%s) GROUP BY task_id HAVING count(*) > 1) d""",
            (agent_ids, since),
        ).fetchone()[0]
        window = db.execute(
            """SELECT count(*) FROM check_results WHERE agent_id = ANY(%s::uuid[])
                AND created_at BETWEEN to_timestamp(%s) AND to_timestamp(%s)""",
            (agent_ids, since, since + LOAD_S),
        ).fetchone()[0]
    keys = ("checks", "tasks", "completed", "failed", "open", "results", "without_result", "last_result", "first")
    counts = dict(zip(keys, row, strict=True))
    counts.update(duplicates=duplicates, results_in_window=window)
    return counts


def agent_outcomes(agents: list[dict]) -> tuple[int, Counter]:
    """(tasks the agents handled more than once, count of each outcome) from their JSON logs'
    `task done` lines: a task id seen twice was run or delivered twice."""
    seen, outcomes = Counter(), Counter()
    for agent in agents:
        for line in agent["process"].log.read_text(errors="replace").splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if doc.get("msg") == "task done":
                seen[doc.get("task")] += 1
                outcomes[doc.get("outcome")] += 1
    return sum(n - 1 for n in seen.values() if n > 1), outcomes


def run(bench: Bench) -> dict:
    ports = bench.targets()
    agents = [bench.start_agent(f"load{i}") for i in range(AGENTS)]
    ids = [a["agent_id"] for a in agents]
    body = json.dumps(
        {"target": "127.0.0.1", "checks": ["tcp"], "agents": ids, "options": {"tcp": {"port": ports["tcp"]}}}
    )
    pids = bench.stack_pids()
    roles = {
        "api": [pids["api"]],
        "agents": [bench.agent_pid(a) for a in agents],
        "postgres": [pids["postgres"]],
        "redis": [pids["redis"]],
    }
    try:
        since = time.time() - 0.5
        cpu_before = {role: procstat.cpu_ms([p for p in ps if p]) for role, ps in roles.items()}
        refused_before = bench.counter("checks_refused_total", ("agents_busy",))
        load = wrk.start(f"{bench.api}/api/checks", LOAD_S, CONNECTIONS, "POST", body)
        time.sleep(LOAD_S / 3)  # into the steady state, then profile while the load goes on
        api_prof = profile.start_record(pids["api"], PROFILE_S, "s2-api")
        agent_prof = profile.start_record(bench.agent_pid(agents[0]), PROFILE_S, "s2-agent")
        prof = {"API": profile.finish_record(api_prof), "agent": profile.finish_record(agent_prof)}
        posted = wrk.finish(load, timeout=LOAD_S + 60)
        load_end = time.time()
        say(f"    load done: {posted['requests']} POSTs, draining")
        drained = wait_until(lambda: task_counts(bench, ids, since)["open"] == 0, DRAIN_S, interval=0.5)
        drain_s = time.time() - load_end
        cpu_after = {role: procstat.cpu_ms([p for p in ps if p]) for role, ps in roles.items()}
        counts = task_counts(bench, ids, since)
        refused = bench.counter("checks_refused_total", ("agents_busy",)) - refused_before
    finally:
        for agent in agents:
            bench.stop_agent(agent)
    done = counts["completed"] + counts["failed"]
    span = (float(counts["last_result"]) - float(counts["first"])) if counts["last_result"] else 0
    rate = done / span if span else 0.0
    cpu = {role: cpu_after[role] - cpu_before[role] for role in roles}
    per_task = {role: (value / done if done else 0.0) for role, value in cpu.items()}
    core_ms = per_task["api"] + per_task["agents"] + per_task["postgres"]
    # Lost: a task that never reached an end (still open after the drain), or a check wrk saw accepted
    # (202) that PostgreSQL does not have. wrk does not count requests cut off at its end, so the database
    # may hold a few more checks than it counted, never fewer. A task that failed (its deadline passed
    # before an agent ran it, say) is not lost: it is counted as failed, and its cause is in the notes.
    # Duplicated: a result stored twice, or a task an agent handled twice.
    accepted = posted["requests"] - posted["status"]
    lost = counts["open"] + max(0, accepted - counts["checks"])
    handled_twice, outcomes = agent_outcomes(agents)
    dup = counts["duplicates"] + handled_twice
    completed_rate = counts["completed"] / span if span else 0.0
    metrics = {
        "tasks_per_s": round(completed_rate, 1),
        "terminal_tasks_per_s": round(rate, 1),
        "tasks_per_s_in_window": round(counts["results_in_window"] / LOAD_S, 1),
        "cpu_ms_per_task": round(core_ms, 2),
        "api_cpu_ms_per_task": round(per_task["api"], 2),
        "agent_cpu_ms_per_task": round(per_task["agents"], 2),
        "postgres_cpu_ms_per_task": round(per_task["postgres"], 2),
        "redis_cpu_ms_per_task": round(per_task["redis"], 2),
        "tasks": counts["tasks"],
        "checks_accepted": accepted,
        "lost": lost,
        "still_open": counts["open"],
        "duplicated": dup,
        "failed": counts["failed"],
        "posts_per_s": round(posted["per_s"], 1),
        "post_p50_ms": posted["p50_us"] / 1000,
        "post_p95_ms": posted["p95_us"] / 1000,
        "post_socket_errors": posted["errors"],
        "post_non_2xx": posted["status"],
        "posts_refused_agents_busy": refused,
        "drain_s": round(drain_s, 1),
    }
    met = completed_rate >= 1000 and core_ms <= 2 and lost == 0 and dup == 0 and counts["failed"] == 0
    figure = (
        f"{completed_rate:.0f} tasks/s completed ({counts['completed']} of {counts['tasks']}; "
        f"{counts['failed']} failed), {core_ms:.1f} CPU-ms/task "
        f"(API {per_task['api']:.1f}, agents {per_task['agents']:.1f}, PostgreSQL {per_task['postgres']:.1f}); "
        f"lost {lost}, duplicated {dup}"
    )
    notes = [
        f"POST p50 {metrics['post_p50_ms']:.0f} / p95 {metrics['post_p95_ms']:.0f} ms at {CONNECTIONS} connections, "
        f"{posted['errors']} socket errors, {posted['status']} non-2xx "
        f"({refused} of them 503 agents_busy: the agents were over 5 s behind, nothing stored)",
        f"drain {drain_s:.1f} s" + ("" if drained else f" (gave up after {DRAIN_S} s, {counts['open']} open)"),
        f"Redis {per_task['redis']:.2f} CPU-ms/task",
        "agents' outcomes: " + ", ".join(f"{k} {v}" for k, v in outcomes.most_common()),
    ]
    if not met:
        notes += [profile.note(label, p) for label, p in prof.items()]
    return scenario_result(NUMBER, TITLE, figure, TARGET, met, "; ".join(notes), metrics)
