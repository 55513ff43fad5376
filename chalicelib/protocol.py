"""The task protocol between the API and the agents (DESIGN §4, §6).

Check types, their options with defaults and bounds, error kinds, the task
message and the result envelope. Pure standard library: the agent imports it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

VERSION = "0.1.0"  # of the API and the agent, which ship from one tree

CHECK_TYPES = ("http", "ping", "dns", "tcp", "traceroute", "mtr")
ERROR_KINDS = (
    "dns_failure",
    "timeout",
    "refused",
    "unreachable",
    "tls_error",
    "blocked_target",
    "http_error",
    "assertion_failed",
    "internal",
    "agent_offline",
    "not_dispatched",
)
TASK_STATUSES = ("pending", "in_progress", "completed", "failed")
OPEN_TASK_STATUSES = ("pending", "in_progress")
CHECK_STATUSES = ("pending", "in_progress", "completed", "failed")
DNS_RECORD_TYPES = (
    "A",
    "AAAA",
    "CNAME",
    "MX",
    "NS",
    "TXT",
    "SOA",
    "CAA",
    "SRV",
    "PTR",
    "HTTPS",
    "SVCB",
    "DNSKEY",
    "DS",
    "NSEC",
    "ANY",
)
DNS_PROTOCOLS = ("udp", "tcp", "dot", "doh")
# The resolver port each DNS protocol uses when options.dns.port is not given.
DNS_DEFAULT_PORTS = {"udp": 53, "tcp": 53, "dot": 853, "doh": 443}
HTTP_METHODS = ("GET", "HEAD", "OPTIONS", "POST")
HTTP_VERSIONS = ("1.1", "2")
# How ping, traceroute and mtr probe: ICMP echo, a TCP SYN to `port` (answered by SYN-ACK or
# RST, so it passes ICMP filters) or a UDP datagram to `port` (answered by the service or by
# ICMP port unreachable). agent/checks/probes.py; port defaults in chalicelib/targets.py.
PROBE_PROTOCOLS = ("icmp", "tcp", "udp")
PROBED_TYPES = ("ping", "traceroute", "mtr")

# What an agent may call itself; the API refuses longer values and the agent checks
# its own settings against the same numbers before it registers.
MAX_NAME = 64
MAX_LOCATION = 64
MAX_REGION = 64
MAX_VERSION = 32
# Bounds of what agents report; the OpenAPI schemas carry them and the API enforces them there.
MAX_REPORTED_TASKS = 100_000  # heartbeat current_tasks
MAX_DURATION_MS = 24 * 3600 * 1000  # a result's duration_ms: a day
MAX_ADDRESS = 255
MAX_ERROR_MESSAGE = 2000
MAX_OPTION_TEXT = 255  # a text option (http.path, dns.resolver)

# Redis keys (DESIGN §4). Everything in Redis can be rebuilt from PostgreSQL.
STREAM_GROUP = "agent"  # the consumer group every agent's stream carries
HEARTBEAT_TTL_S = 30  # an agent is online while its last heartbeat is younger (the default)


def task_stream_key(agent_id: str) -> str:
    return f"hc:tasks:{agent_id}"


def heartbeat_key(agent_id: str) -> str:
    return f"hc:agent:{agent_id}:hb"


def check_channel(check_id: str) -> str:
    return f"hc:check:{check_id}"


# Time the API allows beyond a check's own timeout for queueing and delivery,
# before an unanswered task is declared failed.
DEADLINE_SLACK_S = 10
# An agent whose oldest unread task has waited longer than this is not given more: a task
# queued behind it would spend its slack in the queue and expire unrun (bench scenario 2).
MAX_QUEUE_WAIT_S = DEADLINE_SLACK_S / 2
# An agent whose clock is further than this from the API's refuses work, and the API
# does not choose it: its TLS verdicts and timestamps use its own clock (agent/clock.py).
MAX_CLOCK_OFFSET_S = 60


class OptionError(ValueError):
    """An option is invalid. `field` is a dotted path like options.http.timeout."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class Opt:
    default: Any
    kind: type | tuple = int
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    nullable: bool = False
    max_len: int = MAX_OPTION_TEXT  # of a string


OPTION_SPECS: dict[str, dict[str, Opt]] = {
    "http": {
        "method": Opt("GET", str, choices=HTTP_METHODS),
        "scheme": Opt("https", str, choices=("http", "https")),  # used when the target is not a URL
        "path": Opt("/", str),
        "port": Opt(None, int, 1, 65535, nullable=True),
        "expected_status": Opt("200-399", (str, int, list)),
        "follow_redirects": Opt(True, bool),
        "max_redirects": Opt(10, int, 0, 20),
        "verify_tls": Opt(True, bool),
        "timeout": Opt(15, (int, float), 1, 60),
        # chalicelib/httpopts.py validates these four and says what they mean
        "headers": Opt(None, dict, nullable=True),
        "body": Opt(None, str, nullable=True, max_len=8192),
        "auth": Opt(None, dict, nullable=True),
        "expect": Opt(None, dict, nullable=True),
        "http_version": Opt("1.1", str, choices=HTTP_VERSIONS),
        # ask for a stapled OCSP response (status_request), as browsers do; off by default so the
        # handshake is curl's own and the timings compare with curl's (agent/checks/tlsview.py)
        "ocsp": Opt(False, bool),
    },
    "ping": {
        "count": Opt(4, int, 1, 16),
        "interval": Opt(0.5, (int, float), 0.2, 5),
        "timeout": Opt(10, (int, float), 1, 60),
        "protocol": Opt("icmp", str, choices=PROBE_PROTOCOLS),
        "port": Opt(None, int, 1, 65535, nullable=True),  # tcp/udp only (chalicelib/targets.py probe_port)
    },
    "dns": {
        "record_type": Opt("A", str, choices=DNS_RECORD_TYPES),
        "resolver": Opt(None, str, nullable=True),
        "port": Opt(53, int, 1, 65535),  # 853 for dot and 443 for doh when not given
        "protocol": Opt("udp", str, choices=DNS_PROTOCOLS),
        "doh_path": Opt("/dns-query", str),
        "dnssec": Opt(False, bool),  # set the DO bit and report the AD flag and the RRSIGs
        "trace": Opt(False, bool),  # iterate from the root servers, as dig +trace
        "timeout": Opt(10, (int, float), 1, 60),
    },
    "tcp": {
        "port": Opt(None, int, 1, 65535, nullable=True),  # from the URL, else 443 (chalicelib/targets.py)
        "timeout": Opt(10, (int, float), 1, 60),
    },
    "traceroute": {
        "max_hops": Opt(30, int, 1, 64),
        "probes": Opt(3, int, 1, 5),
        "timeout": Opt(30, (int, float), 1, 120),
        "protocol": Opt("icmp", str, choices=PROBE_PROTOCOLS),
        "port": Opt(None, int, 1, 65535, nullable=True),
    },
    # Traceroute's hops probed `count` rounds `interval` seconds apart, with per-hop loss,
    # RTT statistics and jitter, as mtr (and Globalping's mtr) reports them.
    "mtr": {
        "count": Opt(10, int, 1, 30),
        "interval": Opt(0.5, (int, float), 0.2, 5),
        "max_hops": Opt(30, int, 1, 64),
        "timeout": Opt(30, (int, float), 1, 120),
        "protocol": Opt("icmp", str, choices=PROBE_PROTOCOLS),
        "port": Opt(None, int, 1, 65535, nullable=True),
    },
}

# Every type: which IP version to resolve the target (dns: the resolver) to; null = the first answer.
for _specs in OPTION_SPECS.values():
    _specs["ip_version"] = Opt(None, int, choices=(4, 6), nullable=True)

_STATUS_RANGE = re.compile(r"^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$")


def parse_expected_status(value: Any, field_name: str = "expected_status") -> list[int]:
    """`200`, `"200"`, `"200-399"` or an already parsed `[200, 399]` -> [low, high]."""
    if isinstance(value, bool):
        raise OptionError(field_name, "must be a status code or a range like 200-399")
    if isinstance(value, list) and len(value) == 2 and all(_integral(v) for v in value):
        value = f"{int(value[0])}-{int(value[1])}"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        value = str(value)
    match = _STATUS_RANGE.match(value) if isinstance(value, str) else None
    if not match:
        raise OptionError(field_name, "must be a status code or a range like 200-399")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if not (100 <= low <= high <= 599):
        raise OptionError(field_name, "must lie within 100-599, low end first")
    return [low, high]


_KIND_NAMES = {dict: "an object"}


def _integral(value: Any) -> bool:
    """An integer as JSON Schema has it: 200 and 200.0 alike, never true/false."""
    return type(value) is int or (type(value) is float and value.is_integer())


def _check_value(name: str, spec: Opt, value: Any) -> Any:
    if value is None:
        if spec.nullable:
            return None
        raise OptionError(name, "must not be null")
    kinds = spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)
    # bool is an int in Python; only accept it where bool is meant.
    if isinstance(value, bool) and bool not in kinds:
        raise OptionError(name, f"must be {' or '.join(k.__name__ for k in kinds)}")
    if isinstance(value, float) and int in kinds and float not in kinds and value.is_integer():
        value = int(value)  # JSON Schema: 2.0 is an integer
    if not isinstance(value, kinds):
        raise OptionError(name, f"must be {' or '.join(_KIND_NAMES.get(k, k.__name__) for k in kinds)}")
    if spec.choices is not None:
        if isinstance(value, str) and spec.choices and spec.choices[0].isupper():
            value = value.upper()
        elif isinstance(value, str):
            value = value.lower()
        if value not in spec.choices:
            raise OptionError(name, f"must be one of {', '.join(map(str, spec.choices))}")
    numeric = not isinstance(value, bool) and isinstance(value, (int, float))
    if spec.low is not None and numeric and not spec.low <= value <= spec.high:
        raise OptionError(name, f"must be between {spec.low:g} and {spec.high:g}")
    if isinstance(value, str) and len(value) > spec.max_len:
        raise OptionError(name, f"must be at most {spec.max_len} characters")
    return value


def normalize_options(check_type: str, given: Any, *, alone: bool = False) -> dict[str, Any]:
    """Validate one check type's options and fill in the defaults.

    `alone`: the options are validated one at a time (the CLI's flags), so the rules that
    relate two options (a port needs protocol tcp or udp) are left to the API.
    """
    prefix = f"options.{check_type}"
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise OptionError(prefix, "must be an object")
    specs = OPTION_SPECS[check_type]
    unknown = sorted(set(given) - set(specs))
    if unknown:
        raise OptionError(f"{prefix}.{unknown[0]}", f"unknown option (known: {', '.join(specs)})")
    out = {}
    for name, spec in specs.items():
        out[name] = _check_value(f"{prefix}.{name}", spec, given.get(name, spec.default))
    if check_type == "http":
        out["expected_status"] = parse_expected_status(out["expected_status"], f"{prefix}.expected_status")
        if not out["path"].startswith("/"):
            raise OptionError(f"{prefix}.path", "must start with /")
        _http_rules()(out, prefix)
    if check_type == "dns":
        if "port" not in given:
            out["port"] = DNS_DEFAULT_PORTS[out["protocol"]]
        if not out["doh_path"].startswith("/"):
            raise OptionError(f"{prefix}.doh_path", "must start with /")
        if out["trace"] and out["protocol"] in ("dot", "doh"):
            raise OptionError(f"{prefix}.trace", "asks the root and authoritative servers, over udp or tcp only")
    if check_type in PROBED_TYPES and not alone and out["protocol"] == "icmp" and out["port"] is not None:
        raise OptionError(f"{prefix}.port", "port applies only with protocol tcp or udp (ICMP has no ports)")
    return out


def _http_rules():
    """httpopts.validate_http (headers, auth, body, expect), imported late: it imports this module.
    Loaded alone by the CLI outside a checkout (cli/protocol.py) there is no package to import
    from; the CLI then leaves those rules to the API, which applies them."""
    try:
        from . import httpopts
    except ImportError:
        return lambda out, prefix: None
    return httpopts.validate_http


def check_timeout_s(check_type: str, options: dict[str, Any]) -> float:
    timeout = float(options.get("timeout", OPTION_SPECS[check_type]["timeout"].default))
    if check_type in ("ping", "mtr"):  # the packets (rounds) themselves take count * interval
        spec = OPTION_SPECS[check_type]
        timeout += options.get("count", spec["count"].default) * options.get("interval", spec["interval"].default)
    return timeout


@dataclass
class TaskMessage:
    """What the API pushes onto an agent's stream (DESIGN §4)."""

    task_id: str
    check_id: str
    agent_id: str
    check_type: str
    target: str
    options: dict[str, Any] = field(default_factory=dict)
    deadline_ms: int = 0
    created_at: str = ""

    def to_fields(self) -> dict[str, str]:
        """Redis stream fields: one JSON document under `task`."""
        # vars(), not asdict(): asdict deep-copies the options, per message (500 for a fan-out).
        return {"task": json.dumps(vars(self), separators=(",", ":"))}

    @classmethod
    def from_fields(cls, fields: dict) -> TaskMessage:
        raw = fields.get("task") if "task" in fields else fields.get(b"task")
        if isinstance(raw, bytes):
            raw = raw.decode()
        doc = json.loads(raw)
        return cls(**{k: doc[k] for k in cls.__dataclass_fields__ if k in doc})


def error(kind: str, message: str) -> dict[str, str]:
    if kind not in ERROR_KINDS:
        kind = "internal"
    return {"kind": kind, "message": message[:1000]}


def result_envelope(
    success: bool, duration_ms: float, address: str | None, data: dict | None = None, err: dict | None = None
) -> dict[str, Any]:
    """The body an agent posts to /api/tasks/{id}/result."""
    return {
        "success": bool(success),
        "duration_ms": round(float(duration_ms), 3),
        "address": address,
        "data": data or {},
        "error": err,
    }


# ---- the latency a result is compared by (GET /metrics, the agent's metrics, agent stats)

_LATENCY_PATHS = {
    "http": ("timings_ms", "total"),
    "ping": ("rtt_ms", "avg"),
    "mtr": ("rtt_ms", "avg"),
    "tcp": ("connect_ms",),
    "dns": ("query_time_ms",),
}


def headline_latency_ms(check_type: str, data: Any) -> float | None:
    """The latency users compare, from the result's data only (never the task's duration:
    a ping task lasts its packet interval, not its RTT). Traceroute: the mean RTT of the
    last hop when the target was reached; mtr: the target's average RTT (`rtt_ms`, null when
    it was not reached)."""
    if not isinstance(data, dict):
        return None
    if check_type == "traceroute":
        hops = data.get("hops") or []
        if not data.get("reached") or not hops or not isinstance(hops[-1], dict):
            return None
        rtts = [v for v in hops[-1].get("rtts_ms") or [] if _is_number(v)]
        return sum(rtts) / len(rtts) if rtts else None
    value: Any = data
    for key in _LATENCY_PATHS.get(check_type, ()):
        value = value.get(key) if isinstance(value, dict) else None
    return float(value) if _is_number(value) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
