"""Metrics without servers: the Grafana dashboard queries only what we export, the CloudWatch
(EMF) names match the Prometheus ones, Powertools' cold start metric, and the agent's exposition."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.metrics import NAMES as AGENT_NAMES
from agent.metrics import AgentMetrics
from chalicelib import metrics
from chalicelib.protocol import headline_latency_ms

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"


def _agent_series() -> set[str]:
    """The sample names a real AgentMetrics exposes, once each metric has a sample."""
    m = AgentMetrics()
    m.watch(lambda: 1, lambda: 0, 4)
    m.probe("ping", {"success": True, "data": {"rtt_ms": {"avg": 10.0}}}, 1.5)
    m.delivered.labels("direct").inc()
    m.retried.inc()
    m.reclaims.inc(2)
    m.heartbeat_accepted()
    text = generate_latest(m.registry).decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def test_every_metric_the_dashboard_queries_is_one_we_export():
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    queried = {name for e in exprs for name in re.findall(r"\bhostchecker_[a-z0-9_]+", e)}
    exported = metrics.exported_names() | _agent_series()
    assert queried, "the dashboard queries nothing"
    assert queried <= exported, f"not exported: {sorted(queried - exported)}"
    # The seed's three, and the panels: agents online and queue depth.
    for needed in (
        "hostchecker_checks_total",
        "hostchecker_check_duration_seconds_bucket",
        "hostchecker_agent_heartbeats_total",
        "hostchecker_agents_online",
        "hostchecker_agent_stream_pending",
        "hostchecker_agent_probe_latency_seconds_bucket",
    ):
        assert needed in queried, needed


def test_the_agent_exports_every_name_it_documents():
    series = _agent_series()
    for name in AGENT_NAMES:
        assert name in series or f"{name}_count" in series, name


def test_emf_metrics_carry_the_prometheus_names_and_labels(capsys):
    batch = metrics.task_event(
        {
            "check_type": "http",
            "status": "completed",
            "success": True,
            "error": None,
            "duration_ms": 120.0,
            "data": {"timings_ms": {"total": 80.0}},
        }
    )
    batch.emit()
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    by_name = {b["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"]: b for b in blobs}
    assert set(by_name) == {
        "hostchecker_tasks_total",
        "hostchecker_check_duration_seconds",
        "hostchecker_check_latency_seconds",
    }
    tasks = by_name["hostchecker_tasks_total"]
    assert (tasks["check_type"], tasks["status"], tasks["error_kind"]) == ("http", "completed", "none")
    assert by_name["hostchecker_check_latency_seconds"]["hostchecker_check_latency_seconds"] == [0.08]


def test_the_first_invocation_emits_powertools_cold_start_metric(capsys):
    from aws_lambda_powertools.metrics.provider import cold_start
    from chalice.test import Client

    from app import app

    cold_start.is_cold_start = True
    with Client(app, stage_name="test") as client:
        client.http.get("/api/openapi.json")
        client.http.get("/api/openapi.json")
    out = capsys.readouterr().out
    assert out.count('"ColdStart"') >= 1
    cold = [json.loads(line) for line in out.splitlines() if '"ColdStart"' in line and '"_aws"' in line]
    assert len(cold) == 1 and cold[0]["function_name"]


def test_histogram_buckets_span_1_ms_to_60_s():
    assert metrics.BUCKETS[0] == 0.001 and metrics.BUCKETS[-1] == 60.0
    assert metrics.bucket_index(0.0004) == 0 and metrics.bucket_index(0.001) == 0
    assert metrics.bucket_index(0.042) == metrics.BUCKETS.index(0.05)
    assert metrics.bucket_index(61) == len(metrics.BUCKETS)  # +Inf


def test_a_task_event_counts_terminal_tasks_and_late_results_only():
    running = {"check_type": "tcp", "status": "in_progress", "success": None, "error": None}
    assert not metrics.task_event(running)
    late = metrics.task_event({**running, "status": "failed"}, late=True)
    assert late.counts == {metrics.counter_field("results_late_total", ()): 1}
    failed = metrics.task_event(
        {
            "check_type": "tcp",
            "status": "failed",
            "success": False,
            "duration_ms": None,
            "error": {"kind": "agent_offline", "message": "gone"},
            "data": None,
        }
    )
    assert failed.counts == {metrics.counter_field("tasks_total", ("tcp", "failed", "agent_offline")): 1}


def test_headline_latency_is_the_measured_value_never_the_task_duration():
    assert headline_latency_ms("ping", {"rtt_ms": {"avg": 10.5}}) == 10.5
    assert headline_latency_ms("ping", {"rtt_ms": {"avg": None}}) is None
    assert headline_latency_ms("http", {"timings_ms": {"total": 23}}) == 23.0
    assert headline_latency_ms("dns", {"query_time_ms": 1.2}) == 1.2
    assert headline_latency_ms("tcp", {"connect_ms": True}) is None
    hops = [{"rtts_ms": [1.0]}, {"rtts_ms": [10.0, 12.0, None]}]
    assert headline_latency_ms("traceroute", {"reached": True, "hops": hops}) == 11.0
    assert headline_latency_ms("traceroute", {"reached": False, "hops": hops}) is None


def test_scrape_cidrs():
    assert metrics.scrape_allowed("10.1.2.3", "10.0.0.0/8")
    assert metrics.scrape_allowed("::1", "10.0.0.0/8, ::1/128")
    assert not metrics.scrape_allowed("192.0.2.1", "10.0.0.0/8")
    assert not metrics.scrape_allowed("10.1.2.3", "")  # default: nobody
    assert not metrics.scrape_allowed("unknown", "0.0.0.0/0")
    assert metrics.scrape_allowed("10.1.2.3", "not-a-cidr, 10.0.0.0/8")


def test_a_batch_of_tasks_emits_one_emf_document_per_metric_and_labels_not_one_per_task(capsys):
    batch = metrics.Batch()
    for ms in (100.0, 200.0, 300.0):
        view = {"check_type": "tcp", "status": "completed", "success": True, "error": None, "duration_ms": ms}
        batch.merge(metrics.task_event(view))
    assert batch.counts[metrics.counter_field("tasks_total", ("tcp", "completed", "none"))] == 3
    batch.emit()
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    by_name = {b["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"]: b for b in blobs}
    assert len(blobs) == len(by_name) == 2  # tasks_total and check_duration_seconds, once each
    assert by_name["hostchecker_tasks_total"]["hostchecker_tasks_total"] == [3.0]
    assert by_name["hostchecker_check_duration_seconds"]["hostchecker_check_duration_seconds"] == [0.1, 0.2, 0.3]
