"""The checks (DESIGN §6, and mtr), one module each, behind one entry point.

    run_check(check_type, target, options, *, allow_private) -> result envelope
    capabilities() -> the check types this host can run

`run_check` is synchronous (the runner calls it from a thread pool), honours
the per-type timeout itself and never raises: every failure comes back as
`{"success": false, "error": {"kind", "message"}, ...}`.

Every result's `data` also says, whatever the type (`_describe`): `host` (the
A-label form the check used) and `host_unicode` (for people), `ip_version` of
the address it talked to (the envelope's `address`; for dns the resolver), and
`assumed`: the values it chose because neither target nor options said
(chalicelib/targets.py), e.g. `{"scheme": "https", "port": 443}`.
"""

from __future__ import annotations

import importlib
import logging
import socket
import time
from typing import Any

from chalicelib import protocol, targets

from .base import CheckContext, CheckFailure, failure_envelope, ip_version_of, ms_since

log = logging.getLogger(__name__)

_MODULES = {name: f"agent.checks.{name}" for name in protocol.CHECK_TYPES}


def _normalize(check_type: str, options: Any) -> dict:
    """protocol.normalize_options, accepting its own output again.

    normalize_options turns http.expected_status "200-399" into [200, 399] but
    does not accept that list as input, so a second pass would fail; feed it
    back in the string form it understands.
    """
    opts = dict(options or {})
    status = opts.get("expected_status")
    if check_type == "http" and isinstance(status, (list, tuple)) and len(status) == 2:
        opts["expected_status"] = f"{int(status[0])}-{int(status[1])}"
    return protocol.normalize_options(check_type, opts)


def run_check(check_type: str, target: str, options: dict | None, *, allow_private: bool) -> dict:
    """Run one check against `target` and return protocol.result_envelope(...)."""
    started = time.monotonic()
    parsed = opts = ctx = None
    try:
        if check_type not in _MODULES:
            raise CheckFailure("internal", f"unknown check type {check_type!r} (known: {', '.join(_MODULES)})")
        opts = _normalize(check_type, options)
        parsed = targets.parse_target(target, allow_private)
        ctx = CheckContext(
            check_type,
            parsed,
            opts,
            allow_private,
            started=started,
            timeout_s=float(protocol.check_timeout_s(check_type, opts)),
        )
        module = importlib.import_module(_MODULES[check_type])
        envelope = module.run(ctx)
    except Exception as exc:  # noqa: BLE001 - the contract is: never raise
        if not isinstance(exc, (CheckFailure, targets.TargetError, OSError, protocol.OptionError)):
            log.exception("%s check of %r failed unexpectedly", check_type, target)
        envelope = failure_envelope(started, exc)
    finally:
        if ctx is not None:
            ctx.release()
    if ctx is not None and ctx.expired and not envelope["success"]:
        # Whatever the reaper's shutdown made the I/O raise, the cause is the deadline.
        envelope["error"] = protocol.error(
            "timeout", f"{check_type} check timed out after {ctx.timeout_s:g} s ({envelope['error']['message'][:200]})"
        )
    if parsed is not None:
        _describe(envelope, check_type, parsed, opts)
    return envelope


def _describe(envelope: dict, check_type: str, target: targets.Target, opts: dict) -> None:
    """The fields every result carries (see the module docstring); a check's own values win."""
    data = envelope["data"]
    data.setdefault("host", target.host)
    data.setdefault("host_unicode", target.host_unicode)
    data.setdefault("ip_version", ip_version_of(envelope.get("address")))
    data.setdefault("assumed", targets.assumed_for(check_type, target, opts))


_capabilities: list[str] | None = None


def icmp_mode() -> str | None:
    """ "raw", "unprivileged" or None: which ICMP sockets this process may open.

    Opening the socket is the whole probe; nothing is sent.
    """
    for kind, mode in ((socket.SOCK_RAW, "raw"), (socket.SOCK_DGRAM, "unprivileged")):
        try:
            socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP).close()
            return mode
        except OSError:
            continue
    return None


def capabilities(refresh: bool = False) -> list[str]:
    """The check types this host can run, in protocol order.

    ping needs raw ICMP sockets (root / CAP_NET_RAW) or unprivileged ICMP
    (net.ipv4.ping_group_range). traceroute and mtr need raw sockets, whatever
    their protocol: an unprivileged socket does not receive the routers' Time
    Exceeded replies. A capability is the type's default (ICMP) mode, so an agent
    without ICMP does not advertise ping even though ping over tcp/udp would run
    there (agent/checks/probes.py); asked anyway, it says what it lacks.
    """
    global _capabilities
    if _capabilities is None or refresh:
        mode = icmp_mode()
        caps = []
        for check_type in protocol.CHECK_TYPES:
            if check_type == "ping" and mode is None:
                continue
            if check_type in ("traceroute", "mtr") and mode != "raw":
                continue
            caps.append(check_type)
        _capabilities = caps
    return list(_capabilities)


__all__ = ["run_check", "capabilities", "icmp_mode", "CheckContext", "CheckFailure", "ms_since"]
