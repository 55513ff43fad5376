"""`hostchecker`: parse, run one command, map every error to its exit code and one line
on stderr. A user's mistake or a down API never shows a traceback."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from . import commands, errors
from .args import build_parser, given_options_for_unrequested_types, type_options
from .client import Api
from .config import Endpoints, resolve, share_url
from .render import check_view, latency_lines, rows_of, verdict_line
from .repeat import RunningStats
from .watch import watch

DEFAULT_EVERY_S = 1.0


@dataclass
class Context:
    api: Api
    endpoints: Endpoints
    out: Console
    ns: argparse.Namespace

    @property
    def ws_url(self) -> str:
        return "" if getattr(self.ns, "no_live", False) else self.endpoints.ws_url


def make_console() -> Console:
    """Colour and live redraws only on a terminal; rich itself honours NO_COLOR."""
    return Console(highlight=False, soft_wrap=False)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        ns = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help, 2 for a usage error (already printed)
        return int(exc.code or 0)
    try:
        endpoints = resolve(ns.api_url)
        ctx = Context(Api(endpoints.api_url), endpoints, make_console(), ns)
        return COMMANDS[ns.command](ctx)
    except errors.CliError as exc:
        print(f"hostchecker: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("hostchecker: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `hostchecker history | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return errors.OK


# ---- running checks


def exit_code_for(check: dict[str, Any]) -> int:
    """0 only when the check ran and every one of its tasks succeeded."""
    rows = check.get("results") or []
    if check.get("status") == "failed" or not rows:
        return errors.FAILED
    good = all(r.get("status") == "completed" and r.get("success") is True for r in rows)
    return errors.OK if good else errors.FAILED


def check_body(ctx: Context) -> dict[str, Any]:
    ns = ctx.ns
    stray = given_options_for_unrequested_types(ns)
    if stray:
        raise errors.UsageError(f"{', '.join(stray)}: that check type is not in --type {','.join(ns.check_types)}")
    body: dict[str, Any] = {"target": ns.target, "checks": ns.check_types}
    options = type_options(ns)
    if options:
        body["options"] = options
    if ns.sources:
        body["agents"] = commands.resolve_sources(ctx.api, ns.sources)
    if ns.limit:
        body["limit"] = ns.limit
    return body


def first_view(created: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """What the tables show before the first update: every task pending, from the 202."""
    agents = {a["id"]: a for a in created.get("agents") or []}
    rows = [
        {
            "task_id": t["task_id"],
            "agent": agents.get(t["agent_id"], {"id": t["agent_id"], "name": "?"}),
            "check_type": t["check_type"],
            "status": "pending",
            "success": None,
            "data": None,
            "error": None,
            "duration_ms": None,
        }
        for t in created.get("tasks") or []
    ]
    return {
        "check_id": created["check_id"],
        "target": created.get("target", body["target"]),
        "check_types": created.get("check_types", body["checks"]),
        "status": created.get("status"),
        "error": created.get("error"),
        "summary": {},
        "results": rows,
    }


def follow(ctx: Context, check_id: str, first: dict[str, Any], extra=None, transient=False) -> dict[str, Any]:
    """Follow one check to its end, showing it the way the flags ask."""
    ns = ctx.ns
    if ns.json or ns.latency or not ctx.out.is_terminal:
        return watch(ctx.api, check_id, lambda _c: None, ctx.ws_url, first)

    def view(check):
        return Group(check_view(check), *([extra()] if extra else []))

    with Live(view(first), console=ctx.out, auto_refresh=False, transient=transient) as live:
        return watch(ctx.api, check_id, lambda c: live.update(view(c), refresh=True), ctx.ws_url, first)


def show_final(ctx: Context, check: dict[str, Any], run: int | None = None) -> None:
    """After the live view (or instead of it, off a terminal). `run` numbers a repeated check's
    runs: JSON Lines then, else one verdict line per type and run (the live view was transient)."""
    ns = ctx.ns
    if ns.json:
        print(json.dumps(check, separators=(",", ":")) if run else json.dumps(check, indent=2))
    elif ns.latency:
        for line in latency_lines(check):
            print(line if run is None else f"{run}\t{line}")
    elif run:
        for check_type in check.get("check_types") or []:
            rows = rows_of(check, check_type)
            ctx.out.print(f"run {run}: {verdict_line(check_type, rows, (check.get('summary') or {}).get(check_type))}")
    elif not ctx.out.is_terminal:  # a pipe or a file: the finished tables once, no redraws
        ctx.out.print(check_view(check))
    if ns.share:
        link = share_url(ctx.endpoints, check["check_id"])
        text = f"share: {link}" if link else "share: the UI's address is unknown (set HOSTCHECKER_UI_URL)"
        print(text, file=sys.stderr if ns.json or ns.latency else sys.stdout)


def warn_if_quota_is_low(headers: dict[str, str]) -> None:
    """The 202 carries the hourly check quota (X-RateLimit-*): say so before it runs out."""
    try:
        limit, remaining = int(headers["X-RateLimit-Limit"]), int(headers["X-RateLimit-Remaining"])
    except (KeyError, ValueError):
        return
    if remaining <= max(1, limit // 10):
        print(
            f"hostchecker: {remaining} of {limit} checks left in this window (resets in "
            f"{headers.get('X-RateLimit-Reset', '?')} s)",
            file=sys.stderr,
        )


def run_once(ctx: Context, body: dict[str, Any], extra=None, run: int | None = None) -> tuple[dict, dict]:
    created = ctx.api.create_check(body)
    warn_if_quota_is_low(ctx.api.last_headers)
    final = follow(ctx, created["check_id"], first_view(created, body), extra, transient=run is not None)
    show_final(ctx, final, run)
    return created, final


def cmd_check(ctx: Context) -> int:
    ns = ctx.ns
    body = check_body(ctx)
    runs = ns.repeat if ns.repeat is not None else (0 if ns.every else 1)
    if runs == 1:
        return exit_code_for(run_once(ctx, body)[1])
    return repeat_checks(ctx, body, runs, ns.every or DEFAULT_EVERY_S)


def repeat_checks(ctx: Context, body: dict[str, Any], runs: int, every_s: float) -> int:
    """Run the check `runs` times (0: until Ctrl-C) on the agents the first run chose. The
    summary is printed however it ends: all runs done, Ctrl-C, or an error (a rate limit)."""
    stats, codes = RunningStats(), []

    def title() -> str:
        return f"{stats.checks} run{'s' if stats.checks != 1 else ''} of {body['target']}"

    try:
        while runs == 0 or stats.checks < runs:
            if stats.checks:
                time.sleep(every_s)  # the user's interval between runs
            created, final = run_once(ctx, body, extra=lambda: stats.table(title()), run=stats.checks + 1)
            stats.add(final)
            codes.append(exit_code_for(final))
            if stats.checks == 1 and created.get("agents"):
                body = {
                    **{k: v for k, v in body.items() if k != "limit"},
                    "agents": [a["id"] for a in created["agents"]],
                }
    except KeyboardInterrupt:
        print(f"stopped after {title()}", file=sys.stderr)
    finally:
        if not ctx.ns.json and stats.checks:
            ctx.out.print(Text(""), stats.table(f"Summary: {title()}"))
    return errors.FAILED if not codes or errors.FAILED in codes else errors.OK


def cmd_show(ctx: Context) -> int:
    check = ctx.api.check(ctx.ns.check_id)
    if not ctx.ns.json and check.get("status") not in ("completed", "failed"):
        check = follow(ctx, check["check_id"], check)
    show_final(ctx, check)
    return exit_code_for(check)


COMMANDS = {
    **{t: cmd_check for t in ("http", "ping", "dns", "tcp", "traceroute", "mtr", "check")},
    "show": cmd_show,
    "agents": commands.agents,
    "history": commands.history,
    "limits": commands.limits,
}
