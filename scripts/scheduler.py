"""The local stand-in for EventBridge schedules -> Lambda (scripts/localcloud/scheduler.py)."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from scripts.localcloud.scheduler import (
    DEFAULT_ACCOUNT,
    DEFAULT_REGION,
    ROOT,
    Scheduler,
    SchedulerError,
    discover,
    load_app,
    log_line,
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m scripts.scheduler",
        description="Local stand-in for EventBridge: invokes every @app.schedule handler of the Chalice "
        "app at its declared rate with an EventBridge-shaped Scheduled Event.",
    )
    p.add_argument("--project-dir", default=str(ROOT), help="Chalice project (holds app.py); default: repo root")
    p.add_argument(
        "--stage",
        default=os.environ.get("CHALICE_STAGE", "local"),
        help="Chalice stage whose environment variables are applied (default: local)",
    )
    p.add_argument(
        "--time-scale",
        type=float,
        default=float(os.environ.get("SCHEDULER_TIME_SCALE", "1")),
        help="divide every period by this factor, e.g. 60 runs 'rate(1 minute)' every second "
        "(default: $SCHEDULER_TIME_SCALE or 1)",
    )
    p.add_argument(
        "--run-at-start",
        action="store_true",
        help="run each schedule once immediately (EventBridge waits one period first)",
    )
    p.add_argument("--once", action="store_true", help="run every schedule once now, then exit")
    p.add_argument("--list", action="store_true", help="print the schedules found in the app and exit")
    p.add_argument("--only", action="append", default=[], metavar="NAME", help="run only this schedule (repeatable)")
    p.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", DEFAULT_REGION))
    p.add_argument("--account", default=DEFAULT_ACCOUNT)
    p.add_argument("--traceback", action="store_true", help="print tracebacks of failing runs")
    return p


def run_until_signalled(sched: Scheduler, stage: str) -> int:
    """Run the schedules until SIGTERM/SIGINT: runs in progress finish; a second signal exits at once."""
    signals = {"n": 0}

    def on_signal(signum, _frame):
        signals["n"] += 1
        if signals["n"] > 1:
            os._exit(130)
        log_line(f"received {signal.Signals(signum).name}; stopping after runs in progress")
        sched.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sched.start()
    log_line(f"started: {len([s for s in sched.schedules if s.period_s])} schedule(s), stage {stage}")
    while not sched.stop_event.wait(1.0):
        pass
    sched.join()
    log_line(f"stopped after {sched.runs} run(s)")
    return 0


def main(argv=None) -> int:
    a = _parser().parse_args(argv)
    if a.time_scale <= 0:
        print("scheduler: --time-scale must be > 0", file=sys.stderr)
        return 2
    try:
        app, config = load_app(a.project_dir, a.stage)
        schedules = discover(app)
    except (SchedulerError, ValueError) as e:
        print(f"scheduler: {e}", file=sys.stderr)
        return 1
    if a.only:
        unknown = sorted(set(a.only) - {s.name for s in schedules})
        if unknown:
            print(f"scheduler: no schedule named {', '.join(unknown)} in app.py", file=sys.stderr)
            return 2
        schedules = [s for s in schedules if s.name in a.only]
    if a.list:
        for s in schedules:
            print(f"{s.name}\t{s.expression}\t{s.period_s if s.period_s else '-'}\t{s.handler_string}")
        return 0
    sched = Scheduler(
        app,
        schedules,
        stage=a.stage,
        time_scale=a.time_scale,
        region=a.region,
        account=a.account,
        run_at_start=a.run_at_start,
        config=config,
        show_traceback=a.traceback,
    )
    if a.once:
        results = [sched.invoke(s) for s in schedules]
        return 0 if all(results) else 1
    if not schedules:
        log_line("no @app.schedule handlers in app.py; nothing to do (waiting for a signal)")
    return run_until_signalled(sched, a.stage)


if __name__ == "__main__":
    sys.exit(main())
