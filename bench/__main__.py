"""Run the benchmarks (`make bench`, `make bench S=3`; bench/README.md).

    .venv/bin/python -m bench [--scenario N[,N...]]

Uses this checkout's running `make up` stack, or brings one up and takes it down again. Writes
bench/results/<date>-<short sha>.json and .md (and LATEST.md for a run of every scenario).
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime

from bench import procstat, results
from bench.harness import ROOT, Bench, say
from bench.scenarios import MODULES, load


def git(*args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return proc.stdout.strip()


def meta(numbers: list[int]) -> dict:
    sha = git("rev-parse", "HEAD") or "unknown"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_sha": sha,
        "short_sha": sha[:7],
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "cores": os.cpu_count(),
        "load_average": {"start": procstat.load_average()},
        "yardstick_ms": {"start": procstat.yardstick_ms()},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "scenarios": numbers,
        "partial": sorted(numbers) != sorted(MODULES),
    }


def parse_scenarios(text: str | None) -> list[int]:
    if not text:
        return sorted(MODULES)
    numbers = [int(part) for part in text.replace(" ", ",").split(",") if part]
    unknown = [n for n in numbers if n not in MODULES]
    if unknown:
        raise SystemExit(f"bench: no scenario {unknown[0]}; there are {', '.join(map(str, MODULES))}")
    return numbers


def run_one(bench: Bench, number: int) -> dict:
    module = load(number)
    say(f"==> scenario {number}: {module.TITLE}")
    began = time.monotonic()
    try:
        row = module.run(bench)
    except Exception as exc:  # noqa: BLE001 - one scenario failing must not lose the others' figures
        traceback.print_exc()
        row = results.scenario_error(number, module.TITLE, module.TARGET, f"{type(exc).__name__}: {exc}"[:300])
    row["metrics"]["elapsed_s"] = round(time.monotonic() - began, 1)
    say(f"    {row['figure']}  [{results.met_mark(row['met'])}]  ({row['metrics']['elapsed_s']} s)")
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", "-s", help="only these scenarios, e.g. 3 or 1,9 (default: all)")
    args = parser.parse_args(argv)
    numbers = parse_scenarios(args.scenario)
    info = meta(numbers)
    began = time.monotonic()
    bench = Bench()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops what the bench started
    rows = []
    try:
        bench.ensure_stack()
        for number in numbers:
            rows.append(run_one(bench, number))
    finally:
        bench.close()
    info["load_average"]["end"] = procstat.load_average()
    info["yardstick_ms"]["end"] = procstat.yardstick_ms()
    info["duration_s"] = round(time.monotonic() - began, 1)
    json_path, md_path = results.write(results.document(info, rows))
    say(f"==> wrote {json_path.relative_to(ROOT)} and {md_path.relative_to(ROOT)}")
    print(md_path.read_text())
    return 0 if all(row["status"] == "ok" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
