"""The verdict across check types: which layer fails, for which agents, and whether that is
global or regional ("TLS fails from Singapore only").

Each agent's results are read bottom up, DNS -> TCP -> TLS -> HTTP, and the agent's failing
layer is the lowest one any of its results failed at; a layer is `ok` for an agent when one of
its results got past it. What a failure says about the layers:

- any type's `dns_failure` (and every dns check failure) fails DNS;
- a tcp check's other failures fail TCP, and its success passes DNS and TCP;
- an http check fails at the phase it stopped in: `tls_error` TLS, `http_error` (and
  assertion failures) HTTP, `refused`/`unreachable` TCP, a timeout the first phase its
  `timings_ms` lack (connect, then tls for https, else HTTP); its success passes every layer
  it went through;
- ping, traceroute and mtr say nothing of these layers beyond DNS: ICMP is often filtered
  where TCP works, and TCP probes are the tcp check's business;
- failures that are not the target's (`agent_offline`, `not_dispatched`, `internal`,
  `blocked_target`) are left out: they are about our side, not the host's.

Scope: `global` when every agent with a verdict fails at that layer, `regional` when some
do and others pass it (named by their locations), `none` when nothing fails, `pending` while
no agent has a verdict yet.
"""

from __future__ import annotations

from typing import Any

LAYERS = ("dns", "tcp", "tls", "http")
LABELS = {"dns": "DNS", "tcp": "TCP", "tls": "TLS", "http": "HTTP"}
NOT_THE_TARGETS = {"agent_offline", "not_dispatched", "internal", "blocked_target"}
_HTTP_KIND_LAYER = {"tls_error": "tls", "http_error": "http", "assertion_failed": "http", "refused": "tcp"}


def _http_layers(row: dict[str, Any]) -> tuple[list[str], str | None]:
    """(layers passed, layer failed) of one http result."""
    data = row.get("data") or {}
    timings = data.get("timings_ms") or {}
    https = str(data.get("final_url") or data.get("url") or "").startswith("https") or bool(data.get("tls"))
    phases = ["dns", "tcp"] + (["tls"] if https else []) + ["http"]
    if row.get("success"):
        return phases, None
    kind = (row.get("error") or {}).get("kind")
    if kind == "dns_failure":
        return [], "dns"
    failed = _HTTP_KIND_LAYER.get(kind or "")
    if failed is None and kind == "unreachable":
        failed = "tcp"
    if failed is None:  # a timeout, or something else: the first phase with no timing
        done = {"tcp": timings.get("connect") is not None, "tls": timings.get("tls") is not None}
        failed = "tcp" if not done["tcp"] else ("tls" if https and not done["tls"] else "http")
    return phases[: phases.index(failed)], failed


def result_layers(row: dict[str, Any]) -> tuple[list[str], str | None]:
    """(layers this result got past, the layer it failed at or None)."""
    kind = (row.get("error") or {}).get("kind")
    if row.get("success") is None or kind in NOT_THE_TARGETS:
        return [], None
    check_type = row.get("check_type")
    if check_type == "http":
        return _http_layers(row)
    if row.get("success"):
        return {"dns": ["dns"], "tcp": ["dns", "tcp"]}.get(check_type, ["dns"]), None
    if kind == "dns_failure" or check_type == "dns":
        return [], "dns"
    if check_type == "tcp":
        return ["dns"], "tcp"
    return ["dns"], None  # ping/traceroute/mtr got an address: DNS worked


def agent_verdicts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per agent with any terminal result: its layers and its lowest failing one."""
    agents: dict[str, dict[str, Any]] = {}
    for row in rows:
        passed, failed = result_layers(row)
        if not passed and failed is None:
            continue
        agent = row["agent"]
        entry = agents.setdefault(agent["id"], {"agent": agent, "layers": {}, "failing_layer": None, "failed_by": []})
        for layer in passed:
            entry["layers"].setdefault(layer, "ok")
        if failed:
            entry["layers"][failed] = "fail"
            entry["failed_by"].append({"check_type": row["check_type"], "layer": failed, "error": row.get("error")})
    for entry in agents.values():
        failing = [layer for layer in LAYERS if entry["layers"].get(layer) == "fail"]
        entry["failing_layer"] = failing[0] if failing else None
        entry["layers"] = {layer: entry["layers"][layer] for layer in LAYERS if layer in entry["layers"]}
    return sorted(agents.values(), key=lambda e: (e["agent"].get("location") or "", e["agent"].get("name") or ""))


def _places(entries: list[dict[str, Any]]) -> str:
    names = list(dict.fromkeys(e["agent"].get("location") or e["agent"].get("name") or "?" for e in entries))
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def verdict(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """`{failing_layer, scope, text, layers: {layer: {failed: [...], ok: [...]}}, agents: [...]}`."""
    agents = agent_verdicts(rows)
    layers: dict[str, dict[str, list]] = {}
    for entry in agents:
        for layer, state in entry["layers"].items():
            if state == "ok" or layer == entry["failing_layer"]:
                layers.setdefault(layer, {"failed": [], "ok": []})[state if state == "ok" else "failed"].append(
                    entry["agent"]
                )
    out: dict[str, Any] = {"failing_layer": None, "scope": "pending", "text": None, "layers": layers, "agents": agents}
    if not agents:
        return out
    failing = [e for e in agents if e["failing_layer"]]
    if not failing:
        tested = [LABELS[layer] for layer in LAYERS if layer in layers]
        out.update(scope="none", text=f"{_join(tested)} OK from {len(agents)}/{len(agents)} agents")
        return out
    lowest = min((e["failing_layer"] for e in failing), key=LAYERS.index)
    scope = (
        "global" if len(failing) == len(agents) and all(e["failing_layer"] == lowest for e in failing) else "regional"
    )
    phrases = []
    for layer in LAYERS:
        mine = [e for e in failing if e["failing_layer"] == layer]
        if not mine:
            continue
        if len(mine) == len(agents):
            phrases.append(f"{LABELS[layer]} fails from every agent ({len(mine)}/{len(agents)})")
        else:
            phrases.append(
                f"{LABELS[layer]} fails from {_places(mine)}" + (" only" if len(failing) == len(mine) else "")
            )
    out.update(failing_layer=lowest, scope=scope, text="; ".join(phrases))
    return out


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
