"""Scenario 3's two yardsticks below the whole agent, each in a process of its own on one asyncio loop,
at the agent's concurrency, against the same loopback target:

- `floor`: the least a probe can cost in CPython's asyncio: a non-blocking socket, `sock_connect`,
  and for HTTP one `sock_sendall` of a fixed GET and `sock_recv` to the close. No parsing, no
  timings, no result. What the agent could reach if everything of ours cost nothing.
- `check`: the agent's own check code (`agent.checks.run_check_async`, the result envelope
  included) and nothing else: no stream, no start, no delivery. The gap from `floor` to `check` is
  the checks' cost; the gap from `check` to the whole agent is the runner's (queue, batches, API).

    python -m bench.engine_floor --mode floor --kind http --port 8080 --concurrency 64 --seconds 4

prints one JSON line: {"per_s": probes per second, "cpu_ms": the process's CPU per probe}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import time

HOST = "127.0.0.1"


async def _floor_probe(kind: str, port: int, request: bytes) -> bool:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, (HOST, port))
        if kind == "tcp":
            return True
        await loop.sock_sendall(sock, request)
        head = b""
        while chunk := await loop.sock_recv(sock, 65536):
            head = head or chunk
        return head.startswith(b"HTTP/1.1 2")
    finally:
        sock.close()


def _prober(mode: str, kind: str, port: int):
    if mode == "floor":
        request = f"GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode()
        return lambda: _floor_probe(kind, port, request)
    from agent.checks import preload, run_check_async

    preload([kind])
    target, options = (f"http://{HOST}:{port}/", {}) if kind == "http" else (HOST, {"port": port})

    async def check() -> bool:
        return (await run_check_async(kind, target, options, allow_private=True))["success"]

    return check


async def _run(mode: str, kind: str, port: int, concurrency: int, seconds: float) -> dict:
    probe = _prober(mode, kind, port)
    counts = {"ok": 0, "failed": 0}
    stop_at = 0.0

    async def worker() -> None:
        while time.monotonic() < stop_at:
            counts["ok" if await probe() else "failed"] += 1

    stop_at = time.monotonic() + 0.5  # warm-up, not counted
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    counts.update(ok=0, failed=0)
    cpu0, t0 = time.process_time(), time.monotonic()
    stop_at = t0 + seconds
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    done = counts["ok"] + counts["failed"]
    return {"per_s": counts["ok"] / wall, "cpu_ms": 1000 * cpu / max(1, done), "failed": counts["failed"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("floor", "check"), required=True)
    parser.add_argument("--kind", choices=("tcp", "http"), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args(argv)
    out = asyncio.run(_run(args.mode, args.kind, args.port, args.concurrency, args.seconds))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
