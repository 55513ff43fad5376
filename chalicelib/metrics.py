"""API metrics that add up across Lambda instances (DESIGN §4), rendered by GET /metrics.

A counter in one Lambda's memory means nothing: the next invocation may land on
another instance. So every counter and histogram bucket is a field of one Redis
hash (`hc:metrics`), and the increments ride in the pipeline of the work they
count; they never cost a round trip of their own:

- checks created: the fan-out pipeline (`queue.enqueue`);
- tasks that reached a terminal state, and late results: the PUBLISH of the task's
  row (`queue.publish`, called once per terminal transition by `views.publish_check_changes`);
- heartbeats: the SETEX of the heartbeat key (`queue.set_heartbeat`);
- rate-limited requests: inside the rate limit's own Lua call (`ratelimit.hit`).

`GET /metrics` renders the hash with a prometheus_client custom collector, plus
gauges read at scrape time (agents online, each agent's stream length and pending
entries, checks in progress). The same events go to CloudWatch as EMF with the
same names (`Batch.emit`), so dashboards in both worlds read alike.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from .protocol import ERROR_KINDS, headline_latency_ms

log = logging.getLogger(__name__)

KEY = "hc:metrics"
PREFIX = "hostchecker_"
# 1 ms to 60 s: a DNS answer from cache at the bottom, a 30-hop traceroute at the top.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
NO_ERROR = "none"
# Failures that say something about the agent, not the target (the Agents page splits them).
AGENT_FAILURE_KINDS = ("internal", "agent_offline")
TARGET_FAILURE_KINDS = tuple(k for k in ERROR_KINDS if k not in AGENT_FAILURE_KINDS)

# name (without PREFIX) -> (help, label names)
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "checks_total": ("Checks created, per check type asked for", ("check_type",)),
    "tasks_total": (
        "Tasks that reached a terminal state (error_kind none: a successful result)",
        ("check_type", "status", "error_kind"),
    ),
    "agent_heartbeats_total": ("Heartbeats accepted, per agent name", ("agent",)),
    "rate_limited_total": ("Requests refused by a rate limit, per bucket (checks, api, agent)", ("bucket",)),
    "checks_refused_total": ("Checks refused with nothing stored, per reason (agents_busy)", ("reason",)),
    "results_late_total": ("Results that arrived after the API had failed their task", ()),
}
HISTOGRAMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "check_duration_seconds": ("Task duration as the agent measured it", ("check_type",)),
    "check_latency_seconds": (
        "Headline latency of successful results: HTTP total, ping average RTT, "
        "TCP connect, DNS query time, traceroute RTT to the target",
        ("check_type",),
    ),
}
GAUGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "agents_online": ("Agents whose last heartbeat is within the TTL", ()),
    "agent_stream_length": ("Entries in the agent's task stream (XLEN)", ("agent",)),
    "agent_stream_pending": ("Entries the agent has taken but not acknowledged (XPENDING)", ("agent",)),
    "checks_in_progress": ("Checks that are pending or in progress", ()),
}


# ---- the Redis fields


def counter_field(name: str, labels: Iterable[str]) -> str:
    return json.dumps(["c", name, list(labels)], separators=(",", ":"))


def bucket_field(name: str, labels: Iterable[str], index: int) -> str:
    return json.dumps(["b", name, list(labels), index], separators=(",", ":"))


def sum_field(name: str, labels: Iterable[str]) -> str:
    return json.dumps(["s", name, list(labels)], separators=(",", ":"))


def bucket_index(seconds: float) -> int:
    """The first bucket whose bound holds `seconds`; len(BUCKETS) is +Inf."""
    for i, bound in enumerate(BUCKETS):
        if seconds <= bound:
            return i
    return len(BUCKETS)


# ---- what an operation counts


@dataclass
class Batch:
    """Increments gathered by one operation, to be added to the pipeline that does its work."""

    counts: dict[str, int] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)
    events: list[tuple[str, dict[str, str], float, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.counts or self.sums)

    def inc(self, name: str, labels: tuple[str, ...] = (), n: int = 1) -> Batch:
        key = counter_field(name, labels)
        self.counts[key] = self.counts.get(key, 0) + n
        self.events.append((name, dict(zip(COUNTERS[name][1], labels, strict=True)), n, MetricUnit.Count))
        return self

    def observe(self, name: str, labels: tuple[str, ...], seconds: float) -> Batch:
        key = bucket_field(name, labels, bucket_index(seconds))
        self.counts[key] = self.counts.get(key, 0) + 1
        skey = sum_field(name, labels)
        self.sums[skey] = self.sums.get(skey, 0.0) + seconds
        self.events.append((name, dict(zip(HISTOGRAMS[name][1], labels, strict=True)), seconds, MetricUnit.Seconds))
        return self

    def add_to(self, pipe) -> int:
        """Queue the increments on `pipe` (the caller executes it) and spend the batch, so
        a later `send` of it counts nothing twice. Returns how many commands were queued."""
        for key, n in self.counts.items():
            pipe.hincrby(KEY, key, n)
        for key, value in self.sums.items():
            pipe.hincrbyfloat(KEY, key, value)
        queued = len(self.counts) + len(self.sums)
        self.counts, self.sums = {}, {}
        self.emit()
        return queued

    def merge(self, other: Batch) -> Batch:
        """Add `other`'s increments to this batch (the same field once, summed) and spend it."""
        for key, n in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + n
        for key, value in other.sums.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.events += other.events
        other.counts, other.sums, other.events = {}, {}, []
        return self

    def emit(self) -> None:
        """The same events to CloudWatch (EMF on stdout): one document per metric name and label
        set, counts summed and observations as its list of values (a batch of 100 results is a
        few documents, not 300)."""
        from aws_lambda_powertools.metrics.base import MetricManager

        from .observability import NAMESPACE

        events, self.events = self.events, []
        groups: dict[tuple, list[float]] = {}
        for name, dimensions, value, unit in events:
            key = (name, unit, tuple((k, str(v) or NO_ERROR) for k, v in dimensions.items()))
            values = groups.setdefault(key, [])
            if unit == MetricUnit.Count and values:
                values[0] += value
            else:
                values.append(value)
        for (name, unit, dimensions), values in groups.items():
            try:
                document = MetricManager(namespace=NAMESPACE)
                for key, dim in dimensions:
                    document.add_dimension(name=key, value=dim)
                for value in values:  # powertools prints and starts afresh at 100 values
                    document.add_metric(name=PREFIX + name, unit=unit, value=value)
                if document.metric_set:
                    print(json.dumps(document.serialize_metric_set(), separators=(",", ":")))
            except Exception:  # noqa: BLE001 - a metrics problem must never fail the work
                log.exception("EMF metric %s not emitted", name)


def checks_created(check_types: Iterable[str]) -> Batch:
    batch = Batch()
    for check_type in check_types:
        batch.inc("checks_total", (check_type,))
    return batch


def heartbeat(agent_name: str) -> Batch:
    return Batch().inc("agent_heartbeats_total", (agent_name,))


def task_event(view: dict[str, Any], late: bool = False) -> Batch:
    """What a published task row counts: a terminal task once, a late result once, else nothing."""
    batch = Batch()
    if late:
        return batch.inc("results_late_total")
    status = view.get("status")
    if status not in ("completed", "failed"):
        return batch
    check_type = view["check_type"]
    kind = (view.get("error") or {}).get("kind") or NO_ERROR
    batch.inc("tasks_total", (check_type, status, kind))
    if isinstance(view.get("duration_ms"), (int, float)):
        batch.observe("check_duration_seconds", (check_type,), view["duration_ms"] / 1000)
    latency = headline_latency_ms(check_type, view.get("data")) if view.get("success") else None
    if latency is not None:
        batch.observe("check_latency_seconds", (check_type,), latency / 1000)
    return batch


def send(batch: Batch) -> None:
    """Counts with no other Redis work to ride on (a check no agent could take). Best effort."""
    if not batch:
        return
    from . import queue

    try:
        pipe = queue.get_redis().pipeline(transaction=False)
        batch.add_to(pipe)
        pipe.execute()
    except (queue.RedisError, queue.QueueUnavailable, OSError) as exc:
        log.warning("metrics not recorded, Redis unavailable: %s", exc)


# ---- who may scrape


def scrape_allowed(client_ip: str, cidrs: str) -> bool:
    """Whether `client_ip` is inside one of the comma-separated CIDRs (HC_METRICS_CIDRS)."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    for raw in (c.strip() for c in (cidrs or "").split(",")):
        if not raw:
            continue
        try:
            if address in ipaddress.ip_network(raw, strict=False):
                return True
        except ValueError:
            log.warning("HC_METRICS_CIDRS: %r is not a CIDR; ignored", raw)
    return False


# ---- GET /metrics: the Redis hash and the scrape-time gauges, through a custom collector


def _parse_fields(raw: dict[str, str]) -> tuple[dict, dict, dict]:
    """(counters {(name, labels): n}, buckets {(name, labels): [n per bucket]}, sums {(name, labels): s})."""
    counters: dict = {}
    buckets: dict = {}
    sums: dict = {}
    for key, value in raw.items():
        try:
            kind, name, labels, *rest = json.loads(key)
            labels = tuple(labels)
            if kind == "c" and name in COUNTERS:
                counters[name, labels] = int(value)
            elif kind == "b" and name in HISTOGRAMS:
                slots = buckets.setdefault((name, labels), [0] * (len(BUCKETS) + 1))
                slots[int(rest[0])] += int(value)
            elif kind == "s" and name in HISTOGRAMS:
                sums[name, labels] = float(value)
        except (ValueError, TypeError, IndexError):
            log.warning("metrics: field %r of %s is not ours; skipped", key[:100], KEY)
    return counters, buckets, sums


def _gauge_values() -> dict[str, list[tuple[tuple[str, ...], float]]]:
    """Read at scrape time: PostgreSQL for agents and checks, one pipeline for the streams."""
    from . import queue
    from .agents import count_online
    from .db import transaction
    from .protocol import STREAM_GROUP, task_stream_key

    with transaction() as conn:
        online = count_online(conn)
        open_checks = conn.execute(
            "SELECT count(*) AS n FROM checks WHERE status IN ('pending', 'in_progress')"
        ).fetchone()["n"]
        agents = conn.execute("SELECT id, name FROM agents ORDER BY name").fetchall()
    pipe = queue.get_redis().pipeline(transaction=False)
    for agent in agents:
        pipe.xlen(task_stream_key(str(agent["id"])))
        pipe.xpending(task_stream_key(str(agent["id"])), STREAM_GROUP)
    replies = pipe.execute(raise_on_error=False) if agents else []
    lengths, pending = [], []
    for i, agent in enumerate(agents):
        length, info = replies[2 * i], replies[2 * i + 1]
        lengths.append(((agent["name"],), float(length) if isinstance(length, int) else 0.0))
        pending.append(((agent["name"],), float(info["pending"]) if isinstance(info, dict) else 0.0))
    return {
        "agents_online": [((), float(online))],
        "checks_in_progress": [((), float(open_checks))],
        "agent_stream_length": lengths,
        "agent_stream_pending": pending,
    }


class RedisCollector:
    """Yields every metric family from one HGETALL plus the gauges; nothing lives in process memory."""

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        from . import queue

        counters, buckets, sums = _parse_fields(queue.get_redis().hgetall(KEY))
        for name, (help_text, label_names) in COUNTERS.items():
            family = CounterMetricFamily(PREFIX + name.removesuffix("_total"), help_text, labels=label_names)
            for (metric, labels), value in sorted(counters.items()):
                if metric == name and len(labels) == len(label_names):
                    family.add_metric(list(labels), value)
            yield family
        for name, (help_text, label_names) in HISTOGRAMS.items():
            family = HistogramMetricFamily(PREFIX + name, help_text, labels=label_names)
            for (metric, labels), slots in sorted(buckets.items()):
                if metric != name or len(labels) != len(label_names):
                    continue
                cumulative, running = [], 0
                for bound, n in zip([*map(str, BUCKETS), "+Inf"], slots, strict=True):
                    running += n
                    cumulative.append((bound, running))
                family.add_metric(list(labels), cumulative, sum_value=sums.get((name, labels), 0.0))
            yield family
        for name, samples in _gauge_values().items():
            help_text, label_names = GAUGES[name]
            family = GaugeMetricFamily(PREFIX + name, help_text, labels=label_names)
            for labels, value in samples:
                family.add_metric(list(labels), value)
            yield family


def render() -> tuple[bytes, str]:
    """The Prometheus text exposition of everything above: (body, content type)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


def exported_names() -> set[str]:
    """Every series name GET /metrics can show (the dashboard test checks its queries against it)."""
    names = {PREFIX + n for n in COUNTERS} | {PREFIX + n for n in GAUGES}
    for n in HISTOGRAMS:
        names |= {PREFIX + n + suffix for suffix in ("_bucket", "_sum", "_count")}
    return names
