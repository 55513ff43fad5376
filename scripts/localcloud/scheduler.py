"""Local stand-in for EventBridge schedules -> Lambda.

It loads the Chalice ``app`` from ``app.py`` the way ``chalice local --stage X`` does (the
stage's environment variables from ``.chalice/config.json`` are applied first), reads every
``@app.schedule`` from ``app.event_sources`` (``ScheduledEventConfig`` with a ``Rate`` object or a
``rate(...)`` string) and invokes each handler at its declared rate. There is no second,
hand-written list of schedules.

Each invocation goes through the handler Chalice registered (``EventSourceHandler``), with an
EventBridge "Scheduled Event" dict and a Lambda-like context, exactly as Lambda would call it,
so the user function receives a ``chalice.app.CloudWatchEvent`` and middleware runs.

One log line per run::

    2026-11-24T08:00:00.123Z scheduler run sweeper rate(1 minute) ok 12.3ms
    2026-11-24T08:01:00.120Z scheduler run sweeper rate(1 minute) error 3.1ms RuntimeError: boom

Runs of one schedule never overlap (a run that overruns its period makes the next tick late, and
missed ticks are skipped and logged); different schedules run in their own threads.
SIGTERM/SIGINT: no new runs start, a run in progress finishes, exit 0 (a second signal exits at
once with 130).

``--time-scale F`` divides every period by F (``--time-scale 60``: "1 minute" every second).
``cron(...)`` schedules are listed but not emulated (a warning says so).

Python API: ``load_app(project_dir, stage)``, ``discover(app)``, ``make_event(...)``,
``Scheduler(app, schedules, ...)``, and ``declared(stage)``: the schedules as
(name, expression) pairs for code that must not import the app itself (the CloudFormation
deploy), read by ``discover`` in a child process, so there is one reader of ``@app.schedule``.
CLI: ``python -m scripts.scheduler --help``.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.localcloud.procs import ROOT

DEFAULT_ACCOUNT = "000000000000"
DEFAULT_REGION = "us-east-1"

_UNIT_SECONDS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
_RATE_RE = re.compile(r"^\s*rate\(\s*(\d+)\s+([A-Za-z]+)\s*\)\s*$")


class SchedulerError(RuntimeError):
    """A user-facing error (bad project dir, app.py missing or failing to import)."""


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _iso(ts: _dt.datetime, millis: bool = True) -> str:
    if millis:
        return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


_LOG_LOCK = threading.Lock()


def log_line(msg: str, stream=None) -> None:
    line = f"{_iso(_utcnow())} scheduler {msg}\n"
    out = stream or sys.stdout
    with _LOG_LOCK:  # one whole line at a time, whatever thread logs
        out.write(line)
        out.flush()


# --------------------------------------------------------------------------- expressions
def expression_string(expr: Any) -> str:
    """'rate(1 minute)' for a chalice ``Rate``/``Cron`` object or a plain string."""
    return expr.to_string() if hasattr(expr, "to_string") else str(expr)


def rate_seconds(expr: Any) -> float | None:
    """Period in seconds of a rate expression, or None for cron(...). Raises ValueError if invalid."""
    value = getattr(expr, "value", None)
    unit = getattr(expr, "unit", None)
    if value is not None and unit is not None:  # chalice.app.Rate
        secs = _UNIT_SECONDS.get(str(unit).lower())
        if secs is None or int(value) <= 0:
            raise ValueError(f"unsupported rate {value} {unit}")
        return float(int(value) * secs)
    text = expression_string(expr)
    if text.strip().startswith("cron("):
        return None
    m = _RATE_RE.match(text)
    if not m or m.group(2).lower() not in _UNIT_SECONDS or int(m.group(1)) <= 0:
        raise ValueError(f"unsupported schedule expression {text!r}")
    return float(int(m.group(1)) * _UNIT_SECONDS[m.group(2).lower()])


# --------------------------------------------------------------------------- discovery
@dataclass
class Schedule:
    name: str  # chalice handler name (the function name unless name= was given)
    expression: str  # 'rate(1 minute)'
    period_s: float | None  # None for cron(...)
    handler: Callable[..., Any]  # chalice's wrapped EventSourceHandler: handler(event_dict, context)
    handler_string: str  # 'app.sweeper'
    description: str = ""


def _resolve_handler(app, cfg) -> Callable[..., Any]:
    handler = getattr(app, "handler_map", {}).get(cfg.name)
    if handler is not None:
        return handler
    module_name, _, attr = cfg.handler_string.rpartition(".")
    mod = sys.modules.get(module_name)
    if mod is None:
        import importlib

        mod = importlib.import_module(module_name)
    return getattr(mod, attr)


def discover(app) -> list[Schedule]:
    """Every @app.schedule of a Chalice app (blueprints included), from ``app.event_sources``."""
    from chalice.app import ScheduledEventConfig

    out = []
    for cfg in getattr(app, "event_sources", []):
        if not isinstance(cfg, ScheduledEventConfig):
            continue
        out.append(
            Schedule(
                name=cfg.name,
                expression=expression_string(cfg.schedule_expression),
                period_s=rate_seconds(cfg.schedule_expression),
                handler=_resolve_handler(app, cfg),
                handler_string=cfg.handler_string,
                description=getattr(cfg, "description", "") or "",
            )
        )
    return out


def load_app(project_dir=ROOT, stage: str = "local"):
    """Import the Chalice app like ``chalice local --stage <stage>``; returns (app, config or None).

    With a .chalice/config.json, the stage's environment variables are put into os.environ before
    app.py is imported. Without one, app.py is imported as is.
    """
    project_dir = str(Path(project_dir).resolve())
    if not os.path.isfile(os.path.join(project_dir, "app.py")):
        raise SchedulerError(f"no app.py in {project_dir}")
    os.chdir(project_dir)
    try:
        if os.path.isfile(os.path.join(project_dir, ".chalice", "config.json")):
            from chalice.cli.factory import CLIFactory

            factory = CLIFactory(project_dir, environ=os.environ)
            config = factory.create_config_obj(chalice_stage_name=stage)
            return config.chalice_app, config
        if project_dir not in sys.path:
            sys.path.insert(0, project_dir)
        import importlib

        return importlib.import_module("app").app, None
    except SchedulerError:
        raise
    except Exception as e:  # noqa: BLE001 - turned into one line for the user
        raise SchedulerError(
            f"cannot load the Chalice app from {project_dir}/app.py: "
            f"{e.__class__.__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
        ) from e


# --------------------------------------------------------------------------- events
def rule_name(app_name: str, stage: str, schedule_name: str) -> str:
    return f"{app_name}-{stage}-{schedule_name}"


def make_event(
    rule_arn: str, region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT, when: _dt.datetime | None = None
) -> dict:
    """An EventBridge 'Scheduled Event', as delivered to a Lambda target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": _iso(when or _utcnow(), millis=False),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


def _make_context(function_name: str, memory_mb: int, timeout_s: int):
    from chalice.local import LambdaContext

    ctx = LambdaContext(function_name=function_name, memory_size=memory_mb, max_runtime_ms=int(timeout_s * 1000))
    ctx.invoked_function_arn = f"arn:aws:lambda:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:function:{function_name}"
    return ctx


# --------------------------------------------------------------------------- scheduler
class Scheduler:
    def __init__(
        self,
        app,
        schedules: list[Schedule],
        *,
        stage: str = "local",
        time_scale: float = 1.0,
        region: str = DEFAULT_REGION,
        account: str = DEFAULT_ACCOUNT,
        run_at_start: bool = False,
        config=None,
        show_traceback: bool = False,
    ):
        if time_scale <= 0:
            raise SchedulerError("--time-scale must be > 0")
        self.app = app
        self.schedules = schedules
        self.stage = stage
        self.time_scale = time_scale
        self.region = region
        self.account = account
        self.run_at_start = run_at_start
        self.config = config
        self.show_traceback = show_traceback
        self.stop_event = threading.Event()
        self._threads: list[threading.Thread] = []
        self.runs = 0

    def _function_settings(self, name: str):
        timeout, memory = 60, 128
        if self.config is not None:
            try:
                scoped = self.config.scope(self.stage, name)
                timeout = scoped.lambda_timeout or timeout
                memory = scoped.lambda_memory_size or memory
            except Exception:  # noqa: BLE001 - defaults are fine
                pass
        return timeout, memory

    def invoke(self, sched: Schedule) -> bool:
        """Run one schedule once now; log one line; True on success."""
        app_name = getattr(self.app, "app_name", "app")
        rname = rule_name(app_name, self.stage, sched.name)
        arn = f"arn:aws:events:{self.region}:{self.account}:rule/{rname}"
        timeout, memory = self._function_settings(sched.name)
        event = make_event(arn, self.region, self.account)
        ctx = _make_context(rname, memory, timeout)
        t0 = time.perf_counter()
        ok, detail = True, ""
        try:
            sched.handler(event, ctx)
        except Exception as e:  # noqa: BLE001 - a failing handler must not stop the scheduler
            ok = False
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            detail = f" {e.__class__.__name__}: {msg}".rstrip()
            if self.show_traceback:
                traceback.print_exc()
        ms = (time.perf_counter() - t0) * 1000
        if ok and ms > timeout * 1000:
            detail = f" (exceeded the Lambda timeout of {timeout}s)"
        self.runs += 1
        log_line(f"run {sched.name} {sched.expression} {'ok' if ok else 'error'} {ms:.1f}ms{detail}")
        return ok

    def _loop(self, sched: Schedule) -> None:
        period = sched.period_s / self.time_scale
        start = time.monotonic()
        due = start if self.run_at_start else start + period
        while not self.stop_event.is_set():
            remaining = due - time.monotonic()
            if remaining > 0 and self.stop_event.wait(remaining):
                break
            if self.stop_event.is_set():
                break
            self.invoke(sched)
            due += period
            now = time.monotonic()
            if now > due:
                missed = int((now - due) // period) + 1
                due += missed * period
                log_line(f"skip {sched.name} {sched.expression}: run overran its period, {missed} tick(s) skipped")

    def start(self) -> None:
        runnable = [s for s in self.schedules if s.period_s]
        for s in self.schedules:
            if not s.period_s:
                log_line(
                    f"warning: {s.name} {s.expression} is a cron schedule; the local scheduler only "
                    f"emulates rate(...) schedules, so it will not run"
                )
        for s in runnable:
            scaled = s.period_s / self.time_scale
            log_line(
                f"schedule {s.name} {s.expression} -> {s.handler_string}, every {scaled:g}s"
                + (f" (time scale {self.time_scale:g})" if self.time_scale != 1 else "")
            )
            t = threading.Thread(target=self._loop, args=(s,), name=f"schedule-{s.name}", daemon=True)
            self._threads.append(t)
            t.start()

    def stop(self) -> None:
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> None:
        for t in self._threads:
            t.join(timeout)


# --------------------------------------------------------------------------- for the deploy
def declared(project_dir=ROOT, stage: str = "local") -> list[tuple]:
    """(name, expression) of every schedule the app declares, as ``discover`` finds them.

    Run in a child process (``--list``), so the caller's environment and imports stay untouched.
    Raises SchedulerError with the child's one-line message when the app cannot be loaded.
    """
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "scripts.scheduler", "--list", "--project-dir", str(project_dir), "--stage", stage],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise SchedulerError(done.stderr.strip() or f"scheduler --list exited {done.returncode}")
    return [tuple(line.split("\t")[:2]) for line in done.stdout.splitlines() if line.strip()]
