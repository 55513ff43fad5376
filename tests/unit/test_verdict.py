"""chalicelib/verdict.py: the failing layer per agent and whether it is global or regional."""

from __future__ import annotations

from chalicelib.verdict import result_layers, verdict

AGENTS = {
    "fra": {"id": "a1", "name": "fra-1", "location": "Frankfurt"},
    "vir": {"id": "a2", "name": "vir-1", "location": "Virginia"},
    "sin": {"id": "a3", "name": "sin-1", "location": "Singapore"},
}


def row(agent, check_type, success, kind=None, **data):
    return {
        "agent": AGENTS[agent],
        "check_type": check_type,
        "status": "completed",
        "success": success,
        "error": {"kind": kind, "message": "..."} if kind else None,
        "data": data,
    }


def https_ok(agent):
    return row(agent, "http", True, final_url="https://x/", timings_ms={"connect": 1, "tls": 2, "ttfb": 3})


def test_tls_failing_from_one_region_is_regional_and_named():
    rows = [https_ok("fra"), https_ok("vir"), row("sin", "http", False, "tls_error", final_url="https://x/")]
    out = verdict(rows)
    assert out["failing_layer"] == "tls" and out["scope"] == "regional"
    assert out["text"] == "TLS fails from Singapore only"
    assert out["layers"]["tls"] == {"failed": [AGENTS["sin"]], "ok": [AGENTS["fra"], AGENTS["vir"]]}
    sin = next(a for a in out["agents"] if a["agent"]["id"] == "a3")
    assert sin["layers"] == {"dns": "ok", "tcp": "ok", "tls": "fail"} and sin["failing_layer"] == "tls"


def test_the_lowest_failing_layer_wins_per_agent():
    rows = [
        row("fra", "dns", False, "dns_failure"),
        row("fra", "http", False, "dns_failure"),
        row("vir", "tcp", False, "refused"),
        https_ok("sin"),
    ]
    out = verdict(rows)
    assert [a["failing_layer"] for a in out["agents"]] == ["dns", None, "tcp"]  # Frankfurt, Singapore, Virginia
    assert out["failing_layer"] == "dns" and out["scope"] == "regional"
    assert out["text"] == "DNS fails from Frankfurt; TCP fails from Virginia"


def test_every_agent_failing_at_one_layer_is_global():
    rows = [row(a, "tcp", False, "timeout") for a in AGENTS]
    out = verdict(rows)
    assert out["scope"] == "global" and out["failing_layer"] == "tcp"
    assert out["text"] == "TCP fails from every agent (3/3)"


def test_nothing_failing_lists_the_layers_tested():
    out = verdict([https_ok("fra"), row("vir", "tcp", True)])
    assert out["scope"] == "none" and out["failing_layer"] is None
    assert out["text"] == "DNS, TCP, TLS and HTTP OK from 2/2 agents"


def test_pending_and_our_own_failures_give_no_verdict():
    pending = dict(row("fra", "http", None), status="pending")
    offline = dict(row("vir", "http", False, "agent_offline"), status="failed")
    out = verdict([pending, offline])
    assert out["scope"] == "pending" and out["agents"] == [] and out["text"] is None


def test_an_http_timeout_fails_the_first_phase_without_a_timing():
    before_connect = row("fra", "http", False, "timeout", final_url="https://x/", timings_ms={"connect": None})
    in_tls = row("fra", "http", False, "timeout", final_url="https://x/", timings_ms={"connect": 5, "tls": None})
    after_tls = row("fra", "http", False, "timeout", final_url="https://x/", timings_ms={"connect": 5, "tls": 9})
    plain = row("fra", "http", False, "timeout", final_url="http://x/", timings_ms={"connect": 5, "tls": None})
    assert [result_layers(r)[1] for r in (before_connect, in_tls, after_tls, plain)] == ["tcp", "tls", "http", "http"]
    assert result_layers(row("fra", "http", False, "http_error", final_url="http://x/")) == (["dns", "tcp"], "http")


def test_ping_failures_blame_no_layer_but_dns():
    assert result_layers(row("fra", "ping", False, "timeout")) == (["dns"], None)
    assert result_layers(row("fra", "mtr", False, "dns_failure")) == ([], "dns")
    assert verdict([row("fra", "ping", False, "timeout")])["scope"] == "none"
