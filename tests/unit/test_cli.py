"""The CLI without servers: argument parsing from the protocol's option specs, rendering from
canned API bodies, live-message merging, configuration lookup, and the exit-code mapping."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from rich.console import Console

from chalicelib.protocol import OPTION_SPECS
from cli import errors
from cli.args import build_parser, type_options
from cli.client import Reply, describe_error, error_for
from cli.config import read_env_file, resolve, share_url
from cli.main import exit_code_for, main, warn_if_quota_is_low
from cli.render import check_view, format_ms, headline, latency_lines, verdict_line
from cli.repeat import RunningStats
from cli.watch import apply_message, ws_address

ROOT = Path(__file__).resolve().parents[2]
AGENTS = [
    {"id": f"00000000-0000-0000-0000-00000000000{i}", "name": n, "location": loc}
    for i, (n, loc) in enumerate(
        (("fra-1", "Frankfurt, DE"), ("iad-1", "Virginia, US"), ("sin-1", "Singapore, SG")), start=1
    )
]


def row(i: int, check_type: str = "http", status: str = "completed", success=True, ms=10.0, data=None, error=None):
    return {
        "task_id": f"t{i}-{check_type}",
        "agent": AGENTS[i],
        "check_type": check_type,
        "status": status,
        "success": success if status in ("completed", "failed") else None,
        "data": data,
        "error": error,
        "duration_ms": ms if status in ("completed", "failed") else None,
    }


def check(rows, types=("http",), status="completed"):
    return {
        "check_id": "c1",
        "target": "example.com",
        "check_types": list(types),
        "status": status,
        "summary": {},
        "results": rows,
        "error": None,
    }


def text_of(renderable) -> str:
    console = Console(width=160, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


# ---- arguments


def test_every_protocol_option_is_a_flag_with_its_own_name():
    parser = build_parser()
    for check_type, specs in OPTION_SPECS.items():
        help_text = parser._subparsers._group_actions[0].choices[check_type].format_help()
        for name in specs:
            assert f"--{name.replace('_', '-')}" in help_text, (check_type, name)
        prefixed = parser._subparsers._group_actions[0].choices["check"].format_help()
        for name in specs:
            assert f"--{check_type}-{name.replace('_', '-')}" in prefixed


def test_options_are_converted_and_only_given_ones_are_sent():
    ns = build_parser().parse_args(["ping", "example.com", "--count", "3", "--interval", "0.5"])
    assert type_options(ns) == {"ping": {"count": 3, "interval": 0.5}}
    ns = build_parser().parse_args(["dns", "example.com", "--type", "mx", "--resolver", "1.1.1.1"])
    assert type_options(ns) == {"dns": {"record_type": "MX", "resolver": "1.1.1.1"}}
    ns = build_parser().parse_args(["http", "example.com", "--no-verify-tls", "--expected-status", "200-299"])
    assert type_options(ns) == {"http": {"verify_tls": False, "expected_status": "200-299"}}
    ns = build_parser().parse_args(["check", "example.com", "--type", "http,tcp", "--tcp-port", "8443"])
    assert ns.check_types == ["http", "tcp"] and type_options(ns) == {"tcp": {"port": 8443}}
    assert type_options(build_parser().parse_args(["tcp", "example.com:443"])) == {}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["ping", "x", "--count", "17"], "must be between 1 and 16"),
        (["ping", "x", "--count", "many"], "is not a number"),
        (["traceroute", "x", "--max-hops", "0"], "must be between 1 and 64"),
        (["dns", "x", "--protocol", "sctp"], "must be one of udp, tcp"),
        (["http", "x", "--path", "no-slash"], "must start with /"),
        (["check", "x", "--type", "http,smtp"], "unknown check type smtp"),
        (["ping", "x", "--every", "0"], "between 0.1 and 86400"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_naming_the_option(capsys, argv, message):
    assert main(argv) == errors.USAGE
    assert message in capsys.readouterr().err


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "exit codes" in capsys.readouterr().out


# ---- rendering


def test_headlines_per_check_type():
    assert headline(row(0, data={"status_code": 200, "timings_ms": {"total": 42.4}})) == "200 · 42 ms"
    assert headline(row(0, "ping", data={"rtt_ms": {"avg": 3.44}, "loss_pct": 25})) == "3.4 ms avg · 25% loss"
    assert (
        headline(row(0, "dns", data={"answers": [{"value": "a"}, {"value": "b"}, {"value": "c"}]}))
        == "3 answers: a, b, …"
    )
    assert headline(row(0, "dns", data={"answers": [], "rcode": "NXDOMAIN"})) == "0 answers (NXDOMAIN)"
    assert headline(row(0, "tcp", data={"connect_ms": 12.0})) == "12 ms connect"
    assert headline(row(0, "traceroute", data={"hops": [{}, {}], "reached": False})) == "2 hops (not reached)"
    assert [format_ms(v) for v in (3.44, 42.4, 1250, 12500, None)] == ["3.4 ms", "42 ms", "1.25 s", "12.5 s", "—"]


def test_verdict_lines_read_like_the_ui():
    ok = [row(i, ms=ms) for i, ms in enumerate((20, 42, 90))]
    assert verdict_line("http", ok) == "HTTP OK from 3/3 agents, median 42 ms"
    mixed = [row(0, ms=20), row(1, success=False, error={"kind": "tls_error", "message": "bad cert"})]
    assert verdict_line("http", mixed) == "HTTP OK from 1/2 agents, failed on 1 (tls error), median 20 ms"
    waiting = [row(0, ms=20), row(1, status="in_progress"), row(2, status="pending")]
    assert verdict_line("http", waiting) == "HTTP: 1/3 done, OK from 1, 2 pending, median 20 ms"
    assert verdict_line("http", [row(0, status="pending")]) == "HTTP: waiting for 1 agent…"
    ping = [row(i, "ping", ms=2000, data={"rtt_ms": {"avg": v}}) for i, v in enumerate((10.0, 40.0, 120.0))]
    assert verdict_line("ping", ping) == "Ping OK from 3/3 agents, median RTT 40 ms"
    assert verdict_line("tcp", []) == "TCP: no agents ran this check"


def test_the_apis_summary_is_used_when_it_matches_the_rows():
    rows = [row(0, ms=20), row(1, ms=30)]
    summary = {"ok": 2, "failed": 0, "pending": 0, "total": 2, "median_ms": 24.0}
    assert verdict_line("http", rows, summary) == "HTTP OK from 2/2 agents, median 24 ms"
    stale = {"ok": 0, "failed": 0, "pending": 2, "total": 2, "median_ms": None}
    assert verdict_line("http", rows, stale) == "HTTP OK from 2/2 agents, median 25 ms"


def test_a_check_renders_a_table_per_type_and_the_verdicts():
    body = check(
        [
            row(0, data={"status_code": 200, "timings_ms": {"total": 11}}),
            row(1, "tcp", success=False, error={"kind": "refused", "message": "connection refused"}),
        ],
        types=("http", "tcp"),
    )
    text = text_of(check_view(body))
    assert "HTTP · example.com" in text and "TCP · example.com" in text
    assert "fra-1" in text and "Frankfurt, DE" in text and "200 · 11 ms" in text
    assert "refused: connection refused" in text
    assert "HTTP OK from 1/1 agent, median 10 ms" in text and "TCP failed on its agent (refused)" in text


def test_a_check_that_could_not_run_says_why():
    body = dict(check([], status="failed"), error="no agent is online")
    assert "The check could not run: no agent is online" in text_of(check_view(body))


def test_latency_lines_are_the_headline_figures_only():
    body = check(
        [
            row(0, "ping", data={"rtt_ms": {"avg": 10.7}}),
            row(1, "ping", success=False, error={"kind": "timeout", "message": "x"}),
        ],
        types=("ping",),
    )
    assert latency_lines(body) == ["fra-1\tping\t11 ms", "iad-1\tping\tfailed (timeout)"]


def test_running_stats_keep_min_avg_max_per_agent_and_type():
    stats = RunningStats()
    for ms in (10.0, 30.0, 20.0):
        stats.add(check([row(0, "tcp", data={"connect_ms": ms})], types=("tcp",)))
    text = text_of(stats.table("runs"))
    assert "fra-1" in text and "3/3" in text
    assert " 20 ms" in text and " 10 ms" in text and " 30 ms" in text
    assert stats.agent_ids() == {AGENTS[0]["id"]} and not stats.failed()


# ---- live messages


def test_live_messages_merge_into_the_snapshot_and_duplicates_are_dropped():
    snapshot = check([row(0, status="pending"), row(1, status="pending")], status="pending")
    state = apply_message(None, {"type": "snapshot", "check": snapshot})
    state = apply_message(state, {"type": "task", "task_id": "t0-http", "status": "in_progress", "agent": AGENTS[0]})
    assert state["results"][0]["status"] == "in_progress" and state["status"] == "in_progress"
    done = row(0, ms=12)
    state = apply_message(state, {"type": "result", "result": done})
    again = apply_message(state, {"type": "result", "result": dict(done, duration_ms=99)})
    assert again["results"][0]["duration_ms"] == 12  # the duplicate is dropped by task_id
    late_start = apply_message(
        again, {"type": "task", "task_id": "t0-http", "status": "in_progress", "agent": AGENTS[0]}
    )
    assert late_start["results"][0]["status"] == "completed"
    final = apply_message(
        late_start,
        {"type": "status", "status": "completed", "summary": {"http": {}}, "completed_at": "2026-12-01T00:00:00Z"},
    )
    assert final["status"] == "completed" and final["completed_at"]
    assert snapshot["results"][0]["status"] == "pending"  # inputs are left alone
    assert apply_message(None, {"type": "result", "result": done}) is None


def test_the_socket_address_carries_the_check_id():
    assert ws_address("ws://127.0.0.1:9001", "c1") == "ws://127.0.0.1:9001?check_id=c1"
    assert ws_address("wss://x/prod?a=1", "c1") == "wss://x/prod?a=1&check_id=c1"


# ---- exit codes and errors


def test_exit_code_is_0_only_when_every_task_succeeded():
    assert exit_code_for(check([row(0), row(1)])) == errors.OK
    assert exit_code_for(check([row(0), row(1, success=False)])) == errors.FAILED
    assert exit_code_for(check([row(0), row(1, status="failed", success=False)])) == errors.FAILED
    assert exit_code_for(check([], status="failed")) == errors.FAILED


def test_api_errors_map_to_exit_codes_with_the_field_message():
    bad = Reply(
        400,
        {},
        {
            "error": {
                "code": "validation_error",
                "message": "target is not a hostname",
                "details": [{"field": "target", "message": "target is not a hostname"}],
            }
        },
    )
    assert isinstance(error_for(bad, "create the check"), errors.UsageError)
    assert error_for(bad, "x").message == "target is not a hostname"
    other = Reply(
        400,
        {},
        {
            "error": {
                "code": "validation_error",
                "message": "invalid options",
                "details": [{"field": "options.ping.count", "message": "too big"}],
            }
        },
    )
    assert describe_error(other.body) == "invalid options; options.ping.count: too big"
    limited = error_for(Reply(429, {"Retry-After": "42"}, {"error": {"message": "slow down"}}), "x")
    assert isinstance(limited, errors.RateLimited) and limited.retry_after_s == 42
    assert limited.exit_code == 4 and "retry in 42 s" in limited.message
    down = error_for(Reply(503, {}, {"error": {"message": "the database is unavailable"}}), "read the check")
    assert down.exit_code == 3 and "database is unavailable" in down.message
    assert error_for(Reply(404, {}, None), "read the check").message == "cannot read the check: HTTP 404"


def test_a_low_check_quota_is_announced_on_stderr(capsys):
    warn_if_quota_is_low({"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "50", "X-RateLimit-Reset": "9"})
    assert capsys.readouterr().err == ""
    warn_if_quota_is_low({"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "9"})
    assert "3 of 100 checks left in this window (resets in 9 s)" in capsys.readouterr().err
    warn_if_quota_is_low({})


# ---- configuration


def test_api_url_comes_from_the_flag_then_the_environment_then_stack_env(tmp_path):
    stack = tmp_path / "stack.env"
    stack.write_text(
        "export API_URL=http://127.0.0.1:8000\nexport WS_URL='ws://127.0.0.1:8001'\n"
        "export UI_URL=http://127.0.0.1:4566/ui/\n"
    )
    assert read_env_file(stack)["WS_URL"] == "ws://127.0.0.1:8001"
    from_stack = resolve(None, {}, stack)
    assert (from_stack.api_url, from_stack.ws_url) == ("http://127.0.0.1:8000", "ws://127.0.0.1:8001")
    assert share_url(from_stack, "c1") == "http://127.0.0.1:4566/ui/results/c1"
    from_env = resolve(None, {"HOSTCHECKER_API_URL": "https://api.example/v1/"}, stack)
    assert from_env.api_url == "https://api.example/v1" and from_env.ws_url == "" and from_env.ui_url == ""
    flag = resolve(
        "http://other:1", {"HOSTCHECKER_API_URL": "https://api.example", "HOSTCHECKER_WS_URL": "ws://w"}, stack
    )
    assert flag.api_url == "http://other:1" and flag.ws_url == "ws://w"
    with pytest.raises(errors.UsageError, match="no API URL"):
        resolve(None, {}, False)
    with pytest.raises(errors.UsageError, match="not an http"):
        resolve("ftp://x", {}, False)


def test_the_cli_imports_only_the_pure_protocol_module_of_the_server():
    imported = set()
    for path in (ROOT / "cli").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module + "".join(f".{a.name}" for a in node.names if node.module == "chalicelib"))
            elif isinstance(node, ast.Import):
                imported.update(a.name for a in node.names)
    server = {name for name in imported if name.split(".")[0] in ("chalicelib", "agent", "app")}
    assert server <= {"chalicelib.protocol"}


def test_the_console_script_works_outside_the_checkout(tmp_path):
    """The editable install exposes only `cli`; the protocol module is then read from the checkout."""
    import os
    import subprocess

    script = ROOT / ".venv" / "bin" / "hostchecker"
    if not script.exists():
        pytest.skip("no console script: `make venv` installs it")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HOSTCHECKER_API_URL")}
    run = subprocess.run(
        [str(script), "ping", "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert "--count COUNT" in run.stdout and "1–16, default 4" in run.stdout
    probe = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c", "import chalicelib"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode != 0, "only the cli package is installed, not chalicelib"


def test_no_live_forces_polling():
    from cli.config import Endpoints
    from cli.main import Context

    ns = build_parser().parse_args(["tcp", "example.com", "--no-live"])
    ctx = Context(api=None, endpoints=Endpoints("http://a", ws_url="ws://w"), out=None, ns=ns)
    assert ctx.ws_url == ""
    ns = build_parser().parse_args(["tcp", "example.com"])
    assert Context(api=None, endpoints=Endpoints("http://a", ws_url="ws://w"), out=None, ns=ns).ws_url == "ws://w"


def test_agent_stats_show_the_headline_latency_not_the_task_duration():
    from cli.commands import _stats_text

    text = _stats_text(
        {"ping": {"count": 4, "avg_ms": 1530.0, "p95_ms": 1540.0, "latency_avg_ms": 10.4, "latency_p95_ms": 11.2}}
    )
    assert "10" in text and "1.53 s" not in text and "×4" in text


def test_http_request_flags_become_the_apis_options():
    ns = build_parser().parse_args(
        [
            "http",
            "https://example.com/api",
            "--method",
            "post",
            "--body",
            '{"q": 1}',
            "-H",
            "Content-Type: application/json",
            "--header",
            "X-Trace: 1",
            "--expect",
            '{"status": [200], "json": {"$.ok": true}}',
            "--http-version",
            "2",
        ]
    )
    assert type_options(ns) == {
        "http": {
            "method": "POST",
            "body": '{"q": 1}',
            "headers": {"Content-Type": "application/json", "X-Trace": "1"},
            "expect": {"status": [200], "json": {"$.ok": True}},
            "http_version": "2",
        }
    }


def test_a_json_option_that_is_not_json_exits_2_naming_it(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["http", "example.com", "--expect", "{status: 200"])
    assert exc.value.code == 2
    assert "--expect" in capsys.readouterr().err


def test_assertions_certificates_and_a_differing_certificate_are_shown():
    tls = {"fingerprint_sha256": "AB:CD:EF:01:23", "key_type": "RSA", "key_bits": 2048}
    passed = [{"assertion": "status", "passed": True}, {"assertion": "body_contains", "passed": True}]
    body = check([row(0, data={"status_code": 200, "timings_ms": {"total": 11}, "tls": tls, "assertions": passed})])
    body["certificates"] = {
        "differ": True,
        "leaves": [
            {"fingerprint_sha256": "AB:CD:EF:01:23", "agents": ["fra-1", "iad-1"]},
            {"fingerprint_sha256": "99:88:77:66:55", "agents": ["sin-1"]},
        ],
    }
    text = text_of(check_view(body))
    assert "2/2 assertions" in text and "cert AB:CD:EF:01 RSA 2048" in text
    assert "Certificates differ between agents: AB:CD:EF:01 (fra-1, iad-1) · 99:88:77:66 (sin-1)" in text
    body["certificates"]["differ"] = False
    assert "differ" not in text_of(check_view(body))


def test_dns_depth_flags_and_the_dnssec_verdict():
    ns = build_parser().parse_args(["dns", "example.com", "--protocol", "DoT", "--dnssec", "--type", "https"])
    assert type_options(ns) == {"dns": {"protocol": "dot", "dnssec": True, "record_type": "HTTPS"}}
    data = {
        "answers": [{"value": "198.18.7.7"}],
        "dnssec": {"validation": {"status": "secure"}},
        "trace": [{}, {}, {}],
    }
    assert headline({"check_type": "dns", "data": data}) == "1 answer: 198.18.7.7 · DNSSEC secure · traced in 3 steps"
