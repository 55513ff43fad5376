"""Agents SIGKILLed again and again (issue 16, suite 1).

Three agents take 200 checks (each on the one agent the API chooses, `limit: 1`) against a target that
takes a moment to answer, with the sweep running. After every batch of checks a randomly chosen agent is
SIGKILLed while it has checks running, and started again on its state folder. The test keeps a bounded
number of tasks open at once: a load the local API keeps up with even on a busy machine, so that a task
can only fail if a kill loses it.

- Every check is terminal by its deadline plus one sweep.
- No task completes twice: one result per task, and each terminal task counted once by the API.
- No result is lost for a task whose agent came back (every killed agent does): each task gets its
  agent's own result, on time, or kept as `late` when the agent was down past the task's deadline.
"""

from __future__ import annotations

import os
import random
import re
import signal
from datetime import UTC, datetime, timedelta

import requests

from tests.integration.agent_harness import Db, wait_until
from tests.integration.fault_harness import (
    ApiProcess,
    DelayedHttpServer,
    Fleet,
    Scheduler,
    api_env,
    create,
    fault_procs,  # noqa: F401 - a fixture
    metrics_text,
)

AGENTS = 3
CHECKS = 200
KILLS = 8  # one after each batch of CHECKS / KILLS checks
TARGET_DELAY_S = 0.3  # each check takes this long, so a kill finds checks running
HTTP_TIMEOUT_S = 10
MAX_OPEN = 6 * AGENTS
SWEEP_TIME_SCALE = 20  # the sweep every 3 s instead of every minute
SEED = int(os.environ.get("HC_TEST_SEED", "16"))


def _running(db: Db, agent_id: str) -> int:
    return db.one("SELECT count(*) AS n FROM check_tasks WHERE agent_id = %s AND status = 'in_progress'", agent_id)["n"]


def _open_tasks(db: Db) -> int:
    return db.one("SELECT count(*) AS n FROM check_tasks WHERE status IN ('pending', 'in_progress')")["n"]


def _tasks(db: Db) -> list[dict]:
    return db.all(
        """SELECT t.id::text, t.check_id::text, t.status, t.error, t.deadline_at, t.completed_at, t.attempts,
                  r.success, r.late, r.error AS result_error,
                  (SELECT count(*) FROM check_results x WHERE x.task_id = t.id) AS results
           FROM check_tasks t LEFT JOIN check_results r ON r.task_id = t.id"""
    )


def _terminal_counted(text: str) -> int:
    """The sum of hostchecker_tasks_total: each task is counted once, when it becomes terminal."""
    return sum(int(float(v)) for v in re.findall(r"^hostchecker_tasks_total\{[^}]*\} (\S+)$", text, re.M))


def test_agents_killed_every_few_seconds_lose_and_duplicate_nothing(
    pg_url, redis_url, clean_state, tmp_path, fault_procs
):
    rng = random.Random(SEED)
    db = Db(pg_url)
    env = api_env(pg_url, redis_url, HC_CHECKS_PER_HOUR=str(CHECKS * 2), HC_REQUESTS_PER_MINUTE="100000")
    api = ApiProcess(env, tmp_path / "api.log")
    fault_procs.append(api.start())
    scheduler = Scheduler(env, tmp_path / "scheduler.log", SWEEP_TIME_SCALE)
    fault_procs.append(scheduler.start())
    target = DelayedHttpServer(TARGET_DELAY_S)
    fault_procs.append(target)
    fleet = Fleet(tmp_path, api.url, redis_url, fault_procs, HC_HEARTBEAT_INTERVAL_S="1")
    fleet.start(AGENTS)
    ids = fleet.wait_online(db)

    body = {"target": target.url, "checks": ["http"], "options": {"http": {"timeout": HTTP_TIMEOUT_S}}, "limit": 1}
    killed: list[str] = []
    for _ in range(KILLS):
        victim = rng.choice(fleet.agents)
        for n in range(CHECKS // KILLS):
            wait_until(lambda: _open_tasks(db) < MAX_OPEN, "the open tasks to drain", diagnostics=fleet.tails)
            last = n == CHECKS // KILLS - 1  # the batch's last check is the victim's: it has one running
            assert len(create(api.url, {**body, "agents": [ids[victim.name]]} if last else body)["tasks"]) == 1
        wait_until(
            lambda v=victim: _running(db, ids[v.name]) > 0,
            f"{victim.name} to be running checks",
            diagnostics=fleet.tails,
        )
        victim.signal(signal.SIGKILL)
        assert victim.wait() == -signal.SIGKILL
        victim.start()
        killed.append(victim.name)
    assert len(killed) == KILLS

    # Terminal by the last deadline plus one sweep (and some room for a loaded machine to run it).
    latest = db.one("SELECT max(deadline_at) AS d FROM check_tasks")["d"]
    budget = (latest - datetime.now(UTC)).total_seconds() + scheduler.period_s + 30

    wait_until(
        lambda: _open_tasks(db) == 0, "every task to be terminal", timeout=max(budget, 1), diagnostics=fleet.tails
    )

    # No result lost: every killed agent came back, so every task gets its agent's own result, on time
    # or (a task whose agent was down past its deadline) kept as late after the sweep failed it.
    wait_until(
        lambda: all(t["results"] == 1 for t in _tasks(db)), "every task's result to be stored", diagnostics=fleet.tails
    )
    tasks = _tasks(db)
    assert len(tasks) == CHECKS
    slack = timedelta(seconds=scheduler.period_s + 5)  # the sweep after the deadline, and its own run
    assert [t for t in tasks if t["completed_at"] > t["deadline_at"] + slack] == []
    on_time = [t for t in tasks if t["status"] == "completed" and t["late"] is False]
    late = [t for t in tasks if t["status"] == "failed" and t["late"] is True]
    odd = [(t["id"], t["status"], t["late"], t["success"], t["error"]) for t in tasks if t not in on_time + late]
    assert odd == []
    failed = [(t["id"], t["result_error"]) for t in on_time if not t["success"]]
    print(
        f"{CHECKS} checks, {KILLS} kills: {len(on_time)} results on time ({len(failed)} of them failures: "
        f"{failed[:3]}), {len(late)} late (the agent was down past the deadline)"
    )
    assert max(t["attempts"] for t in tasks) >= 2  # the kills did land on running checks
    assert _terminal_counted(metrics_text(api.url)) == CHECKS  # each completed once
    assert db.all("SELECT DISTINCT status FROM checks") == [{"status": "completed"}]
    one = requests.get(f"{api.url}/api/checks/{on_time[0]['check_id']}", timeout=15).json()
    assert one["status"] == "completed" and one["summary"]["http"]["ok"] == 1
    assert all(agent.running() for agent in fleet.agents)
