"""The agent's own Prometheus metrics, blackbox_exporter style (`--metrics-address`).

Kept in this process's memory (an agent is one long-running process, unlike the
API's Lambdas) in a registry of its own, and served on /metrics only when
HC_METRICS_ADDRESS / --metrics-address is set; off by default. Counting costs
nothing when nobody scrapes, so the runner always counts.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from chalicelib.protocol import headline_latency_ms

# The API's buckets (chalicelib/metrics.py): 1 ms to 60 s.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SUCCESS = "success"

NAMES = (
    "hostchecker_agent_probes_total",
    "hostchecker_agent_probe_duration_seconds",
    "hostchecker_agent_probe_latency_seconds",
    "hostchecker_agent_tasks_in_flight",
    "hostchecker_agent_concurrency_limit",
    "hostchecker_agent_spool_depth",
    "hostchecker_agent_heartbeat_age_seconds",
    "hostchecker_agent_results_delivered_total",
    "hostchecker_agent_results_retried_total",
    "hostchecker_agent_stream_reclaims_total",
)


class AgentMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.probes = Counter(
            "hostchecker_agent_probes",
            "Checks run, by type and result (success, or the error kind)",
            ["check_type", "result"],
            registry=r,
        )
        self.probe_duration = Histogram(
            "hostchecker_agent_probe_duration_seconds",
            "Duration of the checks run",
            ["check_type"],
            buckets=BUCKETS,
            registry=r,
        )
        self.probe_latency = Histogram(
            "hostchecker_agent_probe_latency_seconds",
            "Headline latency of the "
            "successful checks: HTTP total, ping average RTT, TCP connect, DNS query "
            "time, traceroute RTT to the target",
            ["check_type"],
            buckets=BUCKETS,
            registry=r,
        )
        self.delivered = Counter(
            "hostchecker_agent_results_delivered",
            "Results the API accepted, by path (direct, or spool after a failed delivery)",
            ["via"],
            registry=r,
        )
        self.retried = Counter(
            "hostchecker_agent_results_retried",
            "Result deliveries that failed and will be tried again from the spool",
            registry=r,
        )
        self.reclaims = Counter(
            "hostchecker_agent_stream_reclaims",
            "Un-acknowledged stream entries taken back (after a restart or a lost Redis connection)",
            registry=r,
        )
        self._in_flight = Gauge("hostchecker_agent_tasks_in_flight", "Tasks being run now", registry=r)
        self._limit = Gauge(
            "hostchecker_agent_concurrency_limit", "Tasks run at once at most (HC_CONCURRENCY)", registry=r
        )
        self._spool = Gauge("hostchecker_agent_spool_depth", "Results waiting in the spool for the API", registry=r)
        self._heartbeat_age = Gauge(
            "hostchecker_agent_heartbeat_age_seconds",
            "Seconds since the API last accepted a heartbeat (NaN before the first)",
            registry=r,
        )
        self._last_heartbeat: float | None = None
        self._children: dict[tuple, object] = {}
        self._lock = threading.Lock()
        self._heartbeat_age.set_function(self._seconds_since_heartbeat)

    def watch(self, in_flight: Callable[[], int], spool_depth: Callable[[], int], concurrency: int) -> None:
        """Gauges read at scrape time from the runner itself."""
        self._in_flight.set_function(in_flight)
        self._spool.set_function(spool_depth)
        self._limit.set(concurrency)

    def probe(self, check_type: str, result: dict, elapsed_s: float) -> None:
        err = result.get("error") or {}
        outcome = SUCCESS if result.get("success") else err.get("kind") or "internal"
        self._child(self.probes, check_type, outcome).inc()
        self._child(self.probe_duration, check_type).observe(max(0.0, elapsed_s))
        latency_ms = headline_latency_ms(check_type, result.get("data")) if result.get("success") else None
        if latency_ms is not None:
            self._child(self.probe_latency, check_type).observe(latency_ms / 1000)

    def _child(self, metric, *labels: str):
        """`metric.labels(*labels)`, looked up once: `labels()` checks and locks on every call, three
        times per task at thousands of tasks a second. A series still appears at its first use."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def heartbeat_accepted(self) -> None:
        with self._lock:
            self._last_heartbeat = time.monotonic()

    def _seconds_since_heartbeat(self) -> float:
        with self._lock:
            last = self._last_heartbeat
        return math.nan if last is None else time.monotonic() - last


def serve(metrics: AgentMetrics, address: tuple[str, int]):
    """Serve /metrics on `address` in a daemon thread; raises OSError when it cannot listen."""
    from prometheus_client import start_http_server

    host, port = address
    return start_http_server(port, addr=host, registry=metrics.registry)
