"""The bench's probe targets on loopback, in a process of their own (so they never share an
interpreter lock with what is measured):

- `tcp`: accepts and closes (TCP connect checks);
- `http`: `GET /` answers 200 at once, `GET /slow?ms=N` after N ms (scenario 4's 1 s server).

    python -m bench.targets --ready-file F     # writes {"tcp": port, "http": port} to F, runs until killed
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from bench.minihttp import serve

HOST = "127.0.0.1"


class AcceptClose(asyncio.Protocol):
    def connection_made(self, transport):
        transport.close()


async def http_handler(method: str, path: str, body: bytes):
    url = urlsplit(path)
    if url.path == "/slow":
        ms = int((parse_qs(url.query).get("ms") or ["1000"])[0])
        await asyncio.sleep(ms / 1000)
    return 200, b"ok\n", False


def fast_handler(method: str, path: str, body: bytes):
    url = urlsplit(path)
    if url.path == "/slow":
        return http_handler(method, path, body)
    return 200, b"ok\n", False


async def main_async(ready_file: Path) -> None:
    loop = asyncio.get_running_loop()
    tcp = await loop.create_server(AcceptClose, HOST, 0, backlog=4096)
    http = await serve(fast_handler, HOST, 0)
    ports = {"tcp": tcp.sockets[0].getsockname()[1], "http": http.sockets[0].getsockname()[1]}
    tmp = ready_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(ports))
    tmp.replace(ready_file)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the bench's loopback probe targets")
    parser.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args(argv)
    asyncio.run(main_async(args.ready_file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
