"""traceroute: probes with rising TTL, `probes` per hop, over ICMP echo (the default),
TCP SYN or UDP to `port` (options.protocol; agent/checks/probes.py).

For each TTL the probes are sent back to back, then answers are awaited for
up to HOP_WAIT_S (less when the deadline is nearer). Silent hops are reported
as `{address: null, loss_pct: 100}`. The trace stops when the target answers
(`reached: true`: an echo reply, a SYN-ACK or RST, a UDP reply or the target's
Port Unreachable), when a router reports the target unreachable, at
`max_hops`, or at the deadline (`timeout`, with the hops found so far).
Reverse names are looked up afterwards, in parallel, with a short timeout.
Every protocol needs a raw ICMP socket (root or CAP_NET_RAW): the routers'
Time Exceeded messages come only to one.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, wait

from chalicelib import protocol, targets

from .base import CheckContext, CheckFailure, classify, resolve_checked
from .probes import Prober

HOP_WAIT_S = 1.0
REVERSE_LOOKUP_TIMEOUT_S = 1.0


def run(ctx: CheckContext) -> dict:
    opts = ctx.options
    max_hops, probes = int(opts["max_hops"]), int(opts["probes"])
    proto = opts.get("protocol") or "icmp"
    port = targets.probe_port(ctx.target, opts)[0]
    address = resolve_checked(ctx, ctx.target.host)[0]
    hops: list[dict] = []
    try:
        with Prober(address, proto, port, with_ttl=True, check_type="traceroute") as prober:
            reached, stop_reason = _trace(ctx, prober, max_hops, probes, hops)
    except CheckFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. ENETUNREACH on send
        kind, message = classify(exc)
        raise CheckFailure(
            kind, f"{address}: {message}", address=address, data={"address": address, "reached": False, "hops": hops}
        ) from exc
    result = _result(ctx, address, hops, reached, stop_reason, max_hops, probes)
    result["data"].update(protocol=proto, port=port)
    return result


def _trace(ctx, prober: Prober, max_hops, probes, hops) -> tuple[bool, str | None]:
    """Probe TTL 1, 2, ... appending to `hops`; returns (reached, why it stopped early)."""
    # Leave time for the reverse lookups at the end.
    trace_deadline = ctx.deadline - REVERSE_LOOKUP_TIMEOUT_S - 0.2
    for ttl in range(1, max_hops + 1):
        if time.monotonic() >= trace_deadline:
            return False, "timeout"
        keys = [prober.send(ttl) for _ in range(probes)]
        answers = {}
        hop_end = min(time.monotonic() + HOP_WAIT_S, trace_deadline)
        while len(answers) < probes and time.monotonic() < hop_end:
            for answer in prober.poll(hop_end):
                answers[answer.key] = answer
        for key in keys:
            prober.expire(key)
        got = [answers[k] for k in keys if k in answers]
        hops.append(_hop(ttl, probes, [(a.responder, a.rtt_ms) for a in got]))
        kinds = {a.kind for a in got}
        if "reply" in kinds:
            return True, None
        if "unreachable" in kinds:
            return False, "unreachable"
    return False, None


def _result(ctx, address, hops, reached, stop_reason, max_hops, probes) -> dict:
    _add_reverse_names(hops, min(REVERSE_LOOKUP_TIMEOUT_S, max(0.1, ctx.deadline - time.monotonic())))
    data = {"address": address, "reached": reached, "hops": hops, "max_hops": max_hops, "probes": probes}
    if reached:
        return protocol.result_envelope(True, ctx.elapsed_ms(), address, data)
    if stop_reason == "unreachable":
        raise CheckFailure(
            "unreachable",
            f"{hops[-1]['address']} reports {address} unreachable at hop {len(hops)}",
            data=data,
            address=address,
        )
    if stop_reason == "timeout":
        raise CheckFailure(
            "timeout",
            f"trace to {address} timed out after {len(hops)} hops ({ctx.timeout_s:g} s)",
            data=data,
            address=address,
        )
    raise CheckFailure("unreachable", f"{address} not reached within {max_hops} hops", data=data, address=address)


def _hop(ttl: int, probes: int, answers: list[tuple]) -> dict:
    addresses = list(dict.fromkeys(a[0] for a in answers))
    return {
        "ttl": ttl,
        "address": addresses[0] if addresses else None,
        "addresses": addresses,  # more than one when load balancing spreads the probes
        "hostname": None,
        "rtts_ms": [a[1] for a in answers],
        "loss_pct": round(100.0 * (probes - len(answers)) / probes, 1),
    }


def reverse_name(address: str, timeout: float) -> str | None:
    import dns.exception
    import dns.resolver

    try:
        resolver = dns.resolver.Resolver(configure=True)
        answer = resolver.resolve_address(address, lifetime=timeout)
        return answer[0].to_text().rstrip(".")
    except (dns.exception.DNSException, OSError, ValueError):
        return None


def _add_reverse_names(hops: list[dict], timeout: float) -> None:
    addresses = list(dict.fromkeys(h["address"] for h in hops if h["address"]))
    if not addresses:
        return
    pool = ThreadPoolExecutor(max_workers=min(8, len(addresses)), thread_name_prefix="hc-ptr")
    futures = {a: pool.submit(reverse_name, a, timeout) for a in addresses}
    wait(futures.values(), timeout=timeout + 0.2)
    pool.shutdown(wait=False, cancel_futures=True)
    names = {a: f.result() for a, f in futures.items() if f.done() and not f.cancelled()}
    for hop in hops:
        hop["hostname"] = names.get(hop["address"])
