#!/usr/bin/env python3
"""A regional delay for an agent container: its outgoing packets leave DELAY_MS late.

The compose stack's stand-in for the host mode's delay links (scripts/delaylink.py). This kernel
has no netem, so the delay is added in user space, inside the agent's own network namespace (the
compose service runs this with `network_mode: service:<agent>`, NET_ADMIN and /dev/net/tun; the
agent itself keeps only NET_RAW):

- a TUN device (IFF_TUN | IFF_NO_PI) and a routing table whose default route goes into it, used by
  locally generated packets only (`ip rule iif lo`); loopback (Docker's DNS at 127.0.0.11) stays direct;
- each packet read from the device is written back into it once it is due (a heap of due times
  and select()); the kernel then forwards it out of eth0 as usual (the agent service sets
  net.ipv4.ip_forward=1 and accept_local=1, rp_filter=0 for new devices);
- replies come straight back, so the round trip grows by DELAY_MS, once.

Because the packets are forwarded once inside the namespace, a traceroute shows the agent's own
address as a first hop. It prints `ready` once the routes are in place. Runs until SIGTERM.
"""

from __future__ import annotations

import fcntl
import heapq
import os
import select
import signal
import struct
import subprocess
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
DEVICE, TABLE = "hcdelay0", "100"


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def eth0_address() -> str:
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "dev", "eth0"], check=True, capture_output=True, text=True
    ).stdout.split()
    return out[out.index("inet") + 1].split("/")[0]


def route_through(device: str, source: str) -> None:
    ip("link", "set", device, "up")
    ip("route", "replace", "default", "dev", device, "src", source, "table", TABLE)
    ip("rule", "add", "iif", "lo", "lookup", TABLE, "pref", "100")


def relay(fd: int, delay_s: float, stop) -> None:
    due: list[tuple[float, int, bytes]] = []
    seq = 0
    while not stop():
        timeout = max(0.0, due[0][0] - time.monotonic()) if due else 0.5
        readable, _, _ = select.select([fd], [], [], timeout)
        if readable:
            heapq.heappush(due, (time.monotonic() + delay_s, seq, os.read(fd, 65535)))
            seq += 1
        now = time.monotonic()
        while due and due[0][0] <= now:
            os.write(fd, heapq.heappop(due)[2])


def main() -> int:
    delay_ms = float(os.environ.get("DELAY_MS", "0"))
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    try:
        fd = open_tun(DEVICE)
        route_through(DEVICE, eth0_address())
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        print(
            f"regional-delay: cannot set up {DEVICE} (needs NET_ADMIN and /dev/net/tun): {detail}".strip(),
            file=sys.stderr,
            flush=True,
        )
        return 2
    print(f"ready: +{delay_ms:g} ms on every outgoing packet", flush=True)
    relay(fd, delay_ms / 1000.0, lambda: bool(stopping))
    return 0


if __name__ == "__main__":
    sys.exit(main())
