"""ping: ICMP echo, `count` packets `interval` seconds apart (protocol tcp or udp:
agent/checks/portping.py, the same `data` plus the port's answers).

A packet is lost when no reply arrives within `timeout` seconds of it being
sent; the check waits for the stragglers after the last send, never past
timeout + count x interval overall (protocol.check_timeout_s). Raw sockets
as root or with CAP_NET_RAW, unprivileged ICMP sockets where the system
allows them; neither gives `kind: internal`.

rtt_ms.stddev is the population standard deviation, as ping's "mdev".
"""

from __future__ import annotations

import time

from icmplib import ICMPRequest
from icmplib.exceptions import TimeoutExceeded

from chalicelib import protocol

from . import icmp, portping
from .base import CheckContext, CheckFailure, classify, resolve_checked, rtt_stats


def run(ctx: CheckContext) -> dict:
    opts = ctx.options
    count, interval, timeout = int(opts["count"]), float(opts["interval"]), float(opts["timeout"])
    address = resolve_checked(ctx, ctx.target.host)[0]
    if opts.get("protocol", "icmp") != "icmp":
        return portping.run(ctx, address)
    family = icmp.family_of(address)
    sock = icmp.open_socket(address)
    ident = icmp.new_identifier()
    requests: dict[int, ICMPRequest] = {}
    rtts: dict[int, float] = {}
    unreachable: dict[int, str] = {}
    try:
        _exchange(ctx, sock, address, family, ident, count, interval, timeout, requests, rtts, unreachable)
    except CheckFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. ENETUNREACH on send
        kind, message = classify(exc)
        raise CheckFailure(
            kind, f"{address}: {message}", address=address, data={"address": address, "packets_sent": len(requests)}
        ) from exc
    return _result(ctx, sock, address, timeout, requests, rtts, unreachable)


def _exchange(ctx, sock, address, family, ident, count, interval, timeout, requests, rtts, unreachable) -> None:
    """Send `count` echo requests on schedule; collect replies until all are in or the time is up."""
    with sock:
        next_send = time.monotonic()
        end = None
        while True:
            now = time.monotonic()
            if len(requests) < count and now >= next_send:
                seq = len(requests)
                request = ICMPRequest(address, ident, seq)
                sock.send(request)
                ident = request.id  # unprivileged sockets get their id from the kernel
                requests[seq] = request
                next_send += interval
                if len(requests) == count:
                    end = min(time.monotonic() + timeout, ctx.deadline)
                continue
            if len(rtts) + len(unreachable) == count:
                break
            wait_until = next_send if len(requests) < count else end
            wait = min(wait_until, ctx.deadline) - now
            if wait <= 0:
                if len(requests) == count or now >= ctx.deadline:
                    break
                continue
            try:
                reply = sock.receive(None, timeout=wait)
            except TimeoutExceeded:
                continue
            if reply.id != ident or reply.sequence not in requests or reply.type not in icmp.ACCEPTED_TYPES[family]:
                continue
            if reply.sequence in rtts or reply.sequence in unreachable:
                continue  # a duplicate
            if reply.type == icmp.ECHO_REPLY[family]:
                rtts[reply.sequence] = round((reply.time - requests[reply.sequence].time) * 1000, 3)
            else:
                kind = "time exceeded" if reply.type == icmp.TIME_EXCEEDED[family] else "destination unreachable"
                unreachable[reply.sequence] = f"{reply.source}: {kind} (code {reply.code})"


def _result(ctx, sock, address, timeout, requests, rtts, unreachable) -> dict:
    sent = len(requests)
    values = [rtts[s] for s in sorted(rtts)]
    data = {
        "address": address,
        "packets_sent": sent,
        "packets_received": len(values),
        "loss_pct": round(100.0 * (sent - len(values)) / sent, 1) if sent else 100.0,
        "rtt_ms": rtt_stats(values),
        "rtts_ms": values,
        "icmp_errors": sorted(set(unreachable.values())),
        "mode": "raw" if sock.is_privileged else "unprivileged",
        "protocol": "icmp",
    }
    if not values:
        if unreachable:
            raise CheckFailure(
                "unreachable", f"{address} is unreachable: {data['icmp_errors'][0]}", data=data, address=address
            )
        raise CheckFailure(
            "timeout", f"no reply from {address} to {sent} packets within {timeout:g} s", data=data, address=address
        )
    return protocol.result_envelope(True, ctx.elapsed_ms(), address, data)
