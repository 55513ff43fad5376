"""Build test networks of namespaces in 198.18.0.0/15 (scripts/localcloud/netlab/)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from scripts.localcloud.netlab import DEFAULT_PREFIX, build_chain, build_regions, remove_recorded, unavailable_reason


def _parse_regions(text: str) -> dict[str, float]:
    out = {}
    for item in text.split(","):
        name, _, delay = item.partition("=")
        if not name or not delay:
            raise argparse.ArgumentTypeError(f"{item!r}: expected NAME=MS")
        out[name.strip()] = float(delay)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build test networks of namespaces in 198.18.0.0/15.",
        epilog="The lab stays up until Ctrl-C / SIGTERM, then is torn down.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    chain = sub.add_parser("chain", help="client -> routers -> target")
    chain.add_argument("--prefix", default=DEFAULT_PREFIX)
    chain.add_argument("--hops", type=int, default=3)
    chain.add_argument("--delay-ms", type=float, default=0.0, help="round-trip time added on the client's link")
    regions = sub.add_parser("regions", help="regional namespaces behind delay links, a hub and a demo namespace")
    regions.add_argument("--prefix", default=DEFAULT_PREFIX)
    regions.add_argument(
        "--regions",
        type=_parse_regions,
        default="frankfurt=10,virginia=40,singapore=120",
        help="NAME=MS,... (added round-trip ms per region)",
    )
    regions.add_argument("--no-demo", action="store_true")
    for p in (chain, regions):
        p.add_argument("--ready-file", help="write the lab's description (JSON) here once it is up")
    remove = sub.add_parser("remove", help="remove what a killed lab left behind, from its --ready-file")
    remove.add_argument("ready_file", help="the description the lab wrote when it came up")
    args = parser.parse_args(argv)

    reason = unavailable_reason()
    if reason:
        print(f"netlab: {reason}", file=sys.stderr)
        return 2
    if args.command == "remove":
        for item in remove_recorded(json.loads(Path(args.ready_file).read_text())):
            print(f"removed {item}")
        return 0
    lab = (
        build_chain(args.prefix, args.hops, args.delay_ms)
        if args.command == "chain"
        else build_regions(args.prefix, args.regions, demo=not args.no_demo)
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        description = json.dumps(lab.describe(), indent=2, default=str)
        print(description, flush=True)
        if args.ready_file:
            Path(args.ready_file).write_text(description)
        while not stop.wait(0.5):  # a timed wait: signals are handled between waits
            pass
    finally:
        lab.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
