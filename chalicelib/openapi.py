"""The OpenAPI 3.1 document served at GET /api/openapi.json.

Written by hand next to the code it describes; tests/unit/test_openapi.py
checks that every route of app.py is here (and nothing else), and
tests/integration/test_api_contract.py validates real responses against it.
"""

from __future__ import annotations

import copy
from typing import Any

from .config import get_settings
from .httpopts import MAX_BODY, MAX_HEADERS
from .protocol import (
    CHECK_STATUSES,
    CHECK_TYPES,
    ERROR_KINDS,
    MAX_ADDRESS,
    MAX_CLOCK_OFFSET_S,
    MAX_DURATION_MS,
    MAX_ERROR_MESSAGE,
    MAX_LOCATION,
    MAX_NAME,
    MAX_REGION,
    MAX_REPORTED_TASKS,
    MAX_VERSION,
    OPTION_SPECS,
    PROBE_PROTOCOLS,
    PROBED_TYPES,
    TASK_STATUSES,
)
from .verdict import LAYERS

UUID = {"type": "string", "format": "uuid"}
TIME = {"type": "string", "format": "date-time"}
NTIME = {"type": ["string", "null"], "format": "date-time"}
NSTR = {"type": ["string", "null"]}
NNUM = {"type": ["number", "null"]}


_FAILED_NEEDS_ERROR = "error {kind, message} is required when success is false"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict, required: list[str] | None = None, extra: bool = True) -> dict:
    schema = {"type": "object", "properties": props, "required": required if required is not None else list(props)}
    if not extra:
        schema["additionalProperties"] = False
    return schema


_IP_VERSION_NOTE = (
    "4 or 6: resolve the target (dns: a named resolver) to that family only; null: the first "
    "address getaddrinfo answers. Must fit an IP literal it applies to (400 otherwise)"
)
OPTION_NOTES = {
    **{(t, "ip_version"): _IP_VERSION_NOTE for t in CHECK_TYPES},
    ("dns", "record_type"): "an IP target is always a PTR lookup (stored as PTR); another type for it is a 400",
    ("http", "scheme"): "for a target without one (a bare host); https by default",
    ("http", "port"): "default: the target's port, else the scheme's (443 for a bare host)",
    ("tcp", "port"): "default: the target's port, else its URL scheme's, else 443 (a bare host, as http assumes)",
    ("http", "method"): "POST may carry `body`; OPTIONS and HEAD read no body",
    ("http", "headers"): f"at most {MAX_HEADERS} custom request headers; Content-Length, Connection, "
    "Transfer-Encoding and the like are the check's own (400). A Host header is allowed, its value under the "
    "target policy (a private name or address is a 400 blocked_target); the connection still goes only to the "
    "checked address. Authorization and Cookie values read back as ********",
    ("http", "body"): f"POST only; at most {MAX_BODY} bytes of UTF-8. Content-Type defaults to "
    "application/x-www-form-urlencoded (as curl -d) unless headers give one",
    ("http", "auth"): "HTTP basic auth {username, password}; sent to the first request's origin only. Reads of "
    "the check show password ******** (never the password)",
    ("http", "expect"): "assertions, all of which must hold; a failure is error kind assertion_failed naming "
    "the first failing one and what was seen, and data.assertions lists each {assertion, expected, passed, seen}. "
    "status replaces expected_status",
    ("http", "ocsp"): "ask for a stapled OCSP response (the status_request extension, as browsers send it) and "
    "report it in tls.ocsp; off by default, so the handshake is curl's own and the timings compare with curl's "
    "(asking changed them by ~20 ms against a Python server here); off, tls.ocsp.stapled is null",
    ("http", "http_version"): "2: offer h2 in ALPN and speak HTTP/2 (h2) when the server picks it, else HTTP/1.1 "
    "(data.http_version says which); plain http:// is always HTTP/1.1",
    ("dns", "protocol"): "udp (falls back to tcp when truncated), tcp, dot (DNS over TLS, RFC 7858) or doh "
    "(DNS over HTTPS, RFC 8484 POST); dot and doh verify the resolver's certificate against its name or address",
    ("dns", "port"): "default 53, 853 for dot, 443 for doh",
    ("dns", "doh_path"): "the DoH URL's path on the resolver",
    ("dns", "dnssec"): "set the DO bit: data.dnssec reports the AD flag, the RRSIGs and the agent's own "
    "validation of the answer against the zone's DNSKEY (status secure | insecure | bogus)",
    ("dns", "trace"): "iterate from the root servers down (as dig +trace), over udp or tcp: data.trace lists "
    "each delegation step",
    **{
        (t, "protocol"): "icmp: echo requests; tcp: a SYN to `port`, answered by SYN-ACK (open) or RST (closed), "
        "which passes networks that drop ICMP; udp: a datagram to `port`, answered by the service or by ICMP Port "
        "Unreachable. traceroute and mtr need a raw ICMP socket (CAP_NET_RAW) for every protocol; tcp and udp "
        "ping need no privilege"
        for t in PROBED_TYPES
    },
    **{
        (t, "port"): "tcp and udp only (a 400 with icmp). Default: tcp as the tcp check (the target's port, else "
        "its URL scheme's, else 443); udp the target's port, else 33434"
        for t in PROBED_TYPES
    },
    ("mtr", "count"): "rounds: every hop is probed once per round",
    ("mtr", "interval"): "seconds between rounds; a probe unanswered within 1 s is lost",
}

HEADER_NAME = {"type": "string", "pattern": r"^[!#\$%&'*+.^_`|~0-9A-Za-z-]{1,64}$"}
OPTION_SCHEMAS = {
    ("http", "headers"): {
        "type": ["object", "null"],
        "maxProperties": MAX_HEADERS,
        "additionalProperties": {"type": "string", "maxLength": 1024},
        "propertyNames": HEADER_NAME,
    },
    ("http", "auth"): {
        "type": ["object", "null"],
        "properties": {"username": {"type": "string", "maxLength": 255}, "password": {"type": "string"}},
        "required": ["username"],
        "additionalProperties": False,
    },
    ("http", "expect"): {
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": {
            "status": {
                "type": ["array", "integer", "string"],
                "items": {"type": ["integer", "string", "array"]},
                "description": 'codes or ranges: [200, "301-302"]',
            },
            "headers": {
                "type": "object",
                "additionalProperties": {"type": ["string", "boolean"]},
                "description": "header name -> true (present) or a regex (re.search over its value)",
            },
            "body_contains": {"type": "string", "maxLength": 255},
            "body_matches": {"type": "string", "maxLength": 255, "description": "a regex (re.search)"},
            "json": {
                "type": "object",
                "description": 'JSON path ($.a.b[0], $["key"]) -> the value it must equal',
            },
        },
    },
}


# What an option's Opt spec cannot say, so the schema says it and the validator enforces it
# (chalicelib/bodies.py); protocol.normalize_options holds the same rules for the agent.
OPTION_RULES: dict[tuple[str, str], dict[str, Any]] = {
    ("http", "path"): {"pattern": "^/"},
    ("dns", "doh_path"): {"pattern": "^/"},
    ("http", "expected_status"): {
        "description": "a status (200), a range as text (200-399), or [low, high]; within 100-599, low first",
        "minimum": 100,
        "maximum": 599,
        "pattern": r"^\s*\d{3}\s*(-\s*\d{3}\s*)?$",
        "items": {"type": "integer", "minimum": 100, "maximum": 599},
        "minItems": 2,
        "maxItems": 2,
    },
}
# A text that must hold something besides spaces (the services strip what they read).
NOT_BLANK = {"minLength": 1, "pattern": r"\S"}


def _option_schema(check_type: str) -> dict:
    props = {}
    for name, spec in OPTION_SPECS[check_type].items():
        kinds = spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)
        types = sorted(
            {
                {int: "integer", float: "number", str: "string", bool: "boolean", list: "array", dict: "object"}[k]
                for k in kinds
            }
        )
        if spec.nullable:
            types.append("null")
        if (check_type, name) in OPTION_SCHEMAS:
            props[name] = {**OPTION_SCHEMAS[check_type, name], "description": OPTION_NOTES[check_type, name]}
            continue
        prop: dict[str, Any] = {"type": types if len(types) > 1 else types[0]}
        if spec.choices:
            prop["enum"] = list(spec.choices) + ([None] if spec.nullable else [])
        if spec.low is not None:
            prop["minimum"], prop["maximum"] = spec.low, spec.high
        if str in kinds and not spec.choices:
            prop["maxLength"] = spec.max_len
        prop.update(OPTION_RULES.get((check_type, name), {}))
        if spec.default is not None:
            prop["default"] = spec.default
        if (check_type, name) in OPTION_NOTES:
            prop["description"] = OPTION_NOTES[check_type, name]
        props[name] = prop
    return {"type": "object", "properties": props, "additionalProperties": False}


_RTT = _obj({"min": NNUM, "avg": NNUM, "max": NNUM, "stddev": NNUM})
_LAYER = {"type": "string", "enum": list(LAYERS)}

# ping over tcp/udp, mtr, and the verdict across types (chalicelib/verdict.py).
PROBE_SCHEMAS: dict[str, Any] = {
    "PingData": {
        "type": "object",
        "description": "ping data beyond DESIGN §6. protocol tcp/udp add port, replies and port_state",
        "properties": {
            "protocol": {"type": "string", "enum": list(PROBE_PROTOCOLS)},
            "port": {"type": ["integer", "null"]},
            "mode": {"type": "string", "enum": ["raw", "unprivileged", "socket"]},
            "replies": {
                "type": "object",
                "description": "answers counted by kind: syn_ack, rst (tcp); udp_reply, port_unreachable (udp)",
                "additionalProperties": {"type": "integer"},
            },
            "port_state": {"type": ["string", "null"], "enum": ["open", "closed", None]},
            "icmp_errors": {"type": "array", "items": {"type": "string"}},
        },
    },
    "TracerouteData": {
        "type": "object",
        "description": "traceroute data beyond DESIGN §6",
        "properties": {
            "protocol": {"type": "string", "enum": list(PROBE_PROTOCOLS)},
            "port": {"type": ["integer", "null"]},
        },
    },
    "MtrHop": _obj(
        {
            "ttl": {"type": "integer"},
            "address": NSTR,
            "addresses": {"type": "array", "items": {"type": "string"}},
            "hostname": NSTR,
            "sent": {"type": "integer"},
            "received": {"type": "integer"},
            "loss_pct": {"type": "number"},
            "rtt_ms": _obj({"last": NNUM, "min": NNUM, "avg": NNUM, "max": NNUM, "stddev": NNUM}),
            "jitter_ms": _obj({"min": NNUM, "avg": NNUM, "max": NNUM}),
            "rtts_ms": {"type": "array", "items": NNUM, "description": "one per round; null where lost"},
        }
    ),
    "MtrData": _obj(
        {
            "address": {"type": "string"},
            "protocol": {"type": "string", "enum": list(PROBE_PROTOCOLS)},
            "port": {"type": ["integer", "null"]},
            "reached": {"type": "boolean"},
            "count": {"type": "integer"},
            "rounds_done": {"type": "integer"},
            "max_hops": {"type": "integer"},
            "hops": {"type": "array", "items": _ref("MtrHop")},
            "rtt_ms": {**_RTT, "description": "the target's hop (nulls when not reached)"},
            "loss_pct": {"type": "number"},
        }
    ),
    "AgentVerdict": _obj(
        {
            "agent": _ref("AgentRef"),
            "layers": {"type": "object", "additionalProperties": {"type": "string", "enum": ["ok", "fail"]}},
            "failing_layer": {"type": ["string", "null"], "enum": [*LAYERS, None]},
            "failed_by": {
                "type": "array",
                "items": _obj({"check_type": _ref("CheckType"), "layer": _LAYER, "error": _ref("TaskError")}),
            },
        }
    ),
    "Verdict": _obj(
        {
            "failing_layer": {"type": ["string", "null"], "enum": [*LAYERS, None]},
            "scope": {"type": "string", "enum": ["global", "regional", "none", "pending"]},
            "text": {"type": ["string", "null"], "description": 'e.g. "TLS fails from Singapore only"'},
            "layers": {
                "type": "object",
                "description": "per layer, the agents that failed at it (as their lowest failing layer) and passed it",
                "additionalProperties": _obj(
                    {
                        "failed": {"type": "array", "items": _ref("AgentRef")},
                        "ok": {"type": "array", "items": _ref("AgentRef")},
                    }
                ),
            },
            "agents": {"type": "array", "items": _ref("AgentVerdict")},
        },
    ),
}
PROBE_SCHEMAS["Verdict"]["description"] = (
    "which layer fails, per agent (DNS -> TCP -> TLS -> HTTP, the lowest failing one), and whether "
    "that is global (every agent) or regional (chalicelib/verdict.py); over the results in so far"
)

SCHEMAS: dict[str, Any] = {
    "Error": _obj(
        {
            "error": _obj(
                {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {
                        "type": "array",
                        "items": _obj({"field": {"type": "string"}, "message": {"type": "string"}}),
                    },
                }
            )
        }
    ),
    "ErrorKind": {"type": "string", "enum": list(ERROR_KINDS)},
    "TaskError": {
        "type": ["object", "null"],
        "properties": {"kind": _ref("ErrorKind"), "message": {"type": "string"}},
        "required": ["kind", "message"],
    },
    "CheckType": {"type": "string", "enum": list(CHECK_TYPES)},
    "CheckStatus": {"type": "string", "enum": list(CHECK_STATUSES)},
    "TaskStatus": {"type": "string", "enum": list(TASK_STATUSES)},
    "AgentRef": _obj({"id": UUID, "name": {"type": "string"}, "location": {"type": "string"}}),
    "CheckRequest": {
        "type": "object",
        "required": ["target", "checks"],
        "additionalProperties": False,
        "properties": {
            "target": {
                "type": "string",
                **NOT_BLANK,
                "maxLength": 2048,
                "description": "hostname, IP literal or http(s) URL; private and reserved literals are refused",
            },
            "checks": {"type": "array", "items": _ref("CheckType"), "minItems": 1, "maxItems": len(CHECK_TYPES)},
            "options": {
                "type": "object",
                "properties": {t: _option_schema(t) for t in CHECK_TYPES},
                "additionalProperties": False,
            },
            "agents": {
                "type": "array",
                "items": UUID,
                "maxItems": 100,
                "description": "agent ids; one that names no registered agent is a 400",
            },
            "locations": {
                "type": "array",
                "items": {"type": "string", **NOT_BLANK, "maxLength": MAX_LOCATION},
                "maxItems": 20,
                "description": "agent locations or regions (case-insensitive); one that no registered "
                "agent has is a 400",
            },
            "limit": {"type": "integer", "minimum": 1, "maximum": 100},
        },
    },
    "CheckCreated": _obj(
        {
            "check_id": UUID,
            "status": _ref("CheckStatus"),
            "error": NSTR,
            "target": {"type": "string"},
            "check_types": {"type": "array", "items": _ref("CheckType")},
            "created_at": TIME,
            "tasks": {
                "type": "array",
                "items": _obj({"task_id": UUID, "agent_id": UUID, "check_type": _ref("CheckType")}),
            },
            "agents": {"type": "array", "items": _ref("AgentRef")},
            "selection": _ref("Selection"),
        },
        required=["check_id", "status", "error", "target", "check_types", "created_at", "tasks", "agents"],
    ),
    "TaskRow": _obj(
        {
            "task_id": UUID,
            "agent": _ref("AgentRef"),
            "check_type": _ref("CheckType"),
            "status": _ref("TaskStatus"),
            "success": {"type": ["boolean", "null"]},
            "error": _ref("TaskError"),
            "data": {
                "type": ["object", "null"],
                "description": "see ResultData (all types), HttpData, DnsData, PingData, TracerouteData, MtrData",
            },
            "duration_ms": NNUM,
            "address": NSTR,
            "late": {"type": "boolean"},
            "attempts": {"type": "integer"},
            "started_at": NTIME,
            "completed_at": NTIME,
        }
    ),
    "Selection": _obj(
        {
            "agents": {"type": ["array", "null"], "items": UUID},
            "locations": {"type": ["array", "null"], "items": {"type": "string"}},
            "limit": {"type": ["integer", "null"]},
            "chosen": {"type": "array", "items": UUID},
            "requested": {
                "type": ["integer", "null"],
                "description": "agents asked for, online or not (null: a check created before this was kept)",
            },
            "shortfall": {
                "type": ["object", "null"],
                "description": "set when fewer agents were chosen than asked for",
                "properties": {"missing": {"type": "integer"}, "message": {"type": "string"}},
            },
        },
        required=["agents", "locations", "limit", "chosen"],
    ),
    "TypeSummary": _obj(
        {
            "ok": {"type": "integer"},
            "failed": {"type": "integer"},
            "pending": {"type": "integer"},
            "total": {"type": "integer"},
            "median_ms": NNUM,
        }
    ),
    "TargetInfo": {
        "type": ["object", "null"],
        "required": ["host", "host_unicode", "is_ip", "scheme", "port"],
        "description": "the target as the checks use it: host in A-label form (IDNA 2008) and for reading",
        "properties": {
            "host": {"type": "string", "description": "A-label form (xn--strae-oqa.de), or the IP literal"},
            "host_unicode": {"type": "string", "description": "Unicode form (straße.de); == host for ASCII names"},
            "is_ip": {"type": "boolean"},
            "scheme": {"type": ["string", "null"], "enum": ["http", "https", None], "description": "a URL's own"},
            "port": {"type": ["integer", "null"], "description": "given in the target"},
        },
    },
    "Assumed": {
        "type": "object",
        "description": "per check type, the values chosen because neither the target nor the "
        "options said: http {scheme, port}, tcp {port} (a bare host is https on 443 for both), dns "
        "{record_type: PTR} for an IP target. Types that assumed nothing are left out.",
        "additionalProperties": {"type": "object"},
    },
    "ResultData": {
        "type": "object",
        "description": "every result's data carries these, besides its type's own fields",
        "properties": {
            "host": {"type": "string", "description": "the A-label form the check used"},
            "host_unicode": {"type": "string"},
            "ip_version": {
                "type": ["integer", "null"],
                "enum": [4, 6, None],
                "description": "of the address the check talked to (dns: the resolver)",
            },
            "assumed": {"type": "object", "description": "as Check.assumed, for this result's type"},
        },
    },
    "HttpData": {
        "type": "object",
        "description": "http data beyond DESIGN §6. timings_ms is the sum over hops; each hop's "
        "total is its wall time (>= the sum of its phases). tls.verified is null when verify_tls is off.",
        "properties": {
            "scheme": {"type": "string", "enum": ["http", "https"]},
            "port": {"type": "integer"},
            "request": _obj(
                {
                    "method": {"type": "string"},
                    "headers": {"type": "object", "description": "the custom headers; secret values as ********"},
                    "body_bytes": {"type": ["integer", "null"]},
                    "basic_auth_user": NSTR,
                },
                extra=True,
            ),
            "assertions": {
                "type": "array",
                "description": "with options.http.expect: each assertion in order, whether it held and what was seen",
                "items": _obj(
                    {"assertion": {"type": "string"}, "expected": {}, "passed": {"type": "boolean"}, "seen": {}}
                ),
            },
            "tls": _ref("TlsView"),
            "hops": {
                "type": "array",
                "description": "every request in order: the redirects, then the last one",
                "items": _obj(
                    {
                        "url": {"type": "string"},
                        "status_code": {"type": ["integer", "null"]},
                        "address": NSTR,
                        "ip_version": {"type": ["integer", "null"]},
                        "timings_ms": {"type": "object"},
                    }
                ),
            },
        },
    },
    "TlsView": {
        "type": ["object", "null"],
        "description": "the handshake of the last hop: DESIGN §6's fields plus the full chain, OCSP stapling, "
        "the SAN/hostname match and the leaf's key",
        "properties": {
            "alpn": NSTR,
            "fingerprint_sha256": NSTR,
            "key_type": NSTR,
            "key_bits": {"type": ["integer", "null"]},
            "chain": {
                "type": "array",
                "description": "every certificate the server sent, leaf first",
                "items": _obj(
                    {
                        "subject": {"type": "string"},
                        "issuer": {"type": "string"},
                        "not_before": TIME,
                        "not_after": TIME,
                        "key_type": {"type": "string", "description": "RSA, EC, Ed25519, Ed448, DSA"},
                        "key_bits": {"type": ["integer", "null"]},
                        "curve": NSTR,
                        "signature_algorithm": NSTR,
                        "serial": {"type": "string"},
                        "fingerprint_sha256": {"type": "string"},
                        "is_ca": {"type": "boolean"},
                    },
                    required=["subject", "issuer", "fingerprint_sha256"],
                ),
            },
            "ocsp": _obj(
                {
                    "stapled": {
                        "type": ["boolean", "null"],
                        "description": "null: this agent could not ask for a staple",
                    },
                    "status": NSTR,
                    "cert_status": {"type": ["string", "null"], "enum": ["good", "revoked", "unknown", None]},
                    "this_update": NTIME,
                    "next_update": NTIME,
                    "produced_at": NTIME,
                }
            ),
            "hostname_match": _obj(
                {
                    "host": {"type": "string"},
                    "matched": {"type": ["boolean", "null"]},
                    "by": {"type": ["string", "null"], "description": "san:<name> or cn:<name> that matched"},
                }
            ),
        },
    },
    "DnsData": {
        "type": "object",
        "description": "dns data beyond DESIGN §6",
        "properties": {
            "note": {
                "type": ["string", "null"],
                "description": "e.g. 'no PTR record for <ip> (NXDOMAIN ...)', a successful result with no answers",
            },
            "transport": {
                "type": "object",
                "description": "dot/doh: {connect_ms, tls_ms, tls_version, alpn, http_status (doh)}",
            },
            "dnssec": {
                "type": "object",
                "description": "with options.dns.dnssec: {ad, rrsigs: [{covers, signer, key_tag, algorithm, "
                "expiration}], validation: {status: secure | bogus | insecure | indeterminate, signer, key_tags, "
                "error}}",
            },
            "trace": {
                "type": "array",
                "description": "with options.dns.trace: each step from the root, "
                "{zone, server, server_name, rcode, referral, ds, answers, query_time_ms}",
                "items": {"type": "object"},
            },
        },
    },
    **PROBE_SCHEMAS,
    "Check": _obj(
        {
            "check_id": UUID,
            "target": {"type": "string"},
            "check_types": {"type": "array", "items": _ref("CheckType")},
            "options": {
                "type": "object",
                "description": "every option of every type, defaults included "
                "(so the timeout and ip_version are always there)",
            },
            "target_info": _ref("TargetInfo"),
            "assumed": _ref("Assumed"),
            "selection": _ref("Selection"),
            "status": _ref("CheckStatus"),
            "error": NSTR,
            "created_at": TIME,
            "started_at": NTIME,
            "completed_at": NTIME,
            "summary": {"type": "object", "additionalProperties": _ref("TypeSummary")},
            "certificates": _ref("Certificates"),
            "verdict": _ref("Verdict"),
            "results": {"type": "array", "items": _ref("TaskRow")},
        }
    ),
    "Certificates": {
        "type": ["object", "null"],
        "description": "the leaf certificates the http results saw, grouped by SHA-256 fingerprint; differ is "
        "true when agents were shown different ones (a CDN edge, a middlebox). null: no result has a certificate",
        "required": ["differ", "leaves"],
        "properties": {
            "differ": {"type": "boolean"},
            "leaves": {
                "type": "array",
                "items": _obj(
                    {
                        "fingerprint_sha256": {"type": "string"},
                        "subject": NSTR,
                        "issuer": NSTR,
                        "agents": {"type": "array", "items": {"type": "string"}, "description": "agent names"},
                    }
                ),
            },
        },
    },
    "CheckListItem": _obj(
        {
            "check_id": UUID,
            "target": {"type": "string"},
            "check_types": {"type": "array", "items": _ref("CheckType")},
            "status": _ref("CheckStatus"),
            "error": NSTR,
            "task_count": {"type": "integer"},
            "summary": {"type": "object", "additionalProperties": _ref("TypeSummary")},
            "created_at": TIME,
            "completed_at": NTIME,
        }
    ),
    "CheckList": _obj({"items": {"type": "array", "items": _ref("CheckListItem")}, "next_cursor": NSTR}),
    "Task": {
        "allOf": [
            _ref("TaskRow"),
            _obj(
                {
                    "check_id": UUID,
                    "target": {"type": "string"},
                    "options": {"type": "object"},
                    "created_at": TIME,
                    "deadline_at": TIME,
                }
            ),
        ]
    },
    "Agent": _obj(
        {
            "id": UUID,
            "name": {"type": "string"},
            "location": {"type": "string"},
            "region": NSTR,
            "status": {"type": "string", "enum": ["online", "offline"]},
            "last_heartbeat": NTIME,
            "version": NSTR,
            "capabilities": {"type": "array", "items": _ref("CheckType")},
            "current_tasks": {"type": "integer"},
            "registered_at": TIME,
            "clock_offset_ms": {
                "type": ["number", "null"],
                "description": "the agent's clock minus the API's, as it "
                "estimates from heartbeat replies; null: not reported",
            },
            "clock_ok": {
                "type": "boolean",
                "description": f"false past {MAX_CLOCK_OFFSET_S} s: the agent refuses work and is not chosen",
            },
        },
        required=[
            "id",
            "name",
            "location",
            "region",
            "status",
            "last_heartbeat",
            "version",
            "capabilities",
            "current_tasks",
            "registered_at",
        ],
    ),
    "AgentList": _obj({"items": {"type": "array", "items": _ref("Agent")}, "next_cursor": {"type": "null"}}),
    "AgentStats": _obj(
        {
            "agent_id": UUID,
            "window_hours": {"type": "integer"},
            "stats": {
                "type": "object",
                "additionalProperties": _obj(
                    {
                        "count": {"type": "integer", "description": "tasks of this type that reached a terminal state"},
                        "ok": {"type": "integer"},
                        "target_failures": {
                            "type": "integer",
                            "description": "the target refused, timed out, did not "
                            "resolve, ... (every error kind but internal and agent_offline)",
                        },
                        "agent_failures": {
                            "type": "integer",
                            "description": "internal or agent_offline, or no result before the deadline",
                        },
                        "success_rate": NNUM,
                        "agent_failure_rate": NNUM,
                        "failures_by_kind": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "avg_ms": {**NNUM, "description": "task duration"},
                        "p95_ms": {**NNUM, "description": "task duration"},
                        "latency_avg_ms": {
                            **NNUM,
                            "description": "headline latency of successful results: HTTP total, "
                            "ping average RTT, TCP connect, DNS query time, traceroute RTT to the target",
                        },
                        "latency_p50_ms": NNUM,
                        "latency_p95_ms": NNUM,
                    }
                ),
            },
        }
    ),
    "RegisterRequest": {
        "type": "object",
        "required": ["name", "location"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", **NOT_BLANK, "maxLength": MAX_NAME},
            "location": {"type": "string", **NOT_BLANK, "maxLength": MAX_LOCATION},
            "region": {"type": "string", "maxLength": MAX_REGION},
            "version": {"type": "string", "maxLength": MAX_VERSION},
            "capabilities": {"type": "array", "items": _ref("CheckType"), "maxItems": len(CHECK_TYPES)},
            "replace": {
                "type": "boolean",
                "description": "take over an existing agent of this name, rotating its token",
            },
        },
    },
    "Registered": _obj(
        {
            "agent_id": UUID,
            "api_token": {"type": "string"},
            "name": {"type": "string"},
            "location": {"type": "string"},
            "stream": {"type": "string"},
            "group": {"type": "string"},
        }
    ),
    "HeartbeatRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "current_tasks": {"type": "integer", "minimum": 0, "maximum": MAX_REPORTED_TASKS},
            "version": {"type": "string", "maxLength": MAX_VERSION},
            "clock_offset_ms": {
                "type": "number",
                "minimum": -86400000,
                "maximum": 86400000,
                "description": "the agent's clock minus the API's (from server_time), in ms",
            },
            "capabilities": {"type": "array", "items": _ref("CheckType"), "maxItems": len(CHECK_TYPES)},
        },
    },
    "HeartbeatReply": _obj({"agent_id": UUID, "status": {"const": "online"}, "server_time": TIME}),
    "TaskStarted": _obj(
        {
            "task_id": UUID,
            "check_id": UUID,
            "check_type": _ref("CheckType"),
            "status": {"const": "in_progress"},
            "attempts": {"type": "integer"},
            "deadline_ms": {"type": "integer"},
            "deadline_at": TIME,
        }
    ),
    "StoredResult": _obj(
        {
            "success": {"type": "boolean"},
            "duration_ms": NNUM,
            "address": NSTR,
            "data": {"type": "object"},
            "error": _ref("TaskError"),
            "late": {"type": "boolean"},
        }
    ),
    "TaskFinished": {
        "allOf": [
            _ref("Error"),
            _obj(
                {
                    "task": _obj(
                        {
                            "task_id": UUID,
                            "status": _ref("TaskStatus"),
                            "error": _ref("TaskError"),
                            "result": {"oneOf": [_ref("StoredResult"), {"type": "null"}]},
                        }
                    )
                }
            ),
        ]
    },
    "ResultRequest": {
        "type": "object",
        "required": ["success"],
        "additionalProperties": False,
        "properties": {
            "success": {"type": "boolean"},
            "duration_ms": {"type": ["number", "null"], "minimum": 0, "maximum": MAX_DURATION_MS},
            "address": {"type": ["string", "null"], "maxLength": MAX_ADDRESS},
            "data": {"type": ["object", "null"]},
            "error": {
                "type": ["object", "null"],
                "required": ["kind", "message"],
                "additionalProperties": False,
                "properties": {
                    "kind": _ref("ErrorKind"),
                    "message": {"type": "string", "maxLength": MAX_ERROR_MESSAGE},
                },
            },
        },
        # A failed result says why: {kind, message}, not null.
        "if": {"properties": {"success": {"const": False}}, "required": ["success"]},
        "then": {
            "required": ["error"],
            "properties": {"error": {"type": "object", "x-error": _FAILED_NEEDS_ERROR}},
            "x-error": _FAILED_NEEDS_ERROR,
        },
    },
    "ResultAccepted": {
        "type": "object",
        "required": ["task_id", "status", "late", "duplicate"],
        "properties": {
            "task_id": UUID,
            "status": _ref("TaskStatus"),
            "late": {"type": "boolean"},
            "duplicate": {"type": "boolean"},
            "result": _ref("StoredResult"),
        },
    },
    "ResultBatchRequest": {
        "type": "object",
        "additionalProperties": False,
        "description": "at least one of results and started; a task named once per batch",
        "properties": {
            "results": {
                "type": "array",
                "maxItems": 100,
                "items": {
                    # Only the entry's shape here: each entry's fields are validated against
                    # ResultRequest on their own, so one bad entry is its own 400, not the batch's.
                    "type": "object",
                    "required": ["task_id"],
                    "properties": {"task_id": {"type": "string", "maxLength": 64}},
                    "description": "task_id plus the fields of a ResultRequest, which each entry is validated "
                    "against on its own (a bad entry is answered 400 in its place)",
                },
            },
            "started": {"type": "array", "maxItems": 100, "items": UUID},
        },
    },
    "BatchEntryAnswer": {
        "type": "object",
        "required": ["task_id", "status", "body"],
        "description": "what the single endpoint (result, start) answers for this task: its HTTP status and body",
        "properties": {
            "task_id": {"type": "string"},
            "status": {"type": "integer"},
            "body": {
                "anyOf": [_ref("ResultAccepted"), _ref("TaskStarted"), _ref("TaskFinished"), _ref("Error")],
            },
        },
    },
    "ResultBatchAnswer": {
        "type": "object",
        "required": ["results", "started"],
        "properties": {
            "results": {"type": "array", "items": _ref("BatchEntryAnswer")},
            "started": {"type": "array", "items": _ref("BatchEntryAnswer")},
        },
    },
    "Health": _obj(
        {
            "status": {"enum": ["ok", "degraded"]},
            "database": {"enum": ["up", "down"]},
            "redis": {"enum": ["up", "down"]},
            "active_agents": {"type": ["integer", "null"]},
            "version": {"type": "string"},
        }
    ),
}


def _json(schema_name: str, description: str, headers: dict | None = None) -> dict:
    out = {"description": description, "content": {"application/json": {"schema": _ref(schema_name)}}}
    if headers:
        out["headers"] = headers
    return out


def _err(description: str, headers: dict | None = None) -> dict:
    return _json("Error", description, headers)


RATE_HEADERS = {
    name: {"schema": {"type": "string"}, "description": d}
    for name, d in (
        ("X-RateLimit-Limit", "requests allowed in the window"),
        ("X-RateLimit-Remaining", "requests left in the window"),
        ("X-RateLimit-Reset", "seconds until the window resets"),
    )
}
RETRY = {"Retry-After": {"schema": {"type": "string"}, "description": "seconds to wait"}}
COMMON = {
    "429": _err("too many requests from this address", {**RATE_HEADERS, **RETRY}),
    "503": _err("a dependency is down", RETRY),
}


def _param(name: str, where: str = "path", schema: dict | None = None, description: str = "") -> dict:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema or {"type": "string"},
        "description": description,
    }


def _header(name: str, description: str) -> dict:
    return {"name": name, "in": "header", "required": True, "schema": {"type": "string"}, "description": description}


def _body(schema_name: str, required: bool = True) -> dict:
    """A JSON requestBody; chalicelib/bodies.py validates every request against exactly this."""
    return {"required": required, "content": {"application/json": {"schema": _ref(schema_name)}}}


AGENT_TOKEN = _header("X-Agent-Token", "the token from registration")
BAD = _err("bad input; details name the field")
PATHS: dict[str, Any] = {
    "/api/checks": {
        "post": {
            "operationId": "createCheck",
            "summary": "Run a check from many agents",
            "requestBody": _body("CheckRequest"),
            "responses": {
                "202": _json(
                    "CheckCreated",
                    "accepted; poll Location. With no eligible agent the "
                    "check is stored as failed and status/error say why",
                    {"Location": {"schema": {"type": "string"}}, **RATE_HEADERS},
                ),
                "400": BAD,
                **COMMON,
                "503": _err(
                    "a dependency is down (service_unavailable), or every agent that fits is over "
                    "MAX_QUEUE_WAIT_S behind on its queue (agents_busy: nothing stored, no quota spent)",
                    {**RATE_HEADERS, **RETRY},
                ),
            },
        },
        "get": {
            "operationId": "listChecks",
            "summary": "Checks, newest first (keyset pagination)",
            "parameters": [
                _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 100}),
                _param("cursor", "query", description="next_cursor of the previous page"),
                _param("target", "query"),
                _param("status", "query", {"type": "string", "enum": list(CHECK_STATUSES)}),
                {
                    **_header(
                        "X-Admin-Token",
                        "needed where the stage keeps the list private (HC_PUBLIC_LIST=false, as on prod)",
                    ),
                    "required": False,
                },
            ],
            "responses": {
                "200": _json("CheckList", "a page"),
                "400": BAD,
                "401": _err("the list is private on this stage and no admin token was given"),
                "403": _err("wrong admin token"),
                **COMMON,
            },
        },
    },
    "/api/checks/{check_id}": {
        "get": {
            "operationId": "getCheck",
            "summary": "A check with one row per task",
            "parameters": [_param("check_id", schema=UUID)],
            "responses": {"200": _json("Check", "the check"), "404": _err("no such check"), **COMMON},
        },
        "delete": {
            "operationId": "deleteCheck",
            "summary": "Delete a check (admin)",
            "parameters": [_param("check_id", schema=UUID), _header("X-Admin-Token", "the admin token")],
            "responses": {
                "204": {"description": "deleted"},
                "401": _err("no admin token"),
                "403": _err("wrong admin token"),
                "404": _err("no such check"),
                **COMMON,
            },
        },
    },
    "/api/agents/register": {
        "post": {
            "operationId": "registerAgent",
            "summary": "Register an agent; the token is shown only here",
            "parameters": [_header("X-Registration-Token", "the stage's registration token")],
            "requestBody": _body("RegisterRequest"),
            "responses": {
                "201": _json("Registered", "registered"),
                "200": _json("Registered", "replaced (replace: true); a new token"),
                "400": BAD,
                "401": _err("no registration token"),
                "403": _err("wrong registration token"),
                "409": _err("name taken"),
                **COMMON,
            },
        },
    },
    "/api/agents/heartbeat": {
        "post": {
            "operationId": "agentHeartbeat",
            "summary": "An agent is alive",
            "parameters": [AGENT_TOKEN],
            "requestBody": _body("HeartbeatRequest", required=False),
            "responses": {
                "200": _json("HeartbeatReply", "recorded"),
                "400": BAD,
                "401": _err("missing or unknown token"),
                **COMMON,
            },
        },
    },
    "/api/agents": {
        "get": {
            "operationId": "listAgents",
            "summary": "Agents with their effective status",
            "responses": {"200": _json("AgentList", "all agents"), **COMMON},
        },
    },
    "/api/agents/{agent_id}": {
        "get": {
            "operationId": "getAgent",
            "summary": "One agent",
            "parameters": [_param("agent_id", schema=UUID)],
            "responses": {"200": _json("Agent", "the agent"), "404": _err("no such agent"), **COMMON},
        },
        "delete": {
            "operationId": "retireAgent",
            "summary": "Retire an agent (admin)",
            "description": "Its stream, heartbeat and token go and its open tasks fail (agent_offline); "
            "its past results stay, and its name is free for a new registration.",
            "parameters": [_param("agent_id", schema=UUID), _header("X-Admin-Token", "the admin token")],
            "responses": {
                "204": {"description": "retired"},
                "401": _err("no admin token"),
                "403": _err("wrong admin token"),
                "404": _err("no such agent"),
                **COMMON,
            },
        },
    },
    "/api/agents/{agent_id}/stats": {
        "get": {
            "operationId": "agentStats",
            "summary": "Per check type over a window",
            "parameters": [
                _param("agent_id", schema=UUID),
                _param("hours", "query", {"type": "integer", "minimum": 1, "maximum": 720}),
            ],
            "responses": {"200": _json("AgentStats", "stats"), "400": BAD, "404": _err("no such agent"), **COMMON},
        },
    },
    "/api/tasks/results": {
        "post": {
            "operationId": "postResults",
            "summary": "Many results (and starts) of the agent's tasks in one transaction",
            "description": "Each entry is answered with the status and body its single endpoint would give, "
            "so one bad entry never hides the others; a result for a task never started implies its start. "
            'See docs/api.md, "Batches".',
            "parameters": [AGENT_TOKEN],
            "requestBody": _body("ResultBatchRequest"),
            "responses": {
                "200": _json("ResultBatchAnswer", "every entry answered, in the order given"),
                "400": BAD,
                "401": _err("missing or unknown token"),
                **COMMON,
            },
        },
    },
    "/api/tasks/{task_id}": {
        "get": {
            "operationId": "getTask",
            "summary": "One task",
            "parameters": [_param("task_id", schema=UUID)],
            "responses": {"200": _json("Task", "the task"), "404": _err("no such task"), **COMMON},
        },
    },
    "/api/tasks/{task_id}/start": {
        "post": {
            "operationId": "startTask",
            "summary": "The task's agent starts it (again after a restart)",
            "parameters": [_param("task_id", schema=UUID), AGENT_TOKEN],
            "responses": {
                "200": _json("TaskStarted", "started"),
                "401": _err("missing or unknown token"),
                "403": _err("another agent's task"),
                "404": _err("no such task"),
                "409": _json("TaskFinished", "already terminal (code task_finished); acknowledge it"),
                **COMMON,
            },
        },
    },
    "/api/tasks/{task_id}/result": {
        "post": {
            "operationId": "postResult",
            "summary": "The task's result; idempotent",
            "parameters": [_param("task_id", schema=UUID), AGENT_TOKEN],
            "requestBody": _body("ResultRequest"),
            "responses": {
                "200": _json("ResultAccepted", "stored, or already stored (duplicate: true)"),
                "400": BAD,
                "401": _err("missing or unknown token"),
                "403": _err("another agent's task"),
                "404": _err("no such task"),
                **COMMON,
            },
        },
    },
    "/health": {
        "get": {
            "operationId": "health",
            "summary": "Dependencies and active agents",
            "responses": {"200": _json("Health", "all up"), "503": _json("Health", "a dependency is down", RETRY)},
        },
    },
    "/metrics": {
        "get": {
            "operationId": "metrics",
            "summary": "Prometheus metrics (text exposition format)",
            "description": "Counters and histograms kept in Redis, so they add up across Lambda "
            "instances, plus gauges read at scrape time. Refused (401/403) unless the "
            "request carries X-Admin-Token or comes from an address inside "
            'HC_METRICS_CIDRS (default: none). See docs/api.md, "Metrics".',
            "parameters": [
                {**_header("X-Admin-Token", "the admin token; not needed inside HC_METRICS_CIDRS"), "required": False}
            ],
            "responses": {
                "200": {
                    "description": "hostchecker_* metrics",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                "401": _err("no admin token, and not inside HC_METRICS_CIDRS"),
                "403": _err("wrong admin token"),
                **COMMON,
            },
        },
    },
    "/api/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "responses": {
                "200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}
            },
        },
    },
}


# OpenAPI has no WebSocket operations, so the live-results socket is a documented extension
# (docs/api.md, "Live results"); chalicelib/live.py is the implementation.
WEBSOCKET = {
    "summary": "Live results of one check (API Gateway WebSocket API; the local stack's emulator)",
    "urls": [
        "{WS_URL}?check_id={check_id}",
        "ws://{local emulator}/api/ws/checks/{check_id} (the local emulator only, mapped to the same)",
    ],
    "handshake": 'after the socket opens, send one message ({"action": "subscribe"}); the snapshot '
    "answers it (API Gateway cannot send during $connect)",
    "server_messages": {
        "snapshot": {"type": "snapshot", "check": "the body of GET /api/checks/{id}"},
        "result": {"type": "result", "result": "one row of results, once per task that reached a terminal state"},
        "task": {"type": "task", "task_id": "uuid", "status": "in_progress", "agent": "{id, name, location}"},
        "status": {
            "type": "status",
            "status": "completed | failed",
            "summary": "as in GET",
            "verdict": "as in GET (the layer verdict over every result)",
            "completed_at": "ISO 8601",
        },
        "error": {"type": "error", "code": "4400 | 4404", "message": "what was wrong"},
    },
    "order": "snapshot first; result and task as they happen (drop a result whose task_id the snapshot "
    "already shows finished); status last, then the server closes with 1000",
    "close_codes": {
        "1000": "the check finished (after status)",
        "4400": "check_id missing or not a UUID (emulator; on AWS the error message says it)",
        "4404": "no such check (emulator; on AWS the error message says it)",
    },
}


def document(app=None) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Host Checker API",
            "version": get_settings().version,
            "description": "Check a host from agents in many places. Errors are "
            "{error: {code, message, details: [{field, message}]}}.",
        },
        "servers": [{"url": "/"}],
        "paths": copy.deepcopy(PATHS),
        "components": {"schemas": copy.deepcopy(SCHEMAS)},
        "x-websocket": copy.deepcopy(WEBSOCKET),
    }


def dump(document_: dict[str, Any]) -> str:
    """The document as committed in frontend/openapi.json (stable key order, one trailing newline)."""
    import json

    return json.dumps(document_, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    # `python -m chalicelib.openapi > frontend/openapi.json`: the UI generates its types from that file.
    import sys

    sys.stdout.write(dump(document()))
