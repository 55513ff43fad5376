"""tcp: how long a TCP handshake to the target's port takes.

Port: options.port, else the target's port, else the URL scheme's default,
else 443 for a bare host, as the http check assumes https for it
(chalicelib/targets.py; `data.assumed.port` says so). The connect goes to
the address the policy approved after resolution (options.ip_version picks
the family); the socket is closed straight after the handshake.

It runs on the agent's event loop (`run` is a coroutine): a handshake that
waits for its deadline holds a socket, not a thread.
"""

from __future__ import annotations

import asyncio
import time

from chalicelib import protocol, targets

from .base import CheckContext, CheckFailure, classify, connect_checked_async, ms_since, resolve_checked_async


def port_for(ctx: CheckContext) -> int:
    return targets.tcp_port(ctx.target, ctx.options)[0]


async def run(ctx: CheckContext) -> dict:
    port = port_for(ctx)
    t0 = time.monotonic()
    addresses = await resolve_checked_async(ctx, ctx.target.host)
    dns_ms = ms_since(t0)
    data = {"address": addresses[0], "port": port, "connect_ms": None, "dns_ms": dns_ms}
    t1 = time.monotonic()
    try:
        async with asyncio.timeout_at(ctx.deadline):
            sock, address = await connect_checked_async(ctx, addresses, port)
    except Exception as exc:  # noqa: BLE001 - classified with the data we have
        kind, message = classify(exc)
        raise CheckFailure(kind, f"{addresses[0]} port {port}: {message}", data=data, address=addresses[0]) from exc
    data["connect_ms"] = ms_since(t1)
    data["address"] = address
    sock.close()
    return protocol.result_envelope(True, ctx.elapsed_ms(), address, data)
