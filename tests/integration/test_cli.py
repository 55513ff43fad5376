"""The `hostchecker` CLI against the real test API (chalice local over PostgreSQL and Redis),
with fake agents posting results: each command, --json against the OpenAPI schema, and
the exit codes 0/1/2/3/4. The live WebSocket is not part of the test API yet, so these
follow checks by polling (the CLI's fallback)."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis as redis_lib
import requests
from jsonschema import Draft202012Validator

from tests.integration.agent_harness import free_port
from tests.integration.cli_harness import ROOT, fake_agents, run_cli  # noqa: F401 - the fixture


@pytest.fixture
def three_agents(fake_agents):
    return [
        fake_agents("fra-1", "Frankfurt, DE", region="eu-central-1", ms=11),
        fake_agents("iad-1", "Virginia, US", region="us-east-1", ms=41),
        fake_agents("sin-1", "Singapore, SG", region="ap-southeast-1", ms=121),
    ]


@pytest.fixture(scope="module")
def openapi(api_server):
    return requests.get(f"{api_server}/api/openapi.json", timeout=10).json()


def assert_matches(openapi: dict, schema_name: str, body) -> None:
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": openapi["components"]}
    problems = sorted(Draft202012Validator(schema).iter_errors(body), key=str)
    assert not problems, f"{schema_name}: {problems[0].message} at {list(problems[0].path)}"


def cli(api_server, tmp_path, *args, **env):
    return run_cli(api_server, *args, cwd=tmp_path, **env)


# ---- each command


def test_http_check_prints_a_row_per_agent_and_the_verdict_and_exits_0(api_server, three_agents, tmp_path):
    run = cli(api_server, tmp_path, "http", "http://example.test/")
    assert run.returncode == 0, run.stderr
    for name in ("fra-1", "iad-1", "sin-1"):
        assert name in run.stdout
    assert "200 · 11 ms" in run.stdout
    assert "HTTP OK from 3/3 agents, median 41 ms" in run.stdout
    assert "\x1b[" not in run.stdout  # no colour when stdout is not a terminal


@pytest.mark.parametrize(
    "args, verdict",
    [
        (("ping", "example.test", "--count", "3"), "Ping OK from 3/3 agents, median RTT 41 ms"),
        (("dns", "example.test", "--type", "MX", "--resolver", "192.0.2.53"), "DNS OK from 3/3 agents"),
        (("tcp", "example.test:443"), "TCP OK from 3/3 agents"),
        (
            ("traceroute", "example.test", "--max-hops", "8"),
            "Traceroute OK from 3/3 agents, median RTT to the last hop",
        ),
    ],
)
def test_each_check_type_command_runs_with_its_options(api_server, three_agents, tmp_path, openapi, args, verdict):
    run = cli(api_server, tmp_path, *args, "--json")
    assert run.returncode == 0, run.stderr
    check = json.loads(run.stdout)
    assert_matches(openapi, "Check", check)
    assert check["check_types"] == [args[0]] and check["status"] == "completed"
    if args[0] == "ping":
        assert check["options"]["ping"]["count"] == 3
    if args[0] == "dns":
        assert check["options"]["dns"]["record_type"] == "MX"
        assert check["options"]["dns"]["resolver"] == "192.0.2.53"
    table = cli(api_server, tmp_path, "show", check["check_id"])
    assert table.returncode == 0, table.stderr
    assert verdict in table.stdout


def test_check_runs_several_types_on_a_limited_number_of_agents(api_server, three_agents, tmp_path, openapi):
    run = cli(
        api_server,
        tmp_path,
        "check",
        "example.test",
        "--type",
        "http,ping,tcp",
        "--limit",
        "2",
        "--ping-count",
        "2",
        "--json",
    )
    assert run.returncode == 0, run.stderr
    check = json.loads(run.stdout)
    assert_matches(openapi, "Check", check)
    assert check["check_types"] == ["http", "ping", "tcp"] and len(check["results"]) == 6
    assert len({r["agent"]["id"] for r in check["results"]}) == 2
    assert check["options"]["ping"]["count"] == 2
    text = cli(api_server, tmp_path, "show", check["check_id"]).stdout
    for line in ("HTTP OK from 2/2 agents", "Ping OK from 2/2 agents", "TCP OK from 2/2 agents"):
        assert line in text


def test_from_picks_agents_by_name_region_or_location(api_server, three_agents, tmp_path):
    fra, iad, sin = three_agents
    run = cli(api_server, tmp_path, "tcp", "example.test", "--from", "fra-1,us-east-1,Singapore", "--json")
    assert run.returncode == 0, run.stderr
    assert {r["agent"]["id"] for r in json.loads(run.stdout)["results"]} == {fra.id, iad.id, sin.id}
    run = cli(api_server, tmp_path, "tcp", "example.test", "--from", sin.id, "--json")
    assert {r["agent"]["name"] for r in json.loads(run.stdout)["results"]} == {"sin-1"}


def test_agents_lists_who_is_online_with_stats(api_server, three_agents, tmp_path, openapi):
    assert cli(api_server, tmp_path, "tcp", "example.test").returncode == 0
    run = cli(api_server, tmp_path, "agents")
    assert run.returncode == 0, run.stderr
    assert "3 of 3 agents online" in run.stdout
    assert "Frankfurt, DE" in run.stdout and "eu-central-1" in run.stdout and "TCP 11 ms/11 ms ×1" in run.stdout
    body = json.loads(cli(api_server, tmp_path, "agents", "--json").stdout)
    assert_matches(openapi, "AgentList", body)
    assert {a["name"] for a in body["items"]} == {"fra-1", "iad-1", "sin-1"}


def test_history_and_show_read_past_checks(api_server, three_agents, tmp_path, openapi):
    first = json.loads(cli(api_server, tmp_path, "tcp", "one.example.test", "--json").stdout)
    json.loads(cli(api_server, tmp_path, "tcp", "two.example.test", "--json").stdout)
    listed = json.loads(cli(api_server, tmp_path, "history", "--json").stdout)
    assert_matches(openapi, "CheckList", listed)
    assert [i["target"] for i in listed["items"]] == ["two.example.test", "one.example.test"]
    only = cli(api_server, tmp_path, "history", "--target", "one.example.test")
    assert only.returncode == 0 and first["check_id"] in only.stdout and "two.example.test" not in only.stdout
    shown = json.loads(cli(api_server, tmp_path, "show", first["check_id"], "--json").stdout)
    assert_matches(openapi, "Check", shown)
    assert shown == first


def test_limits_reports_the_rate_limit_headers(api_server, three_agents, tmp_path):
    run = cli(api_server, tmp_path, "limits", "--json")
    assert run.returncode == 0, run.stderr
    state = json.loads(run.stdout)
    assert state["limit"] > 0 and 0 <= state["remaining"] < state["limit"] and state["reset_s"] > 0
    assert "left in this window" in cli(api_server, tmp_path, "limits").stdout


def test_latency_prints_only_the_headline_figures(api_server, three_agents, tmp_path):
    run = cli(api_server, tmp_path, "ping", "example.test", "--latency")
    assert run.returncode == 0, run.stderr
    assert sorted(run.stdout.splitlines()) == ["fra-1\tping\t11 ms", "iad-1\tping\t41 ms", "sin-1\tping\t121 ms"]


def test_share_prints_the_ui_permalink(api_server, three_agents, tmp_path):
    run = cli(api_server, tmp_path, "tcp", "example.test", "--share", HOSTCHECKER_UI_URL="http://ui.test:5173")
    assert run.returncode == 0, run.stderr
    check_id = run.stdout.rsplit("/results/", 1)[1].strip()
    assert uuid.UUID(check_id) and "share: http://ui.test:5173/results/" in run.stdout


# ---- exit codes


def test_a_failed_task_exits_1_and_names_the_failure(api_server, fake_agents, tmp_path):
    fake_agents("fra-1", "Frankfurt, DE")
    fake_agents("iad-1", "Virginia, US", fails=("tcp",))
    run = cli(api_server, tmp_path, "tcp", "example.test")
    assert run.returncode == 1, run.stderr
    assert "TCP OK from 1/2 agents, failed on 1 (refused)" in run.stdout
    assert "refused: connection refused" in run.stdout


def test_no_agent_online_exits_1_with_the_reason(api_server, clean_state, tmp_path):
    run = cli(api_server, tmp_path, "tcp", "example.test")
    assert run.returncode == 1
    assert "no agent is online" in run.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("http", "exa mple.test"), "target"),  # the API's field message
        (("ping", "example.test", "--count", "99"), "must be between 1 and 16"),  # the protocol's bounds
        (("dns", "example.test", "--type", "BOGUS"), "must be one of A, AAAA"),
        (("check", "example.test", "--type", "http,smtp"), "unknown check type smtp"),
        (("check", "example.test", "--type", "http", "--ping-count", "2"), "--ping-count"),
        (("tcp", "example.test", "--from", "Atlantis"), "--from: no agent matches 'Atlantis'"),
        (("show", "00000000-0000-0000-0000-000000000000"), "not found"),
        (("history", "--status", "exploded"), "status must be one of"),
    ],
)
def test_bad_input_exits_2_with_the_field_message_and_no_traceback(api_server, three_agents, tmp_path, args, message):
    run = cli(api_server, tmp_path, *args)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert message in run.stderr
    assert "Traceback" not in run.stderr + run.stdout


def test_rate_limited_exits_4_with_the_wait(api_server, three_agents, tmp_path, redis_url):
    # Use up this client's check quota as the API counts it (hc:rl:checks:<ip>:<window>).
    r = redis_lib.Redis.from_url(redis_url)
    import time as clock

    window = int(clock.time() // 3600)
    r.set(f"hc:rl:checks:127.0.0.1:{window}", 10_000, ex=3700)
    r.set(f"hc:rl:checks:127.0.0.1:{window + 1}", 10_000, ex=7300)  # in case the hour turns meanwhile
    run = cli(api_server, tmp_path, "tcp", "example.test")
    assert run.returncode == 4, (run.stdout, run.stderr)
    assert "rate limited" in run.stderr and "retry in" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_nearly_spent_check_quota_is_announced(api_server, three_agents, tmp_path, redis_url):
    import time as clock

    limit = int(
        requests.post(
            f"{api_server}/api/checks", json={"target": "example.test", "checks": ["tcp"]}, timeout=10
        ).headers["X-RateLimit-Limit"]
    )
    window = int(clock.time() // 3600)
    redis_lib.Redis.from_url(redis_url).set(f"hc:rl:checks:127.0.0.1:{window}", limit - 3, ex=3700)
    run = cli(api_server, tmp_path, "tcp", "example.test")
    assert run.returncode == 0, run.stderr
    assert f"2 of {limit} checks left in this window" in run.stderr or clock.time() // 3600 != window


def test_api_down_exits_3_without_a_traceback(tmp_path):
    run = run_cli(f"http://127.0.0.1:{free_port()}", "tcp", "example.test", cwd=tmp_path)
    assert run.returncode == 3
    assert "cannot reach the API" in run.stderr and "connection refused" in run.stderr
    assert "Traceback" not in run.stderr


class _Answers(BaseHTTPRequestHandler):
    """A server that is up but unwell: 503 in the API's error shape, or HTML from something else."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.path.startswith("/html"):
            body, status, kind = b"<html>hello</html>", 200, "text/html"
        else:
            body, status, kind = (
                json.dumps(
                    {
                        "error": {
                            "code": "service_unavailable",
                            "message": "the database is unavailable; retry shortly",
                            "details": [],
                        }
                    }
                ).encode(),
                503,
                "application/json",
            )
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def unwell_api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_5xx_or_an_answer_that_is_not_the_api_exits_3(unwell_api, tmp_path):
    run = run_cli(unwell_api, "agents", cwd=tmp_path)
    assert run.returncode == 3 and "database is unavailable" in run.stderr and "HTTP 503" in run.stderr
    run = run_cli(f"{unwell_api}/html", "history", cwd=tmp_path)
    assert run.returncode == 3 and "not JSON" in run.stderr
    assert "Traceback" not in run.stderr


def test_no_api_url_anywhere_is_a_usage_error(tmp_path):
    if (ROOT / ".local" / "stack.env").exists():
        pytest.skip("this checkout's stack is up: its stack.env is the fallback the CLI uses")
    run = run_cli(None, "agents", cwd=tmp_path)
    assert run.returncode == 2 and "no API URL" in run.stderr and "Traceback" not in run.stderr


# ---- --repeat


def test_repeat_runs_on_the_same_agents_each_time(api_server, fake_agents, tmp_path):
    for i, location in enumerate(("Frankfurt, DE", "Virginia, US", "Singapore, SG", "Sydney, AU")):
        fake_agents(f"agent-{i}", location, ms=10 + i)
    run = cli(api_server, tmp_path, "tcp", "example.test", "--limit", "2", "--repeat", "3", "--every", "0.1", "--json")
    assert run.returncode == 0, run.stderr
    checks = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(checks) == 3
    chosen = [{r["agent"]["id"] for r in c["results"]} for c in checks]
    assert len(chosen[0]) == 2 and chosen[0] == chosen[1] == chosen[2]


def test_repeat_prints_running_min_avg_max_per_agent(api_server, three_agents, tmp_path):
    run = cli(api_server, tmp_path, "ping", "example.test", "--repeat", "2", "--every", "0.1")
    assert run.returncode == 0, run.stderr
    assert "Summary: 2 runs of example.test" in run.stdout
    summary = run.stdout.split("Summary:")[1]
    assert "fra-1" in summary and "2/2" in summary and "11 ms" in summary
