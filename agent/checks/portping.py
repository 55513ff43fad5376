"""ping over TCP or UDP (options.protocol), for targets behind networks that drop ICMP echo.

TCP: one SYN per packet to `port`; the round trip is the time to the target's
SYN-ACK (port open) or RST (port closed), either of which proves the host is
up. UDP: one datagram per packet; the time to the service's reply or to the
target's ICMP Port Unreachable. Both use ordinary sockets (agent/checks/probes.py),
so they need no privilege at all. A packet is lost when nothing answers it
within `timeout`, or when the kernel had to resend the SYN (the time would be
the retry's, a second later).

`data` is the ICMP ping's, plus `protocol`, `port`, `replies` (how many of
each answer: syn_ack, rst, udp_reply, port_unreachable) and `port_state`
(open when the service answered, closed when only RST / Port Unreachable came).
"""

from __future__ import annotations

import time

from chalicelib import protocol, targets

from .base import CheckContext, CheckFailure, classify, rtt_stats
from .probes import Prober

OPEN_REPLIES = ("syn_ack", "udp_reply")


def run(ctx: CheckContext, address: str) -> dict:
    opts = ctx.options
    count, interval, timeout = int(opts["count"]), float(opts["interval"]), float(opts["timeout"])
    proto = opts["protocol"]
    port = targets.probe_port(ctx.target, opts)[0]
    answers: dict = {}
    sent: list[int] = []
    try:
        with Prober(address, proto, port, with_ttl=False, check_type="ping") as prober:
            _exchange(ctx, prober, count, interval, timeout, sent, answers)
    except CheckFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. ENETUNREACH on connect
        kind, message = classify(exc)
        raise CheckFailure(
            kind,
            f"{address} {proto} port {port}: {message}",
            address=address,
            data={"address": address, "protocol": proto, "port": port, "packets_sent": len(sent)},
        ) from exc
    return _result(ctx, address, proto, port, timeout, sent, answers)


def _exchange(ctx, prober: Prober, count, interval, timeout, sent, answers) -> None:
    """Send `count` probes on schedule; each is lost `timeout` s after it went, or at the deadline."""
    next_send = time.monotonic()
    while True:
        now = time.monotonic()
        if len(sent) < count and now >= next_send:
            sent.append(prober.send())
            next_send += interval
            continue
        waiting = prober.outstanding()
        for key, at in waiting.items():
            if now - at >= timeout:
                prober.expire(key)
        waiting = prober.outstanding()
        if (len(sent) == count and not waiting) or now >= ctx.deadline:
            return
        until = min([ctx.deadline, *(at + timeout for at in waiting.values())])
        if len(sent) < count:
            until = min(until, next_send)
        for answer in prober.poll(until):
            answers[answer.key] = answer


def _result(ctx, address, proto, port, timeout, sent, answers) -> dict:
    replies = [answers[k] for k in sent if k in answers and answers[k].kind == "reply"]
    errors = sorted({f"{a.responder or address}: {a.detail}" for a in answers.values() if a.kind != "reply"})
    values = [a.rtt_ms for a in replies]
    kinds: dict[str, int] = {}
    for a in replies:
        kinds[a.detail] = kinds.get(a.detail, 0) + 1
    data = {
        "address": address,
        "protocol": proto,
        "port": port,
        "packets_sent": len(sent),
        "packets_received": len(values),
        "loss_pct": round(100.0 * (len(sent) - len(values)) / len(sent), 1) if sent else 100.0,
        "rtt_ms": rtt_stats(values),
        "rtts_ms": values,
        "replies": kinds,
        "port_state": ("open" if any(k in kinds for k in OPEN_REPLIES) else "closed") if kinds else None,
        "icmp_errors": errors,
        "mode": "socket",
    }
    if not values:
        if errors:
            raise CheckFailure("unreachable", f"{address} is unreachable: {errors[0]}", data=data, address=address)
        raise CheckFailure(
            "timeout",
            f"no answer from {address} {proto} port {port} to {len(sent)} probes within {timeout:g} s",
            data=data,
            address=address,
        )
    return protocol.result_envelope(True, ctx.elapsed_ms(), address, data)
