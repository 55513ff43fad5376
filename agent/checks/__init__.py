"""The checks (DESIGN §6, and mtr), one module each, behind one entry point.

    await run_check_async(check_type, target, options, *, allow_private) -> result envelope
    run_check(check_type, target, options, *, allow_private) -> the same, for callers without a loop
    capabilities() -> the check types this host can run

Both honour the per-type timeout and never raise: every failure comes back as
`{"success": false, "error": {"kind", "message"}, ...}`.

The network checks (tcp, http, dns) are coroutines: the agent runs them all on
one event loop (agent/runner.py), so a check waiting on a slow server holds a
socket, not a thread. ping, traceroute and mtr stay synchronous: each drives a raw
ICMP socket with waits bounded by its deadline, and runs on a small bounded
pool of threads (ICMP_WORKERS). `run_check` runs a network check on an event
loop of its own, made for that call on the calling thread (so in that
thread's network namespace, as scripts/netlab.py call_in relies on).

Every result's `data` also says, whatever the type (`_describe`): `host` (the
A-label form the check used) and `host_unicode` (for people), `ip_version` of
the address it talked to (the envelope's `address`; for dns the resolver), and
`assumed`: the values it chose because neither target nor options said
(chalicelib/targets.py), e.g. `{"scheme": "https", "port": 443}`.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import socket
import time
from typing import Any

from chalicelib import protocol, targets

from ..workers import DaemonPool
from .base import REAP_MARGIN_S, CheckContext, CheckFailure, failure_envelope, ip_version_of, ms_since

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


# The checks that block a thread for their whole run (raw ICMP sockets); the rest are coroutines.
BLOCKING_TYPES = frozenset({"ping", "traceroute", "mtr"})
# At most this many ping/traceroute/mtr checks run at once on the agent's loop; more wait their turn.
ICMP_WORKERS = 16
_icmp_pool: DaemonPool | None = None


def _prepare(check_type: str, target: str, options: dict | None, allow_private: bool, started: float):
    """(context, module) for a check, or raises what failure_envelope reports."""
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
    return ctx, importlib.import_module(_MODULES[check_type])


def preload(check_types: list[str]) -> list[str]:
    """Import the modules of `check_types` now, at the agent's start, not in the first check of each
    type: importing http takes about 60 ms and dns about 90 ms here, on the engine loop, which would
    hold up that first check and every check running beside it, and their timings would show it.
    Returns the modules' names."""
    names = [_MODULES[t] for t in check_types if t in _MODULES]
    for name in names:
        importlib.import_module(name)
    import gc

    # What is loaded now lives as long as the agent: out of the collector's way, so its full passes
    # do not walk the modules just imported (interleaved with lazy imports, bench scenario 4 ran
    # 2.21, 2.16 and 2.46 s against 2.93, 2.14 and 3.10 s).
    gc.freeze()
    return names


def _failed(check_type: str, target: str, started: float, exc: BaseException) -> dict:
    if not isinstance(exc, (CheckFailure, targets.TargetError, OSError, protocol.OptionError)):
        log.error("%s check of %r failed unexpectedly", check_type, target, exc_info=exc)
    return failure_envelope(started, exc)


def _finished(envelope: dict, ctx: CheckContext | None) -> dict:
    if ctx is not None and ctx.expired and not envelope["success"]:
        # Whatever the deadline made the I/O raise, the cause is the deadline.
        envelope["error"] = protocol.error(
            "timeout",
            f"{ctx.check_type} check timed out after {ctx.timeout_s:g} s ({envelope['error']['message'][:200]})",
        )
    if ctx is not None:
        _describe(envelope, ctx.check_type, ctx.target, ctx.options)
    return envelope


def _run_blocking(check_type: str, target: str, options: dict | None, allow_private: bool, started: float) -> dict:
    ctx = None
    try:
        ctx, module = _prepare(check_type, target, options, allow_private, started)
        envelope = module.run(ctx)
    except Exception as exc:  # noqa: BLE001 - the contract is: never raise
        envelope = _failed(check_type, target, started, exc)
    finally:
        if ctx is not None:
            ctx.release()
    return _finished(envelope, ctx)


async def run_check_async(check_type: str, target: str, options: dict | None, *, allow_private: bool) -> dict:
    """Run one check against `target` on the running loop; protocol.result_envelope(...)."""
    started = time.monotonic()
    if check_type in BLOCKING_TYPES:
        global _icmp_pool
        if _icmp_pool is None:
            _icmp_pool = DaemonPool(ICMP_WORKERS, "hc-icmp")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            _icmp_pool, _run_blocking, check_type, target, options, allow_private, started
        )
    ctx = None
    try:
        ctx, module = _prepare(check_type, target, options, allow_private, started)
        try:
            # The check bounds each of its waits by its deadline; this bounds the rest.
            async with asyncio.timeout_at(ctx.deadline + REAP_MARGIN_S):
                envelope = await module.run(ctx)
        except TimeoutError as exc:
            ctx.expired = True
            raise CheckFailure("timeout", f"{check_type} check timed out after {ctx.timeout_s:g} s") from exc
    except Exception as exc:  # noqa: BLE001 - the contract is: never raise
        envelope = _failed(check_type, target, started, exc)
    return _finished(envelope, ctx)


def run_check(check_type: str, target: str, options: dict | None, *, allow_private: bool) -> dict:
    """run_check_async for a caller without an event loop (tests, the CLI): same result."""
    if check_type in BLOCKING_TYPES:
        return _run_blocking(check_type, target, options, allow_private, time.monotonic())
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(run_check_async(check_type, target, options, allow_private=allow_private))
    finally:
        loop.close()


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


__all__ = ["run_check", "run_check_async", "capabilities", "icmp_mode", "CheckContext", "CheckFailure", "ms_since"]
