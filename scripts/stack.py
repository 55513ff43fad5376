"""The whole Host Checker stack on one machine (scripts/localcloud/stack.py).

  up      start everything in the background; return when it is healthy
  run     like up, then stay in the foreground; Ctrl-C stops everything
  down    stop everything this checkout's stack started (by its pid files and lab record), nothing else
  status  show what is running
  logs    follow the logs
  clean   stop this checkout's stacks and test servers and delete their PostgreSQL data (make clean)

Every step prints progress; a failed step says what failed and how to fix it, and exits non-zero.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from scripts.localcloud.stack import PROFILES, StepFailed, clean, down, print_screen, say, status, up, watch


def run_foreground(profile, **kwargs) -> int:
    stopping = []
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stopping.append(True))
    try:
        values = up(profile, **kwargs)
    except StepFailed:
        down(profile)
        raise
    print_screen(values)
    say("Press Ctrl-C to stop everything. Logs: make logs")
    try:
        watch(profile, lambda: bool(stopping))
        say("")
    finally:
        down(profile)
    return 0


def follow_logs(profile) -> int:
    logs = sorted(profile.logs.glob("*.log")) if profile.logs.exists() else []
    if not logs:
        say(f"no logs yet in {profile.logs}; start the stack with make run or make up")
        return 1
    os.execvp("tail", ["tail", "-n", "20", "-F", *map(str, logs)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument("command", choices=["up", "run", "down", "status", "logs", "clean"])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="run")
    parser.add_argument("--without-localstack", action="store_true", help="do not start LocalStack")
    parser.add_argument("--without-agents", action="store_true", help="do not start the three agents")
    parser.add_argument(
        "--without-netns",
        action="store_true",
        help="run the agents and the demo site on loopback, without regional delay links",
    )
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    kwargs = {
        "with_localstack": not args.without_localstack,
        "with_agents": not args.without_agents,
        "with_netns": not args.without_netns,
    }
    commands = {
        "up": lambda: print_screen(up(profile, **kwargs)) if profile.name == "run" else up(profile, **kwargs),
        "run": lambda: run_foreground(profile, **kwargs),
        "down": lambda: down(profile),
        "clean": clean,
        "status": lambda: status(profile),
        "logs": lambda: follow_logs(profile),
    }
    try:
        result = commands[args.command]()
    except StepFailed as exc:
        say(f"!! {exc}")
        return 1
    except KeyboardInterrupt:
        say("interrupted; stopping what was started")
        down(profile)
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
