"""Serve the built UI locally (scripts/localcloud/ui_server.py), when LocalStack's S3 website is not there."""

from __future__ import annotations

import argparse
import signal
import sys
from functools import partial
from pathlib import Path

from scripts.localcloud.ui_server import Server, SpaHandler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directory", required=True, help="the built UI (index.html and assets)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    if not (Path(args.directory) / "index.html").exists():
        print(f"ui server: no index.html in {args.directory}; build the UI with make ui", file=sys.stderr)
        return 2
    try:
        server = Server((args.host, args.port), partial(SpaHandler, directory=args.directory))
    except OSError as exc:
        print(f"ui server: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"serving {args.directory} on http://{args.host}:{args.port}/", flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
