"""scripts/localcloud/scheduler.py: the local stand-in for EventBridge schedules.

A fixture Chalice project declares schedules; the scheduler must find them in the app itself,
invoke them at their declared rate (scaled by --time-scale) with EventBridge-shaped events, log
each run, and stop cleanly on SIGTERM. Invocations are counted through a marker file the handler
writes; every wait is a bounded wait on a condition.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import textwrap
from itertools import pairwise
from pathlib import Path

import pytest

from scripts.localcloud import scheduler as sched_mod
from tests.integration.agent_harness import wait_until

ROOT = Path(__file__).resolve().parents[2]
SCHEDULER = [sys.executable, "-m", "scripts.scheduler"]


FIXTURE_APP = textwrap.dedent("""
    import json, os, time
    from chalice import Chalice, Rate

    app = Chalice(app_name="fixture")

    def _mark(name, event):
        with open(os.environ["MARKER_FILE"], "a") as f:
            f.write(json.dumps({"name": name, "t": time.monotonic(), "cls": type(event).__name__,
                                "event": event.to_dict(), "detail_type": event.detail_type,
                                "resources": event.resources}) + "\\n")

    @app.schedule(Rate(1, unit=Rate.MINUTES))
    def sweeper(event):
        _mark("sweeper", event)

    @app.schedule("rate(2 minutes)", name="slow")
    def other(event):
        _mark("slow", event)
        raise RuntimeError("boom from slow")
""")


def _wait_for(cond, timeout, what):
    return wait_until(cond, what, timeout)  # the shared bounded poll


def _marks(path: Path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture()
def project(tmp_path):
    proj = tmp_path / "proj"
    (proj / ".chalice").mkdir(parents=True)
    (proj / "app.py").write_text(FIXTURE_APP)
    marker = tmp_path / "marker.jsonl"
    (proj / ".chalice" / "config.json").write_text(
        json.dumps(
            {
                "version": "2.0",
                "app_name": "fixture",
                "stages": {"test": {"environment_variables": {"MARKER_FILE": str(marker)}}},
            }
        )
    )
    return proj, marker


def _env():
    env = dict(os.environ)
    env.pop("MARKER_FILE", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_discovers_schedules_from_the_app_object():
    from chalice import Chalice, Rate

    app = Chalice(app_name="t")

    @app.schedule(Rate(5, unit=Rate.MINUTES))
    def every5(event):
        return event.detail_type

    @app.schedule("rate(1 hour)", name="hourly")
    def h(event):
        return None

    @app.schedule("cron(0 12 * * ? *)")
    def noon(event):
        return None

    found = {s.name: s for s in sched_mod.discover(app)}
    assert set(found) == {"every5", "hourly", "noon"}
    assert found["every5"].period_s == 300 and found["every5"].expression == "rate(5 minutes)"
    assert found["hourly"].period_s == 3600
    assert found["noon"].period_s is None
    # the handler is chalice's wrapper: it builds a CloudWatchEvent from the dict
    ev = sched_mod.make_event("arn:aws:events:us-east-1:000000000000:rule/t-local-every5")
    assert found["every5"].handler(ev, None) == "Scheduled Event"


@pytest.mark.parametrize(
    "expr,secs", [("rate(1 minute)", 60), ("rate(3 minutes)", 180), ("rate(2 hours)", 7200), ("rate(1 day)", 86400)]
)
def test_rate_expressions(expr, secs):
    assert sched_mod.rate_seconds(expr) == secs


def test_invalid_rate_is_rejected():
    with pytest.raises(ValueError):
        sched_mod.rate_seconds("rate(0 minutes)")
    with pytest.raises(ValueError):
        sched_mod.rate_seconds("every minute")


def test_list_reads_the_fixture_app(project):
    proj, _ = project
    r = subprocess.run(
        [*SCHEDULER, "--project-dir", str(proj), "--stage", "test", "--list"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    assert r.returncode == 0, r.stderr
    rows = {line.split("\t")[0]: line.split("\t") for line in r.stdout.splitlines()}
    assert rows["sweeper"][1] == "rate(1 minute)" and float(rows["sweeper"][2]) == 60
    assert rows["slow"][1] == "rate(2 minutes)" and rows["slow"][3] == "app.other"


def test_invokes_at_declared_rate_scaled_and_stops_on_sigterm(project, tmp_path):
    proj, marker = project
    scale = 120.0  # rate(1 minute) -> every 0.5 s, rate(2 minutes) -> every 1 s
    log = tmp_path / "scheduler.log"
    with open(log, "w") as logf:
        proc = subprocess.Popen(
            [*SCHEDULER, "--project-dir", str(proj), "--stage", "test", "--time-scale", str(scale)],
            cwd=ROOT,
            stdout=logf,
            stderr=subprocess.STDOUT,
            env=_env(),
        )
    try:
        _wait_for(lambda: len([m for m in _marks(marker) if m["name"] == "sweeper"]) >= 6, 30, "6 sweeper runs")
        _wait_for(lambda: len([m for m in _marks(marker) if m["name"] == "slow"]) >= 2, 30, "2 slow runs")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            raise AssertionError("scheduler did not exit within 20 s of SIGTERM") from None
    out = log.read_text()
    assert rc == 0, out
    assert "received SIGTERM" in out and "stopped after" in out
    assert "Traceback" not in out

    marks = _marks(marker)
    sweeps = [m for m in marks if m["name"] == "sweeper"]
    slows = [m for m in marks if m["name"] == "slow"]
    # declared rate, scaled: 60 s / 120 = 0.5 s between sweeper runs, 1 s between slow runs
    gaps = [b["t"] - a["t"] for a, b in pairwise(sweeps)]
    assert abs(statistics.median(gaps) - 0.5) < 0.1, gaps
    slow_gaps = [b["t"] - a["t"] for a, b in pairwise(slows)]
    assert abs(statistics.median(slow_gaps) - 1.0) < 0.15, slow_gaps

    # the event is EventBridge-shaped and reached the function as chalice's CloudWatchEvent
    ev = sweeps[0]["event"]
    assert sweeps[0]["cls"] == "CloudWatchEvent"
    assert ev["detail-type"] == "Scheduled Event" and ev["source"] == "aws.events"
    assert ev["version"] == "0" and ev["detail"] == {} and ev["id"]
    assert ev["account"] and ev["region"] and ev["time"].endswith("Z")
    assert ev["resources"] == ["arn:aws:events:us-east-1:000000000000:rule/fixture-test-sweeper"]
    assert len({m["event"]["id"] for m in sweeps}) == len(sweeps)

    # one log line per run with its outcome and duration; a failing handler does not stop it
    run_lines = [line for line in out.splitlines() if " scheduler run " in line]
    assert any(" run sweeper rate(1 minute) ok " in line and line.rstrip().endswith("ms") for line in run_lines)
    assert any(
        " run slow rate(2 minutes) error " in line and "RuntimeError: boom from slow" in line for line in run_lines
    )
    assert len(run_lines) >= len(sweeps) + len(slows) - 1


def test_once_runs_each_schedule_and_reports_failure(project):
    proj, marker = project
    r = subprocess.run(
        [*SCHEDULER, "--project-dir", str(proj), "--stage", "test", "--once"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    assert r.returncode == 1  # 'slow' raises
    assert {m["name"] for m in _marks(marker)} == {"sweeper", "slow"}
    r = subprocess.run(
        [*SCHEDULER, "--project-dir", str(proj), "--stage", "test", "--once", "--only", "sweeper"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_missing_app_is_one_clear_line(tmp_path):
    r = subprocess.run(
        [*SCHEDULER, "--project-dir", str(tmp_path)], capture_output=True, text=True, timeout=60, env=_env()
    )
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "no app.py" in r.stderr
    assert "Traceback" not in r.stderr


def test_real_app_declares_the_sweeper_schedule():
    r = subprocess.run(
        [*SCHEDULER, "--project-dir", str(ROOT), "--list"], capture_output=True, text=True, timeout=120, env=_env()
    )
    assert r.returncode == 0, r.stderr
    rows = [line.split("\t") for line in r.stdout.splitlines() if line.strip()]
    assert any(row[1] == "rate(1 minute)" for row in rows), r.stdout
