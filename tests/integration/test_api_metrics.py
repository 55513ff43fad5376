"""GET /metrics: Redis-backed counters and histograms that count exactly the work done,
add up across API processes, ride in the round trips of the work they count, and are
refused without the admin token (or a scrape CIDR)."""

from __future__ import annotations

import psycopg
import pytest
import requests

from chalicelib import checks, config, metrics, queue, tasks
from chalicelib.agents import hash_token
from tests.conftest import ADMIN_TOKEN
from tests.integration.conftest import register_over_http
from tests.integration.metrics_scrape import SecondApi, delta, scrape, value

P = "hostchecker_"


def _register(url: str, name: str) -> dict:
    return register_over_http(url, name, "Testland")


def _heartbeat(url: str, agent: dict) -> None:
    reply = requests.post(
        f"{url}/api/agents/heartbeat",
        json={"current_tasks": 0},
        headers={"X-Agent-Token": agent["api_token"]},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text


def _check(url: str, agent: dict, types: list[str]) -> dict[str, str]:
    reply = requests.post(
        f"{url}/api/checks", json={"target": "example.com", "checks": types, "agents": [agent["agent_id"]]}, timeout=10
    )
    assert reply.status_code == 202, reply.text
    return {t["check_type"]: t["task_id"] for t in reply.json()["tasks"]}


def _result(url: str, agent: dict, task_id: str, success: bool, duration_ms: float, data=None, kind=None) -> dict:
    body = {
        "success": success,
        "duration_ms": duration_ms,
        "address": "93.184.215.14",
        "data": data or {},
        "error": None if success else {"kind": kind, "message": f"test {kind}"},
    }
    reply = requests.post(
        f"{url}/api/tasks/{task_id}/result", json=body, headers={"X-Agent-Token": agent["api_token"]}, timeout=10
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def _http_ok(ms: float) -> dict:
    return {"status_code": 200, "timings_ms": {"total": ms}}


def test_counters_and_histograms_move_by_exactly_the_work_done(api_server, clean_state, pg_url):
    url = api_server
    before = scrape(url)
    agent = _register(url, "metrics-fra")
    n_checks, m_heartbeats = 3, 4
    tasks_of = [_check(url, agent, ["http", "tcp"]) for _ in range(n_checks)]
    for _ in range(m_heartbeats):
        _heartbeat(url, agent)
    queued = scrape(url)
    assert value(queued, P + "checks_in_progress") == n_checks
    assert value(queued, P + "agent_stream_length", agent="metrics-fra") == 2 * n_checks
    assert value(queued, P + "agent_stream_pending", agent="metrics-fra") == 0
    assert value(queued, P + "agents_online") == 1

    # K = 3 failures: one refused http, one timeout tcp, one internal tcp.
    http, tcp = [t["http"] for t in tasks_of], [t["tcp"] for t in tasks_of]
    _result(url, agent, http[0], True, 50, _http_ok(42))
    _result(url, agent, http[1], True, 50, _http_ok(42))
    _result(url, agent, http[2], False, 10, kind="refused")
    _result(url, agent, tcp[0], True, 12, {"connect_ms": 12})
    _result(url, agent, tcp[1], False, 10000, kind="timeout")
    _result(url, agent, tcp[2], False, 3, kind="internal")
    # A task the API fails (its deadline passed), then its result arrives late.
    late_task = _check(url, agent, ["http"])["http"]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE check_tasks SET deadline_at = now() - interval '1 second' WHERE id = %s", (late_task,))
    check_id = requests.get(f"{url}/api/tasks/{late_task}", timeout=10).json()["check_id"]
    assert requests.get(f"{url}/api/checks/{check_id}", timeout=10).json()["status"] == "completed"
    assert _result(url, agent, late_task, True, 20, _http_ok(15))["late"] is True
    after = scrape(url)

    assert delta(before, after, P + "checks_total", check_type="http") == n_checks + 1
    assert delta(before, after, P + "checks_total", check_type="tcp") == n_checks
    assert delta(before, after, P + "checks_total", check_type="ping") == 0
    assert delta(before, after, P + "agent_heartbeats_total", agent="metrics-fra") == m_heartbeats
    expected_tasks = {
        ("http", "completed", "none"): 2,
        ("http", "completed", "refused"): 1,
        ("tcp", "completed", "none"): 1,
        ("tcp", "completed", "timeout"): 1,
        ("tcp", "completed", "internal"): 1,
        ("http", "failed", "timeout"): 1,
    }
    for (check_type, status, kind), n in expected_tasks.items():
        assert delta(before, after, P + "tasks_total", check_type=check_type, status=status, error_kind=kind) == n
    total_tasks = sum(v for (name, _), v in after.items() if name == P + "tasks_total") - sum(
        v for (name, _), v in before.items() if name == P + "tasks_total"
    )
    assert total_tasks == sum(expected_tasks.values())
    assert delta(before, after, P + "results_late_total") == 1
    # Durations of every stored result that was not late; latencies of the successful ones only.
    assert delta(before, after, P + "check_duration_seconds_count", check_type="http") == 3
    assert delta(before, after, P + "check_duration_seconds_count", check_type="tcp") == 3
    assert delta(before, after, P + "check_duration_seconds_sum", check_type="tcp") == pytest.approx(10.015)
    assert delta(before, after, P + "check_latency_seconds_count", check_type="http") == 2
    assert delta(before, after, P + "check_latency_seconds_sum", check_type="http") == pytest.approx(0.084)
    assert delta(before, after, P + "check_latency_seconds_bucket", check_type="http", le="0.05") == 2
    assert delta(before, after, P + "check_latency_seconds_bucket", check_type="http", le="0.025") == 0
    assert delta(before, after, P + "check_latency_seconds_bucket", check_type="tcp", le="0.025") == 1
    assert delta(before, after, P + "check_duration_seconds_bucket", check_type="tcp", le="+Inf") == 3
    assert delta(before, after, P + "check_duration_seconds_bucket", check_type="tcp", le="10.0") == 3
    assert delta(before, after, P + "check_duration_seconds_bucket", check_type="tcp", le="5.0") == 2
    assert value(after, P + "checks_in_progress") == 0
    # Every series the scrape shows is one the dashboard test knows of (metrics.exported_names).
    assert {name for name, _ in after} <= metrics.exported_names()


def test_two_api_processes_share_the_counts(api_server, clean_state, pg_url, redis_url, tmp_path):
    second = SecondApi(pg_url, redis_url, tmp_path / "second-api.log")
    try:
        before = scrape(api_server)
        agent = _register(api_server, "metrics-two")
        first_tasks = [_check(api_server, agent, ["tcp"])["tcp"] for _ in range(2)]
        second_tasks = [_check(second.url, agent, ["tcp"])["tcp"] for _ in range(3)]
        _heartbeat(api_server, agent)
        _heartbeat(second.url, agent)
        _heartbeat(second.url, agent)
        for task_id in first_tasks:
            _result(second.url, agent, task_id, True, 5, {"connect_ms": 5})
        for task_id in second_tasks:
            _result(api_server, agent, task_id, False, 5, kind="refused")
        from_first, from_second = scrape(api_server), scrape(second.url)
    finally:
        second.stop()
    for after in (from_first, from_second):
        assert delta(before, after, P + "checks_total", check_type="tcp") == 5
        assert delta(before, after, P + "agent_heartbeats_total", agent="metrics-two") == 3
        assert delta(before, after, P + "tasks_total", check_type="tcp", status="completed", error_kind="none") == 2
        assert delta(before, after, P + "tasks_total", check_type="tcp", status="completed", error_kind="refused") == 3
        assert delta(before, after, P + "check_duration_seconds_count", check_type="tcp") == 5


def test_metrics_are_refused_without_the_admin_token(api_server):
    reply = requests.get(f"{api_server}/metrics", timeout=10)
    assert reply.status_code == 401
    assert "X-Admin-Token" in reply.json()["error"]["message"]
    reply = requests.get(f"{api_server}/metrics", headers={"X-Admin-Token": "wrong"}, timeout=10)
    assert reply.status_code == 403 and reply.json()["error"]["code"] == "forbidden"
    assert requests.get(f"{api_server}/metrics", headers={"X-Admin-Token": ADMIN_TOKEN}, timeout=10).ok


def test_a_client_inside_a_scrape_cidr_needs_no_token(api, settings):
    assert api.get("/metrics").status == 401  # no CIDR configured
    config.reset_settings(metrics_cidrs="10.0.0.0/8, 127.0.0.0/8")
    reply = api.get("/metrics")  # chalice's source address is 127.0.0.1
    assert reply.status == 200 and b"hostchecker_checks_total" in reply.raw
    config.reset_settings(metrics_cidrs="10.0.0.0/8")
    assert api.get("/metrics").status == 401
    # A forwarded-for hop is whatever the client wrote: it never lets one in.
    assert api.get("/metrics", headers={"X-Forwarded-For": "10.1.2.3"}).status == 401


def test_refused_requests_are_counted_per_bucket(api, settings):
    config.reset_settings(checks_per_hour=2)
    agent = api.register("rl-fra")
    for _ in range(4):
        api.create_check(agents=[agent["agent_id"]])
    body = api.get("/metrics", headers={"X-Admin-Token": ADMIN_TOKEN}).raw.decode()
    from tests.integration.metrics_scrape import parse

    samples = parse(body)
    assert value(samples, P + "rate_limited_total", bucket="checks") == 2
    assert value(samples, P + "checks_total", check_type="http") == 2


# ---- round trips: the metrics add none


def _online_agent(db) -> tuple[str, str]:
    agent_id = "6f1c2a52-0000-4000-8000-000000000001"
    db.execute(
        "INSERT INTO agents (id, name, location, api_token_hash, status, last_heartbeat) "
        "VALUES (%s, 'rt-agent', 'Testland', %s, 'online', now())",
        (agent_id, hash_token("rt-token")),
    )
    return agent_id, "rt-token"


def _commands(send) -> bytes:
    return b"".join(send) if isinstance(send, (list, tuple)) else bytes(send)


def test_result_ingestion_makes_no_extra_round_trip_for_its_metrics(settings, db, redis_client, count_round_trips):
    config.reset_settings(ws_management_url="")  # only our own round trips, not the live pushes
    agent_id, token = _online_agent(db)
    created = checks.create(
        checks.parse_request({"target": "example.com", "checks": ["http", "ping"], "agents": [agent_id]}),
        client_ip="203.0.113.9",
    )
    first, second = (t["task_id"] for t in created["tasks"])
    body = {
        "success": True,
        "duration_ms": 1500,
        "address": "93.184.215.14",
        "data": {"rtt_ms": {"avg": 10.2}},
        "error": None,
    }
    with count_round_trips() as sends:
        tasks.accept_result(token, first, {**body, "data": {"timings_ms": {"total": 30}}})
    # The task's PUBLISH, with its counts in the same pipeline; the check is not finished yet.
    assert len(sends) == 1, f"{len(sends)} round trips"
    assert b"PUBLISH" in _commands(sends[0]) and b"HINCRBY" in _commands(sends[0])
    with count_round_trips() as sends:
        tasks.accept_result(token, second, body)
    # The task's PUBLISH (with the counts) and the check's `completed`, in one pipeline.
    assert len(sends) == 1, f"{len(sends)} round trips"
    assert _commands(sends[0]).count(b"PUBLISH") == 2 and b"HINCRBY" in _commands(sends[0])
    fields = redis_client.hgetall(metrics.KEY)
    assert int(fields[metrics.counter_field("tasks_total", ("ping", "completed", "none"))]) == 1
    assert float(fields[metrics.sum_field("check_latency_seconds", ("ping",))]) == pytest.approx(0.0102)
    assert float(fields[metrics.sum_field("check_duration_seconds", ("ping",))]) == pytest.approx(1.5)


def test_a_batch_of_results_publishes_all_its_events_in_one_round_trip(settings, db, redis_client, count_round_trips):
    config.reset_settings(ws_management_url="")  # only our own round trips, not the live pushes
    agent_id, token = _online_agent(db)
    task_ids = []
    for _ in range(5):
        created = checks.create(
            checks.parse_request({"target": "example.com", "checks": ["ping"], "agents": [agent_id]}),
            client_ip="203.0.113.9",
        )
        task_ids += [t["task_id"] for t in created["tasks"]]
    body = {"success": True, "duration_ms": 15, "address": "93.184.215.14", "data": {}, "error": None}
    with count_round_trips() as sends:
        answer = tasks.accept_batch(token, {"results": [{"task_id": t, **body} for t in task_ids]})
    assert [a["status"] for a in answer["results"]] == [200] * 5
    # 5 task events and 5 checks completed: 10 PUBLISHes, with their counts, in one pipeline (not 10).
    assert len(sends) == 1, f"{len(sends)} round trips"
    assert _commands(sends[0]).count(b"PUBLISH") == 10


def test_a_heartbeat_is_one_round_trip_with_its_count(settings, db, redis_client, count_round_trips):
    from chalicelib import agents

    _, token = _online_agent(db)
    with count_round_trips() as sends:
        agents.heartbeat(token, {"current_tasks": 1})
    assert len(sends) == 1
    assert int(redis_client.hget(metrics.KEY, metrics.counter_field("agent_heartbeats_total", ("rt-agent",)))) == 1


def test_fan_out_carries_the_checks_created_count(settings, db, redis_client, count_round_trips):
    agent_id, _ = _online_agent(db)
    queue.agent_states([agent_id])  # the script loaded, as once per Redis (EVALSHA's NOSCRIPT, then LOAD)
    with count_round_trips() as sends:
        checks.create(
            checks.parse_request({"target": "example.com", "checks": ["dns", "tcp"], "agents": [agent_id]}),
            client_ip="203.0.113.9",
        )
    # One script call (who is online, and how far behind on its queue), then the fan-out
    # pipeline, which carries the counts.
    assert len(sends) == 2, f"{len(sends)} round trips"
    assert b"EVALSHA" in _commands(sends[0])
    assert b"XADD" in _commands(sends[1]) and b"HINCRBY" in _commands(sends[1])
    assert int(redis_client.hget(metrics.KEY, metrics.counter_field("checks_total", ("dns",)))) == 1


def test_a_check_no_agent_can_take_is_still_counted(settings, redis_client):
    created = checks.create(
        checks.parse_request({"target": "example.com", "checks": ["dns"], "locations": ["Mars"]}),
        client_ip="203.0.113.9",
    )
    assert created["status"] == "failed"
    assert int(redis_client.hget(metrics.KEY, metrics.counter_field("checks_total", ("dns",)))) == 1
