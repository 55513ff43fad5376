"""Compare two `make bench` result files, metric by metric:

    .venv/bin/python -m bench.compare bench/results/A.json bench/results/B.json

Prints one row per metric both files have: A, B and B/A. Lower is better for times, CPU and memory
(`_ms`, `_s`, `_mb`, `cpu`); higher is better for rates and ratios (`per_s`, `ratio`), which the
`better` column takes into account (so a ratio where lower is better, like scenario 1's WebSocket over
polling, is named without "ratio"). Figures from a shared machine are noisy: trust ratios measured side
by side within one run over a difference between runs, and look at both files' load average.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import suppress
from pathlib import Path

from bench.results import load

HIGHER_IS_BETTER = ("per_s", "ratio", "speedup")


def higher_is_better(metric: str) -> bool:
    return any(word in metric for word in HIGHER_IS_BETTER)


def compare(a: dict, b: dict) -> list[dict]:
    """Rows {scenario, metric, a, b, ratio, better} for every metric present in both documents."""
    rows = []
    b_rows = {row["id"]: row for row in b["scenarios"]}
    for row_a in a["scenarios"]:
        row_b = b_rows.get(row_a["id"])
        if row_b is None:
            continue
        for metric, value_a in sorted(row_a["metrics"].items()):
            value_b = row_b["metrics"].get(metric)
            if value_b is None:
                continue
            ratio = round(value_b / value_a, 3) if value_a else None
            better = None
            if ratio is not None and ratio != 1:
                better = "B" if (ratio > 1) == higher_is_better(metric) else "A"
            rows.append(
                {
                    "scenario": row_a["id"],
                    "metric": metric,
                    "a": value_a,
                    "b": value_b,
                    "ratio": ratio,
                    "better": better,
                }
            )
    return rows


def render(rows: list[dict], a_meta: dict, b_meta: dict) -> str:
    def load_text(meta):
        start = (meta.get("load_average") or {}).get("start") or []
        stick = (meta.get("yardstick_ms") or {}).get("start")
        return (f"load {start[0]:.2f}" if start else "load ?") + (f", yardstick {stick} ms" if stick else "")

    lines = [
        f"A: {a_meta['date']} {a_meta['short_sha']} ({load_text(a_meta)})",
        f"B: {b_meta['date']} {b_meta['short_sha']} ({load_text(b_meta)})",
        "",
        f"{'#':>2}  {'metric':<40} {'A':>12} {'B':>12} {'B/A':>8}  better",
    ]
    for row in rows:
        ratio = f"{row['ratio']:.3f}" if row["ratio"] is not None else "-"
        lines.append(
            f"{row['scenario']:>2}  {row['metric']:<40} {row['a']:>12g} {row['b']:>12g} {ratio:>8}  "
            + (row["better"] or "")
        )
    if not rows:
        lines.append("(no metric in common)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="the earlier result file (bench/results/<date>-<sha>.json)")
    parser.add_argument("b", type=Path, help="the later one")
    args = parser.parse_args(argv)
    try:
        a, b = load(args.a), load(args.b)
    except (OSError, ValueError) as exc:
        print(f"bench.compare: {exc}", file=sys.stderr)
        return 2
    with suppress(BrokenPipeError):  # `| head`
        print(render(compare(a, b), a["meta"], b["meta"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
