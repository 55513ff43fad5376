"""traceroute: ICMP echo with rising TTL, `probes` probes per hop.

For each TTL the probes are sent back to back, then answers are awaited for
up to HOP_WAIT_S (less when the deadline is nearer). Silent hops are reported
as `{address: null, loss_pct: 100}`. The trace stops when the target answers
(`reached: true`), when a router reports the target unreachable, at
`max_hops`, or at the deadline (`timeout`, with the hops found so far).
Reverse names are looked up afterwards, in parallel, with a short timeout.
Needs raw ICMP sockets: an unprivileged ICMP socket does not receive the
routers' Time Exceeded messages.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, wait

from icmplib import ICMPRequest
from icmplib.exceptions import TimeoutExceeded

from chalicelib import protocol

from . import icmp
from .base import CheckContext, CheckFailure, classify, resolve_checked

HOP_WAIT_S = 1.0
REVERSE_LOOKUP_TIMEOUT_S = 1.0
SEQ_STRIDE = 8  # sequence = ttl * SEQ_STRIDE + probe: unique per probe in one trace


def run(ctx: CheckContext) -> dict:
    opts = ctx.options
    max_hops, probes = int(opts["max_hops"]), int(opts["probes"])
    address = resolve_checked(ctx, ctx.target.host)[0]
    family = icmp.family_of(address)
    sock = icmp.open_socket(address, raw_only=True)
    ident = icmp.new_identifier()
    hops: list[dict] = []
    try:
        reached, stop_reason = _trace(ctx, sock, address, family, ident, max_hops, probes, hops)
    except CheckFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. ENETUNREACH on send
        kind, message = classify(exc)
        raise CheckFailure(
            kind, f"{address}: {message}", address=address, data={"address": address, "reached": False, "hops": hops}
        ) from exc
    return _result(ctx, address, hops, reached, stop_reason, max_hops, probes)


def _trace(ctx, sock, address, family, ident, max_hops, probes, hops) -> tuple[bool, str | None]:
    """Probe TTL 1, 2, ... appending to `hops`; returns (reached, why it stopped early)."""
    reached = False
    stop_reason = None
    # Leave time for the reverse lookups at the end.
    trace_deadline = ctx.deadline - REVERSE_LOOKUP_TIMEOUT_S - 0.2
    with sock:
        for ttl in range(1, max_hops + 1):
            if time.monotonic() >= trace_deadline:
                stop_reason = "timeout"
                break
            requests = {}
            for probe in range(probes):
                request = ICMPRequest(address, ident, ttl * SEQ_STRIDE + probe, ttl=ttl)
                sock.send(request)
                requests[request.sequence] = request
            answers: dict[int, tuple] = {}
            hop_end = min(time.monotonic() + HOP_WAIT_S, trace_deadline)
            while len(answers) < probes:
                left = hop_end - time.monotonic()
                if left <= 0:
                    break
                try:
                    reply = sock.receive(None, timeout=left)
                except TimeoutExceeded:
                    break
                if (
                    reply.id == ident
                    and reply.sequence in requests
                    and reply.sequence not in answers
                    and reply.type in icmp.ACCEPTED_TYPES[family]
                ):
                    rtt = round((reply.time - requests[reply.sequence].time) * 1000, 3)
                    answers[reply.sequence] = (reply.source, rtt, reply.type)
            hop = _hop(ttl, probes, [answers[s] for s in sorted(answers)])
            hops.append(hop)
            types = {a[2] for a in answers.values()}
            if icmp.ECHO_REPLY[family] in types:
                reached = True
                break
            if types - {icmp.TIME_EXCEEDED[family]}:
                stop_reason = "unreachable"
                break
    return reached, stop_reason


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
