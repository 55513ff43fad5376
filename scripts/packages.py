"""Install the system packages the local cloud needs (scripts/localcloud/packages.py)."""

from __future__ import annotations

import argparse
import sys

from scripts.localcloud.packages import ensure_system_packages
from scripts.localcloud.procs import ServiceError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Install the system packages the stack needs (apt, as root).")
    parser.add_argument("--browser", action="store_true", help="also Chromium, for the browser tests")
    parser.add_argument(
        "--bench", action="store_true", help="also wrk, prometheus-blackbox-exporter and GNU time, for make bench"
    )
    args = parser.parse_args(argv)
    try:
        ensure_system_packages(need_browser=args.browser, need_bench=args.bench)
    except ServiceError as exc:
        print(f"!! {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
