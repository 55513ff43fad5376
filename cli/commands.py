"""The read-only commands (agents, history, limits) and --from's agent lookup."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from . import errors
from .client import Api
from .protocol import CHECK_TYPES
from .render import format_ms, label

RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def _keys(agent: dict[str, Any]) -> set[str]:
    """What --from may call an agent: id, name, region, location, and each part of the location."""
    location = (agent.get("location") or "").lower()
    keys = {
        agent.get("id", "").lower(),
        (agent.get("name") or "").lower(),
        (agent.get("region") or "").lower(),
        location,
        *(part.strip() for part in location.split(",")),
    }
    return {k for k in keys if k}


def resolve_sources(api: Api, text: str) -> list[str]:
    """`--from Frankfurt,eu-central-1,<id>` -> agent ids (GET /api/agents), in the order given."""
    agents = api.agents()
    chosen: list[str] = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        matches = [a["id"] for a in agents if token.lower() in _keys(a)]
        if not matches:
            known = sorted(
                {a["name"] for a in agents}
                | {a["location"] for a in agents}
                | {a["region"] for a in agents if a.get("region")}
            )
            raise errors.UsageError(f"--from: no agent matches {token!r} (known: {', '.join(known) or 'none'})")
        chosen += [m for m in matches if m not in chosen]
    if not chosen:
        raise errors.UsageError("--from: name at least one agent, region or location")
    return chosen


def relative(iso: str | None, now: datetime | None = None) -> str:
    if not iso:
        return "never"
    try:
        then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    if seconds < 3:
        return "just now"
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def _stats_text(stats: dict[str, Any]) -> str:
    """Per type: the headline latency (HTTP total, ping RTT, TCP connect, DNS query), not the task's duration
    (a ping task lasts its packet interval); the duration only from an API that predates the split."""
    parts = []
    for check_type, s in sorted((stats or {}).items()):
        if s.get("count"):
            avg, p95 = ("latency_avg_ms", "latency_p95_ms") if "latency_avg_ms" in s else ("avg_ms", "p95_ms")
            parts.append(f"{label(check_type)} {format_ms(s.get(avg))}/{format_ms(s.get(p95))} ×{s['count']}")
    return "\n".join(parts) or "—"


def _capabilities(types: list[str]) -> str:
    return "all" if set(types) >= set(CHECK_TYPES) else ",".join(types) or "none"


def agents(ctx) -> int:
    body = ctx.api.get("/api/agents", "list the agents")
    if ctx.ns.json:
        print(json.dumps(body, indent=2))
        return errors.OK
    table = Table(title="Agents", title_justify="left", show_edge=False, pad_edge=False)
    for name in ("Name", "Location", "Region", "Status", "Seen", "latency avg/p95 (24 h)", "Checks"):
        table.add_column(name, no_wrap=name != "Checks")
    for agent in body["items"]:
        stats = ctx.api.get(f"/api/agents/{agent['id']}/stats", "read the agent's stats").get("stats")
        online = agent["status"] == "online"
        table.add_row(
            agent["name"],
            agent["location"],
            agent.get("region") or "",
            Text(agent["status"], style="green" if online else "red"),
            relative(agent["last_heartbeat"]),
            _stats_text(stats),
            _capabilities(agent.get("capabilities") or []),
        )
    ctx.out.print(table)
    online = sum(a["status"] == "online" for a in body["items"])
    ctx.out.print(f"{online} of {len(body['items'])} agents online")
    return errors.OK


def _summary_text(summary: dict[str, Any]) -> str:
    return " · ".join(
        f"{label(t)} {s.get('ok', 0)}/{s.get('total', 0)}" + (" ok" if s.get("ok") == s.get("total") else "")
        for t, s in (summary or {}).items()
    )


def history(ctx) -> int:
    ns = ctx.ns
    body = ctx.api.get("/api/checks", "list the checks", limit=ns.limit, target=ns.target, status=ns.status)
    if ns.json:
        print(json.dumps(body, indent=2))
        return errors.OK
    table = Table(title="Checks, newest first", title_justify="left", show_edge=False, pad_edge=False)
    for name in ("Created", "Check id", "Target", "Types", "Status", "Results"):
        table.add_column(name, no_wrap=name in ("Created", "Check id"))
    for item in body["items"]:
        table.add_row(
            relative(item["created_at"]),
            item["check_id"],
            item["target"],
            ",".join(item["check_types"]),
            item["status"],
            _summary_text(item.get("summary")),
        )
    ctx.out.print(table)
    if not body["items"]:
        ctx.out.print("no checks yet")
    return errors.OK


def limits(ctx) -> int:
    """The rate-limit state the API reports in its X-RateLimit headers (on a cheap GET)."""
    ctx.api.get("/api/checks", "read the rate limits", limit=1)
    headers = {k.lower(): v for k, v in ctx.api.last_headers.items()}
    values = {name: headers.get(name.lower()) for name in RATE_HEADERS}
    if ctx.ns.json:
        print(
            json.dumps(
                {
                    "limit": _int(values["X-RateLimit-Limit"]),
                    "remaining": _int(values["X-RateLimit-Remaining"]),
                    "reset_s": _int(values["X-RateLimit-Reset"]),
                },
                indent=2,
            )
        )
        return errors.OK
    if values["X-RateLimit-Limit"] is None:
        ctx.out.print("the API sent no X-RateLimit headers on GET /api/checks")
        return errors.OK
    ctx.out.print(
        f"requests: {values['X-RateLimit-Remaining']} of {values['X-RateLimit-Limit']} left "
        f"in this window, which resets in {values['X-RateLimit-Reset']} s"
    )
    return errors.OK


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None
