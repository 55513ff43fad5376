"""What a check looks like in the terminal: a table per check type, one row per agent,
and the verdict line the UI shows ("HTTP OK from 3/3 agents, median 42 ms").

The wording follows the UI's (frontend/src/lib/format.ts), so a check reads the same in
both. Only rich renders: no table is drawn by hand.
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

LABELS = {"http": "HTTP", "ping": "Ping", "dns": "DNS", "tcp": "TCP", "traceroute": "Traceroute", "mtr": "MTR"}
STYLES = {"ok": "green", "failed": "red", "running": "yellow", "pending": "dim"}


def label(check_type: str) -> str:
    return LABELS.get(check_type, check_type.upper())


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def format_ms(v: Any) -> str:
    """'42 ms', '3.4 ms', '1.25 s' (as the UI writes them)."""
    if not is_num(v):
        return "—"
    if v >= 10000:
        return f"{v / 1000:.1f} s"
    if v >= 1000:
        return f"{v / 1000:.2f} s"
    if v < 10:
        return f"{round(v, 1):g} ms"
    return f"{round(v)} ms"


def outcome(row: dict[str, Any] | None) -> str:
    if not row or row.get("status") == "pending":
        return "pending"
    if row["status"] == "in_progress":
        return "running"
    if row["status"] == "failed" or row.get("success") is False:
        return "failed"
    return "ok" if row["status"] == "completed" else "pending"


def headline(row: dict[str, Any]) -> str:
    """The headline figure(s) of a finished result, per check type."""
    d = row.get("data") or {}
    kind = row.get("check_type")
    if kind == "http":
        total = (d.get("timings_ms") or {}).get("total", row.get("duration_ms"))
        return " · ".join(
            p
            for p in (
                str(d["status_code"]) if d.get("status_code") is not None else "",
                format_ms(total) if is_num(total) else "",
                _assertions_text(d),
                _cert_text(d),
            )
            if p
        )
    if kind in ("ping", "mtr"):
        rtt = d.get("rtt_ms") or {}
        parts = [f"{format_ms(rtt['avg'])} avg"] if is_num(rtt.get("avg")) else []
        if is_num(d.get("loss_pct")):
            parts.append(f"{d['loss_pct']:g}% loss")
        if kind == "mtr" and isinstance(d.get("hops"), list):
            parts.append(f"{len(d['hops'])} hops")
        if d.get("protocol") in ("tcp", "udp"):
            parts.append(
                f"{d['protocol'].upper()} {d.get('port')}" + (f" {d['port_state']}" if d.get("port_state") else "")
            )
        return " · ".join(parts)
    if kind == "dns":
        answers = d.get("answers") if isinstance(d.get("answers"), list) else []
        if not answers:
            return f"0 answers ({d['rcode']})" if d.get("rcode") else "0 answers"
        values = ", ".join(str(a.get("value", "")) for a in answers[:2]) + (", …" if len(answers) > 2 else "")
        extra = ""
        validation = (d.get("dnssec") or {}).get("validation") if isinstance(d.get("dnssec"), dict) else None
        if isinstance(validation, dict) and validation.get("status"):
            extra += f" · DNSSEC {validation['status']}"
        if isinstance(d.get("trace"), list) and d["trace"]:
            extra += f" · traced in {len(d['trace'])} steps"
        return f"{len(answers)} answer{'s' if len(answers) != 1 else ''}: {values}{extra}"
    if kind == "tcp":
        ms = d.get("connect_ms", row.get("duration_ms"))
        return f"{format_ms(ms)} connect" if is_num(ms) else ""
    if kind == "traceroute":
        if not isinstance(d.get("hops"), list):
            return ""
        n = len(d["hops"])
        return f"{n} hop{'s' if n != 1 else ''}" + (" (not reached)" if d.get("reached") is False else "")
    return format_ms(row.get("duration_ms")) if is_num(row.get("duration_ms")) else ""


def _assertions_text(d: dict[str, Any]) -> str:
    assertions = d.get("assertions") if isinstance(d.get("assertions"), list) else []
    if not assertions:
        return ""
    passed = sum(1 for a in assertions if a.get("passed"))
    return f"{passed}/{len(assertions)} assertions"


def _cert_text(d: dict[str, Any]) -> str:
    """The leaf's fingerprint, shortened (enough to tell two apart), and its key."""
    tls = d.get("tls") if isinstance(d.get("tls"), dict) else {}
    fingerprint = tls.get("fingerprint_sha256")
    if not isinstance(fingerprint, str):
        return ""
    key = f" {tls['key_type']} {tls['key_bits']}" if tls.get("key_type") and tls.get("key_bits") else ""
    return f"cert {fingerprint[:11]}{key}"


def certificates_line(check: dict[str, Any]) -> str | None:
    """'Certificates differ between agents: …' when the API says agents saw different leaves."""
    certs = check.get("certificates")
    if not isinstance(certs, dict) or not certs.get("differ"):
        return None
    groups = " · ".join(
        f"{leaf['fingerprint_sha256'][:11]} ({', '.join(leaf.get('agents') or [])})" for leaf in certs.get("leaves", [])
    )
    return f"Certificates differ between agents: {groups}"


def figure_ms(row: dict[str, Any]) -> float | None:
    """The one number per result that --latency prints and --repeat keeps statistics of."""
    d = row.get("data") or {}
    kind = row.get("check_type")
    candidates = {
        "http": (d.get("timings_ms") or {}).get("total"),
        "ping": (d.get("rtt_ms") or {}).get("avg"),
        "mtr": (d.get("rtt_ms") or {}).get("avg"),
        "dns": d.get("query_time_ms"),
        "tcp": d.get("connect_ms"),
        "traceroute": _last_hop_ms(d),
    }
    value = candidates.get(kind)
    value = value if is_num(value) else row.get("duration_ms")
    return float(value) if is_num(value) and outcome(row) == "ok" else None


def _last_hop_ms(d: dict[str, Any]) -> float | None:
    hops = d.get("hops")
    if not isinstance(hops, list) or not hops:
        return None
    times = [t for t in (hops[-1].get("rtts_ms") or []) if is_num(t)]
    return sum(times) / len(times) if times else None


def _error_text(row: dict[str, Any]) -> str:
    error = row.get("error") or {}
    kind = (error.get("kind") or "error").replace("_", " ")
    message = error.get("message") or ""
    return f"{kind}: {message}" if message else kind


def cell(row: dict[str, Any]) -> Text:
    state = outcome(row)
    if state == "ok":
        return Text(headline(row) or "ok", style=STYLES["ok"])
    if state == "failed":
        return Text(_error_text(row), style=STYLES["failed"])
    return Text("running…" if state == "running" else "waiting", style=STYLES[state])


def summary_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The per-type summary, computed the way the API does, for rows the API gave none for."""
    states = Counter(outcome(r) for r in rows)
    durations = [r["duration_ms"] for r in rows if outcome(r) == "ok" and is_num(r.get("duration_ms"))]
    return {
        "ok": states["ok"],
        "failed": states["failed"],
        "pending": states["pending"] + states["running"],
        "total": len(rows),
        "median_ms": statistics.median(durations) if durations else None,
    }


def failure_kinds(rows: list[dict[str, Any]]) -> str:
    kinds = Counter(
        ((r.get("error") or {}).get("kind") or "error").replace("_", " ") for r in rows if outcome(r) == "failed"
    )
    return ", ".join(f"{k} ×{n}" if n > 1 and len(kinds) > 1 else k for k, n in kinds.most_common())


def _median_for(check_type: str, rows: list[dict[str, Any]], summary: dict[str, Any]) -> tuple[Any, str]:
    """Ping and traceroute quote round-trip times: their task duration is mostly waiting."""
    if check_type in ("ping", "traceroute", "mtr"):
        figures = [f for f in (figure_ms(r) for r in rows) if f is not None]
        if figures:
            return statistics.median(
                figures
            ), "median RTT to the last hop" if check_type == "traceroute" else "median RTT"
    return summary.get("median_ms"), "median"


def verdict_line(check_type: str, rows: list[dict[str, Any]], summary: dict[str, Any] | None = None) -> str:
    """'HTTP OK from 3/3 agents, median 42 ms' and its variants, as the UI's summaryLine."""
    s = summary_of(rows)
    if summary and all(summary.get(k) == s[k] for k in ("ok", "failed", "pending", "total")):
        s = summary  # the API's own, when the rows shown are the ones it summarised
    name = label(check_type)
    value, median_label = _median_for(check_type, rows, s)
    med = f", {median_label} {format_ms(value)}" if is_num(value) else ""
    kinds = failure_kinds(rows)
    why = f" ({kinds})" if kinds else ""

    def agents(n: int) -> str:
        return f"{n} agent{'s' if n != 1 else ''}"

    if not s["total"]:
        return f"{name}: no agents ran this check"
    if s["pending"]:
        done = s["ok"] + s["failed"]
        if not done:
            return f"{name}: waiting for {agents(s['total'])}…"
        failed = f", failed on {s['failed']}{why}" if s["failed"] else ""
        return f"{name}: {done}/{s['total']} done, OK from {s['ok']}{failed}, {s['pending']} pending{med}"
    if not s["failed"]:
        return f"{name} OK from {s['ok']}/{s['total']} {'agent' if s['total'] == 1 else 'agents'}{med}"
    if not s["ok"]:
        if s["total"] == 1:
            return f"{name} failed on its agent{why}"
        return f"{name} failed on all {agents(s['total'])}{why}"
    return f"{name} OK from {s['ok']}/{s['total']} agents, failed on {s['failed']}{why}{med}"


def verdict_style(rows: list[dict[str, Any]]) -> str:
    states = {outcome(r) for r in rows}
    if states & {"pending", "running"}:
        return "yellow"
    return "red" if "failed" in states else "green"


def rows_of(check: dict[str, Any], check_type: str) -> list[dict[str, Any]]:
    rows = [r for r in check.get("results") or [] if r.get("check_type") == check_type]

    def where(r: dict[str, Any]) -> tuple[str, str]:
        agent = r.get("agent") or {}
        return agent.get("location") or "", agent.get("name") or ""

    return sorted(rows, key=where)


def type_table(check: dict[str, Any], check_type: str) -> Table:
    table = Table(
        title=f"{label(check_type)} · {check.get('target', '')}", title_justify="left", show_edge=False, pad_edge=False
    )
    table.add_column("Agent", no_wrap=True)
    table.add_column("Location", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Result")
    table.add_column("Time", justify="right", no_wrap=True)
    for row in rows_of(check, check_type):
        agent = row.get("agent") or {}
        state = outcome(row)
        table.add_row(
            agent.get("name", "?"),
            agent.get("location", ""),
            Text(state, style=STYLES[state]),
            cell(row),
            format_ms(row.get("duration_ms")) if state in ("ok", "failed") else "",
        )
    return table


def mtr_table(row: dict[str, Any]) -> Table:
    """One agent's mtr: a row per hop, as mtr's report mode prints it."""
    agent = row.get("agent") or {}
    table = Table(
        title=f"MTR hops from {agent.get('name', '?')} ({agent.get('location', '')})",
        title_justify="left",
        show_edge=False,
        pad_edge=False,
    )
    for name in ("Hop", "Host", "Loss", "Sent", "Last", "Avg", "Best", "Worst", "StDev", "Jitter"):
        table.add_column(name, justify="left" if name == "Host" else "right", no_wrap=True)
    for hop in (row.get("data") or {}).get("hops") or []:
        rtt, jitter = hop.get("rtt_ms") or {}, hop.get("jitter_ms") or {}
        host = hop.get("hostname") or hop.get("address") or "???"
        table.add_row(
            str(hop.get("ttl")),
            host,
            f"{hop.get('loss_pct', 0):g}%",
            str(hop.get("sent", "")),
            *(format_ms(rtt.get(k)) for k in ("last", "avg", "min", "max", "stddev")),
            format_ms(jitter.get("avg")),
        )
    return table


def layer_line(check: dict[str, Any]) -> Text | None:
    """The verdict across types (chalicelib/verdict.py): "TLS fails from Singapore only"."""
    verdict = check.get("verdict") or {}
    scope = verdict.get("scope")
    # All OK on one type, or only DNS tested (ping, traceroute, mtr), says nothing the type lines have not.
    beyond_dns = any(layer != "dns" for layer in verdict.get("layers") or {})
    if not verdict.get("text") or (scope == "none" and (len(check.get("check_types") or []) < 2 or not beyond_dns)):
        return None
    style = {"none": "green", "regional": "yellow", "global": "red"}.get(scope, "dim")
    prefix = f"Layers ({scope}): " if scope in ("global", "regional") else "Layers: "
    return Text(prefix + verdict["text"], style=style)


def check_view(check: dict[str, Any]) -> Group:
    """The whole check: its tables, then one verdict line per type, then the layer verdict."""
    parts: list[Any] = []
    types = check.get("check_types") or []
    for check_type in types:
        parts += [type_table(check, check_type), Text("")]
        if check_type == "mtr":
            for row in rows_of(check, check_type):
                if (row.get("data") or {}).get("hops"):
                    parts += [mtr_table(row), Text("")]
    if check.get("status") == "failed" and check.get("error"):
        parts.append(Text(f"The check could not run: {check['error']}", style="red"))
    differ = certificates_line(check)
    if differ:
        parts.append(Text(differ, style="yellow"))
    for check_type in types:
        rows = rows_of(check, check_type)
        parts.append(
            Text(
                verdict_line(check_type, rows, (check.get("summary") or {}).get(check_type)), style=verdict_style(rows)
            )
        )
    layers = layer_line(check)
    if layers is not None:
        parts.append(layers)
    return Group(*parts)


def latency_lines(check: dict[str, Any]) -> list[str]:
    """--latency: one line per result, its headline figure only."""
    lines = []
    for check_type in check.get("check_types") or []:
        for row in rows_of(check, check_type):
            agent = (row.get("agent") or {}).get("name", "?")
            value = figure_ms(row)
            kind = (row.get("error") or {}).get("kind", "error")
            shown = format_ms(value) if value is not None else f"failed ({kind})"
            lines.append(f"{agent}\t{check_type}\t{shown}")
    return lines
