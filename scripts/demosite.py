"""Serve the demo target site (HTTP, HTTPS, DNS) until SIGTERM (scripts/localcloud/demosite.py)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from scripts.localcloud.demosite import DemoSite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the demo site (HTTP, HTTPS, DNS) until SIGTERM.")
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--name", default="demo.hostchecker.test", help="the demo domain served by the DNS server")
    parser.add_argument("--http-port", type=int, default=80)
    parser.add_argument("--https-port", type=int, default=443)
    parser.add_argument("--dns-port", type=int, default=53)
    args = parser.parse_args(argv)
    site = DemoSite(args.address, args.name, args.http_port, args.https_port, args.dns_port)
    try:
        site.start()
    except OSError as exc:
        print(f"demosite: cannot listen on {args.address}: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(json.dumps(site.describe()), flush=True)
    while not stop.wait(0.5):  # a timed wait: signals are handled between waits
        pass
    site.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
