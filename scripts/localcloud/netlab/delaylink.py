"""A user-space delay link: two TUN devices, packets copied between them late.

This kernel has no netem, so latency is added in user space (DESIGN §2):

- open two TUN devices (`/dev/net/tun`, IFF_TUN | IFF_NO_PI);
- move each into its network namespace (`ip link set DEV netns NS`); the file
  descriptors keep working after the move;
- give each a point-to-point address (`ip addr add LOCAL peer PEER`);
- copy every packet read from one device to the other once it is due, using
  a heap of due times and select().

`--delay-ms` is the round-trip time the link adds: each direction holds a
packet for half of it, so a ping across the link gets `delay_ms` slower.
`--loss-pct` drops that share of packets at random (default none).

The TUN devices belong to this process: they vanish when it exits, wherever
they were moved. After setting up, it prints one line `ready` on stdout, so
the parent can wait for that instead of sleeping.

    python -m scripts.localcloud.netlab.delaylink --delay-ms 20 \\
        --end ns1:tunA:198.18.0.1:198.18.0.2 --end ns2:tunB:198.18.0.2:198.18.0.1

An end is NS:DEV:LOCAL:PEER; an empty NS (or `-`) keeps that device in the
namespace this process runs in. `--tag` is free text for finding the process.
"""

from __future__ import annotations

import argparse
import fcntl
import heapq
import os
import random
import select
import signal
import struct
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_PACKET = 65535


@dataclass(frozen=True)
class End:
    ns: str | None
    dev: str
    local: str
    peer: str

    @classmethod
    def parse(cls, text: str) -> End:
        parts = text.split(":")
        if len(parts) != 4 or not parts[1] or not parts[2] or not parts[3]:
            raise argparse.ArgumentTypeError(f"{text!r}: expected NS:DEV:LOCAL:PEER")
        ns = parts[0] if parts[0] not in ("", "-") else None
        if len(parts[1]) > 15:
            raise argparse.ArgumentTypeError(f"{parts[1]!r}: interface names are at most 15 characters")
        return cls(ns, parts[1], parts[2], parts[3])

    def spec(self) -> str:
        return f"{self.ns or '-'}:{self.dev}:{self.local}:{self.peer}"


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    os.set_blocking(fd, False)
    return fd


def _ip(*args: str, ns: str | None = None) -> None:
    argv = ["ip", *(["-n", ns] if ns else []), *args]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")


def configure(end: End) -> None:
    if end.ns:
        _ip("link", "set", end.dev, "netns", end.ns)
    _ip("addr", "add", end.local, "peer", end.peer, "dev", end.dev, ns=end.ns)
    _ip("link", "set", end.dev, "up", ns=end.ns)


def pump(fd_a: int, fd_b: int, one_way_s: float, loss: float = 0.0, stop=lambda: False) -> None:
    """Copy packets a->b and b->a, each `one_way_s` after it was read."""
    other = {fd_a: fd_b, fd_b: fd_a}
    due: list[tuple[float, int, int, bytes]] = []  # (due time, order, out fd, packet)
    order = 0
    while not stop():
        timeout = max(0.0, due[0][0] - time.monotonic()) if due else None
        readable, _, _ = select.select([fd_a, fd_b], [], [], timeout)
        for fd in readable:
            while True:
                try:
                    packet = os.read(fd, MAX_PACKET)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break  # device going down
                if not packet:
                    break
                if loss and random.random() < loss:
                    continue
                heapq.heappush(due, (time.monotonic() + one_way_s, order, other[fd], packet))
                order += 1
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, _, out, packet = heapq.heappop(due)
            with suppress(OSError):  # the far device is down or full: the packet is lost, as on a wire
                os.write(out, packet)


def _raise_priority() -> None:
    """Wake up on time even when the machine is busy: real-time FIFO, else a lower nice.

    The pump sleeps in select() between packets, so this costs nothing when
    idle; the kernel's RT throttling still leaves the CPUs to others under a flood.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except (OSError, AttributeError):
        with suppress(OSError):
            os.nice(-10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument("--end", type=End.parse, action="append", required=True, help="NS:DEV:LOCAL:PEER, given twice")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="added round-trip time in ms (half each way)")
    parser.add_argument("--loss-pct", type=float, default=0.0, help="share of packets dropped, 0-100")
    parser.add_argument("--tag", default="", help="free text to recognise this process by")
    args = parser.parse_args(argv)
    if len(args.end) != 2:
        parser.error("give --end exactly twice")
    if args.delay_ms < 0 or not 0 <= args.loss_pct <= 100:
        parser.error("--delay-ms must be >= 0 and --loss-pct within 0-100")

    def stop(*_):
        raise SystemExit(0)  # interrupts select(); the finally below closes the devices

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    fds = []
    try:
        for end in args.end:
            fds.append(open_tun(end.dev))
        for end in args.end:
            configure(end)
    except (OSError, RuntimeError) as exc:
        print(f"delaylink: setup failed: {exc}", file=sys.stderr, flush=True)
        return 1
    _raise_priority()
    print("ready", flush=True)
    try:
        pump(fds[0], fds[1], args.delay_ms / 2000.0, args.loss_pct / 100.0)
    finally:
        for fd in fds:
            os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
