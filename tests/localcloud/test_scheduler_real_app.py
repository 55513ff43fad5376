"""scripts/localcloud/scheduler.py drives the real app.py's sweeper, on the test stage, over real PostgreSQL
and Redis.

tests/integration/test_scheduler.py proves the scheduler's mechanics on a fixture app. This one
closes the loop with the real thing: the scheduler reads `sweep` and its `rate(1 minute)` from
app.py itself (no second list), runs it at that rate scaled down by `--time-scale` (the short rate
of the test stage), and the sweep's effects show up in the database:
- an agent whose heartbeat is stale is marked offline;
- overdue tasks fail (`timeout` / `agent_offline`) and their check completes.
Every wait is a bounded poll on an observable condition, never a sleep used as synchronisation.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import statistics
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest

from tests.integration.agent_harness import wait_until

ROOT = Path(__file__).resolve().parents[2]
SCHEDULER = [sys.executable, "-m", "scripts.scheduler"]
TIME_SCALE = 60.0  # rate(1 minute) -> one sweep per second
PERIOD_S = 60.0 / TIME_SCALE
RUN_RE = re.compile(r"^(\S+Z) scheduler run sweep rate\(1 minute\) (ok|error) ")


def _wait_for(cond, timeout: float, what: str):
    return wait_until(cond, what, timeout)  # the shared bounded poll


def _runs(log: Path) -> list[tuple[dt.datetime, str]]:
    out = []
    for line in log.read_text().splitlines() if log.exists() else []:
        m = RUN_RE.match(line)
        if m:
            out.append((dt.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ"), m.group(2)))
    return out


@pytest.fixture
def scheduler(pg_url, redis_url, settings, tmp_path):
    """Start `python -m scripts.scheduler --stage test --time-scale 60` on the test servers; yields
    (process, log path). Stopped with SIGTERM (it must exit 0) at the end."""
    log = tmp_path / "scheduler.log"
    env = dict(os.environ, DATABASE_URL=pg_url, REDIS_URL=redis_url, PYTHONUNBUFFERED="1")
    for key in ("HC_SECRET_NAME", "AWS_ENDPOINT_URL", "SCHEDULER_TIME_SCALE", "CHALICE_STAGE"):
        env.pop(key, None)
    started = {}

    def start():
        with open(log, "w") as logf:
            started["proc"] = subprocess.Popen(
                [*SCHEDULER, "--project-dir", str(ROOT), "--stage", "test", "--time-scale", str(TIME_SCALE)],
                cwd=ROOT,
                env=env,
                stdout=logf,
                stderr=subprocess.STDOUT,
            )
        return started["proc"], log

    yield start
    proc = started.get("proc")
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            raise AssertionError("scheduler did not exit within 20 s of SIGTERM") from None
        assert rc == 0, log.read_text()[-3000:]


def test_scheduler_runs_the_real_sweep_at_its_declared_rate(api, db, scheduler):
    # arrange: two agents and a check with one task each; one agent stops heartbeating and both
    # tasks are past their deadline. Nothing sweeps until the scheduler does.
    alive = api.register("fra-sched", "Frankfurt")
    gone = api.register("sin-sched", "Singapore")
    check = api.create_check(checks=["http"]).body
    db.execute("UPDATE agents SET last_heartbeat = now() - interval '5 minutes' WHERE id = %s", (gone["agent_id"],))
    db.execute("UPDATE check_tasks SET deadline_at = now() - interval '1 second'")

    def statuses():
        return {r["id"]: r["status"] for r in db.execute("SELECT id::text, status FROM agents").fetchall()}

    assert statuses()[gone["agent_id"]] == "online"
    assert {r["status"] for r in db.execute("SELECT status FROM check_tasks").fetchall()} == {"pending"}

    t0 = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    proc, log = scheduler()

    # the schedule comes from app.py: the start-up line names the real handler and its rate
    _wait_for(
        lambda: "schedule sweep rate(1 minute) -> app.sweep" in log.read_text() or proc.poll() is not None,
        60,
        "the scheduler to load app.py",
    )
    assert proc.poll() is None, log.read_text()[-3000:]
    assert f"every {PERIOD_S:g}s" in log.read_text()

    # the first sweep marks the silent agent offline and fails the overdue tasks
    _wait_for(lambda: statuses()[gone["agent_id"]] == "offline", 30, "the sweep to mark the agent offline")
    _wait_for(
        lambda: {r["status"] for r in db.execute("SELECT status FROM check_tasks").fetchall()} == {"failed"},
        30,
        "the sweep to fail the overdue tasks",
    )
    kinds = {
        r["agent_id"]: r["error"]["kind"]
        for r in db.execute("SELECT agent_id::text, error FROM check_tasks").fetchall()
    }
    assert kinds == {alive["agent_id"]: "timeout", gone["agent_id"]: "agent_offline"}
    assert statuses()[alive["agent_id"]] == "online"
    assert api.get(f"/api/checks/{check['check_id']}").body["status"] == "completed"

    # it keeps sweeping: an agent that goes silent later is caught by a later run
    db.execute("UPDATE agents SET last_heartbeat = now() - interval '5 minutes' WHERE id = %s", (alive["agent_id"],))
    _wait_for(lambda: statuses()[alive["agent_id"]] == "offline", 30, "a later sweep to mark the second agent offline")

    # ... at the declared rate, scaled: one run per PERIOD_S, each logged with its outcome
    runs = _wait_for(lambda: (lambda r: r if len(r) >= 5 else None)(_runs(log)), 30, "5 logged sweep runs")
    assert all(outcome == "ok" for _, outcome in runs), log.read_text()[-3000:]
    # EventBridge waits one period before the first run
    assert (runs[0][0] - t0).total_seconds() >= PERIOD_S * 0.8, (t0, runs[0])
    gaps = [(b - a).total_seconds() for (a, _), (b, _) in pairwise(runs)]
    assert abs(statistics.median(gaps) - PERIOD_S) < 0.25 * PERIOD_S, gaps
    assert "Traceback" not in log.read_text()
