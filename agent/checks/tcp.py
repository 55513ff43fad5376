"""tcp: how long a TCP handshake to the target's port takes.

Port: options.port, else the target's port, else the URL scheme's default,
else 443 for a bare host, as the http check assumes https for it
(chalicelib/targets.py; `data.assumed.port` says so). The connect goes to
the address the policy approved after resolution (options.ip_version picks
the family); the socket is closed straight after the handshake.
"""

from __future__ import annotations

import time

from chalicelib import protocol, targets

from .base import CheckContext, CheckFailure, classify, connect_checked, ms_since, resolve_checked


def port_for(ctx: CheckContext) -> int:
    return targets.tcp_port(ctx.target, ctx.options)[0]


def run(ctx: CheckContext) -> dict:
    port = port_for(ctx)
    t0 = time.monotonic()
    addresses = resolve_checked(ctx, ctx.target.host)
    dns_ms = ms_since(t0)
    data = {"address": addresses[0], "port": port, "connect_ms": None, "dns_ms": dns_ms}
    t1 = time.monotonic()
    try:
        sock, address = connect_checked(ctx, addresses, port)
    except Exception as exc:  # noqa: BLE001 - classified with the data we have
        kind, message = classify(exc)
        raise CheckFailure(kind, f"{addresses[0]} port {port}: {message}", data=data, address=addresses[0]) from exc
    data["connect_ms"] = ms_since(t1)
    data["address"] = address
    ctx.close(sock)
    return protocol.result_envelope(True, ctx.elapsed_ms(), address, data)
