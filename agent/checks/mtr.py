"""mtr: traceroute's hops probed `count` rounds `interval` seconds apart, with per-hop
loss, RTT statistics and jitter (as mtr, and Globalping's mtr, report them).

Round 1 sends one probe to every TTL up to `max_hops` at once, which finds how far
the target is (the lowest TTL it answered) and where a router reports it
unreachable; later rounds probe only up to there. A probe is lost when nothing
answers it within PROBE_WAIT_S. Protocols as traceroute (icmp, tcp, udp with
`port`; agent/checks/probes.py), and so it needs a raw ICMP socket too.

Each hop: `ttl`, `address` (the one that answered most), `addresses`,
`hostname`, `sent`, `received`, `loss_pct`, `rtt_ms {last, min, avg, max,
stddev}` (population standard deviation), `jitter_ms {min, avg, max}` (the
differences between consecutive answered rounds' RTTs, as mtr's jitter) and
`rtts_ms` (one per round, null where lost). `data.rtt_ms` and `data.loss_pct`
are the target's own hop's (null when it was not reached).
"""

from __future__ import annotations

import statistics
import time
from collections import Counter

from chalicelib import protocol, targets

from .base import CheckContext, CheckFailure, classify, resolve_checked, rtt_stats
from .probes import Answer, Prober
from .traceroute import REVERSE_LOOKUP_TIMEOUT_S, _add_reverse_names

PROBE_WAIT_S = 1.0
_NO_RTT = {"last": None, "min": None, "avg": None, "max": None, "stddev": None}


def run(ctx: CheckContext) -> dict:
    opts = ctx.options
    rounds, interval, max_hops = int(opts["count"]), float(opts["interval"]), int(opts["max_hops"])
    proto = opts.get("protocol") or "icmp"
    port = targets.probe_port(ctx.target, opts)[0]
    address = resolve_checked(ctx, ctx.target.host)[0]
    state = _State(max_hops, rounds)
    try:
        with Prober(address, proto, port, with_ttl=True, check_type="mtr") as prober:
            timed_out = _probe_rounds(ctx, prober, state, interval)
    except CheckFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. ENETUNREACH on send
        kind, message = classify(exc)
        raise CheckFailure(kind, f"{address}: {message}", address=address, data={"address": address}) from exc
    hops = state.hops()
    _add_reverse_names(hops, min(REVERSE_LOOKUP_TIMEOUT_S, max(0.1, ctx.deadline - time.monotonic())))
    target_hop = hops[-1] if state.reached_ttl else None
    data = {
        "address": address,
        "protocol": proto,
        "port": port,
        "reached": target_hop is not None,
        "count": rounds,
        "rounds_done": state.rounds_done,
        "max_hops": max_hops,
        "hops": hops,
        "rtt_ms": target_hop["rtt_ms"] if target_hop else dict(_NO_RTT),
        "loss_pct": target_hop["loss_pct"] if target_hop else 100.0,
    }
    if target_hop:
        return protocol.result_envelope(True, ctx.elapsed_ms(), address, data)
    if state.unreachable_ttl:
        hop = hops[-1]
        raise CheckFailure(
            "unreachable",
            f"{hop['address']} reports {address} unreachable at hop {hop['ttl']}",
            data=data,
            address=address,
        )
    if timed_out:
        raise CheckFailure(
            "timeout", f"mtr to {address} timed out after {state.rounds_done} rounds", data=data, address=address
        )
    raise CheckFailure("unreachable", f"{address} not reached within {max_hops} hops", data=data, address=address)


class _State:
    """Every probe's answer, by round and TTL, and how far the target turned out to be."""

    def __init__(self, max_hops: int, rounds: int):
        self.max_hops = max_hops
        self.rounds = rounds
        self.rounds_done = 0
        self.sent: dict[int, tuple[int, int]] = {}  # key -> (round, ttl)
        self.answers: dict[tuple[int, int], Answer] = {}  # (round, ttl) -> answer
        self.reached_ttl: int | None = None
        self.unreachable_ttl: int | None = None

    @property
    def limit(self) -> int:
        return min(self.reached_ttl or self.max_hops, self.unreachable_ttl or self.max_hops)

    def record(self, answer: Answer) -> None:
        round_no, ttl = self.sent[answer.key]
        self.answers[(round_no, ttl)] = answer
        if answer.kind == "reply":
            self.reached_ttl = min(ttl, self.reached_ttl or ttl)
        elif answer.kind == "unreachable":
            self.unreachable_ttl = min(ttl, self.unreachable_ttl or ttl)

    def hops(self) -> list[dict]:
        last = self.limit
        if not self.reached_ttl and not self.unreachable_ttl:
            # Not reached: up to the last hop that answered anything, and one silent hop after it.
            answered = [ttl for (_, ttl) in self.answers]
            last = min(self.max_hops, max(answered, default=0) + 1)
        return [self._hop(ttl) for ttl in range(1, last + 1)]

    def _hop(self, ttl: int) -> dict:
        rounds = sorted({r for (r, t) in self.sent.values() if t == ttl})
        got = [self.answers.get((r, ttl)) for r in rounds]
        rtts = [a.rtt_ms if a else None for a in got]
        values = [v for v in rtts if v is not None]
        responders = Counter(a.responder for a in got if a and a.responder)
        diffs = [abs(b - a) for a, b in zip(values, values[1:], strict=False)]
        return {
            "ttl": ttl,
            "address": responders.most_common(1)[0][0] if responders else None,
            "addresses": list(responders),
            "hostname": None,
            "sent": len(rounds),
            "received": len(values),
            "loss_pct": round(100.0 * (len(rounds) - len(values)) / len(rounds), 1) if rounds else 100.0,
            "rtt_ms": {"last": values[-1], **rtt_stats(values)} if values else dict(_NO_RTT),
            "jitter_ms": {
                "min": round(min(diffs), 3),
                "avg": round(statistics.fmean(diffs), 3),
                "max": round(max(diffs), 3),
            }
            if diffs
            else {"min": None, "avg": None, "max": None},
            "rtts_ms": rtts,
        }


def _probe_rounds(ctx, prober: Prober, state: _State, interval: float) -> bool:
    """Send the rounds on schedule and collect answers; True when the deadline cut it short."""
    end = ctx.deadline - REVERSE_LOOKUP_TIMEOUT_S - 0.2
    next_round = time.monotonic()
    while True:
        now = time.monotonic()
        if state.rounds_done < state.rounds and now >= next_round:
            for ttl in range(1, state.limit + 1):
                state.sent[prober.send(ttl)] = (state.rounds_done, ttl)
            state.rounds_done += 1
            next_round += interval
            continue
        for key, at in prober.outstanding().items():
            if now - at >= PROBE_WAIT_S or state.sent[key][1] > state.limit:
                prober.expire(key)
        waiting = prober.outstanding()
        if state.rounds_done == state.rounds and not waiting:
            return False
        if now >= end:
            return True
        until = min([end, *(at + PROBE_WAIT_S for at in waiting.values())])
        if state.rounds_done < state.rounds:
            until = min(until, next_round)
        for answer in prober.poll(until):
            state.record(answer)
