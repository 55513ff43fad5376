"""LocalStack on the host, by hand (scripts/localcloud/localstack.py): ensure-venv, start, stop, status."""

from __future__ import annotations

import argparse
import json
import sys

from scripts.localcloud import localstack as ls
from scripts.localcloud.procs import ROOT


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m scripts.localstack",
        description="Run LocalStack 4.14.0 on the host (no Docker), Python 3.13 venv.",
    )
    p.add_argument(
        "--state-dir",
        default=str(ROOT / ".local" / "manual"),
        help="state folder; the instance's data goes to <state>/localstack/ (default: .local/manual)",
    )
    p.add_argument("--venv-dir", default=None, help="use this venv instead of the shared cache")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("ensure-venv", help="create the venv (skipped when up to date)")
    sp = sub.add_parser("start", help="start in the background and wait until ready")
    sp.add_argument("--port", type=int, default=ls.DEFAULT_PORT)
    sp.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for readiness")
    sp.add_argument("--no-venv", action="store_true", help="do not run ensure-venv first")
    sub.add_parser("stop", help="stop the instance started from this state folder")
    sub.add_parser("status", help="print status as JSON; exit 0 when running")
    args = p.parse_args(argv)
    try:
        if args.cmd == "ensure-venv":
            print(ls.ensure_venv(venv_dir=args.venv_dir))
        elif args.cmd == "start":
            if not args.no_venv:
                ls.ensure_venv(venv_dir=args.venv_dir)
            print(ls.start(args.state_dir, args.port, venv_dir=args.venv_dir, timeout=args.timeout).endpoint)
        elif args.cmd == "stop":
            ls.stop(args.state_dir)
        else:
            pid = ls.pid(args.state_dir)
            print(json.dumps({"running": pid is not None, "pid": pid}))
            return 0 if pid else 1
    except ls.LocalStackError as e:
        print(f"localstack: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
