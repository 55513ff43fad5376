"""A real agent started with HC_METRICS_ADDRESS (--metrics-address) serves its own Prometheus metrics."""

from __future__ import annotations

import math
import socket

import requests

from tests.integration.agent_harness import (  # noqa: F401 - fixtures: db, start_agent, tcp_listener
    create_check,
    db,
    free_port,
    start_agent,
    tcp_listener,
    wait_online,
    wait_until,
)
from tests.integration.metrics_scrape import parse, value

P = "hostchecker_agent_"


def _closed_port() -> int:
    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrape(port: int) -> dict:
    reply = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert reply.status_code == 200
    return parse(reply.text)


def test_agent_metrics_after_a_burst_of_checks(start_agent, api_server, db, tcp_listener):
    port = free_port()
    agent = start_agent("Metrics", HC_METRICS_ADDRESS=f"127.0.0.1:{port}", HC_CONCURRENCY="8")
    agent_id = str(wait_online(db, agent)["id"])
    closed = _closed_port()
    ok = [
        create_check(api_server, "127.0.0.1", "tcp", agent_id, {"port": tcp_listener.port})["check_id"]
        for _ in range(6)
    ]
    refused = [create_check(api_server, "127.0.0.1", "tcp", agent_id, {"port": closed})["check_id"] for _ in range(3)]
    wait_until(
        lambda: all(db.task_of(c)["status"] == "completed" for c in ok + refused),
        "the burst of checks to complete",
        diagnostics=agent.tail,
    )
    # A result is counted as delivered just after the API stored it: poll the counter itself.
    wait_until(
        lambda: value(_scrape(port), P + "results_delivered_total", via="direct") == 9,
        "the agent to count 9 delivered results",
        diagnostics=agent.tail,
    )

    samples = _scrape(port)
    assert value(samples, P + "probes_total", check_type="tcp", result="success") == 6
    assert value(samples, P + "probes_total", check_type="tcp", result="refused") == 3
    assert value(samples, P + "probe_duration_seconds_count", check_type="tcp") == 9
    assert value(samples, P + "probe_duration_seconds_bucket", check_type="tcp", le="+Inf") == 9
    assert value(samples, P + "probe_latency_seconds_count", check_type="tcp") == 6  # the successful ones
    assert value(samples, P + "concurrency_limit") == 8
    assert value(samples, P + "tasks_in_flight") == 0
    assert value(samples, P + "spool_depth") == 0
    assert value(samples, P + "results_retried_total") == 0
    assert value(samples, P + "stream_reclaims_total") == 0
    age = value(samples, P + "heartbeat_age_seconds")
    assert not math.isnan(age) and 0 <= age < 30
