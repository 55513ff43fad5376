"""The result document of one `make bench` run, its file names and its markdown table (pure: no I/O
beyond `write`, unit-tested).

A document is JSON:

    {"schema": 1,
     "meta": {"date", "git_sha", "short_sha", "branch", "dirty", "cores", "load_average": {"start", "end"},
              "yardstick_ms": {"start", "end"}, "python", "platform", "duration_s", "scenarios"},
     "scenarios": [{"id", "title", "status": "ok" | "error", "figure", "target", "met": true | false | null,
                    "notes", "metrics": {name: number}, "error"?}]}

`metrics` is flat (name -> number) so that two documents compare key by key (bench/compare.py).
"""

from __future__ import annotations

import json
from pathlib import Path

SCHEMA = 1
RESULTS_DIR = Path(__file__).resolve().parent / "results"
COLUMNS = ("#", "scenario", "figure", "target", "met?", "notes / bottleneck")


def scenario_result(
    number: int,
    title: str,
    figure: str,
    target: str,
    met: bool | None,
    notes: str = "",
    metrics: dict | None = None,
) -> dict:
    """One row of the table, with the numbers behind it."""
    return {
        "id": number,
        "title": title,
        "status": "ok",
        "figure": figure,
        "target": target,
        "met": met,
        "notes": notes,
        "metrics": {
            k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        },
    }


def scenario_error(number: int, title: str, target: str, error: str) -> dict:
    """A scenario that could not run: the table says why instead of a figure."""
    row = scenario_result(number, title, "not measured", target, None, f"error: {error}")
    row["status"] = "error"
    row["error"] = error
    return row


def document(meta: dict, scenarios: list[dict]) -> dict:
    return {"schema": SCHEMA, "meta": meta, "scenarios": sorted(scenarios, key=lambda s: s["id"])}


def validate(doc: dict) -> list[str]:
    """What is wrong with a document's shape (empty when nothing is)."""
    problems = []
    if doc.get("schema") != SCHEMA:
        problems.append(f"schema is {doc.get('schema')!r}, expected {SCHEMA}")
    meta = doc.get("meta") or {}
    for key in ("date", "git_sha", "short_sha", "cores", "load_average", "python"):
        if key not in meta:
            problems.append(f"meta.{key} is missing")
    for row in doc.get("scenarios") or []:
        for key in ("id", "title", "status", "figure", "target", "met", "notes", "metrics"):
            if key not in row:
                problems.append(f"scenario {row.get('id')}: {key} is missing")
        for name, value in (row.get("metrics") or {}).items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                problems.append(f"scenario {row.get('id')}: metric {name} is not a number")
    return problems


def file_stem(meta: dict) -> str:
    """`<date>-<short sha>`, plus the scenarios when the run was not all of them."""
    stem = f"{meta['date'][:10]}-{meta['short_sha']}"
    if meta.get("partial"):
        stem += "-s" + "-".join(str(n) for n in meta.get("scenarios", []))
    return stem


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def met_mark(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "n/a"}[met]


def _yardstick(meta: dict) -> str:
    """The CPU yardstick sentence (bench/procstat.py yardstick_ms), or nothing for older documents."""
    stick = meta.get("yardstick_ms") or {}
    if not stick.get("start"):
        return ""
    end = f", {stick['end']} ms at the end" if stick.get("end") else ""
    return (
        f"CPU yardstick (one fixed Python loop, best of 3): {stick['start']} ms at the start{end}; "
        "figures compare across runs only next to it. "
    )


def render_markdown(doc: dict) -> str:
    meta = doc["meta"]
    load = meta.get("load_average") or {}
    start = " ".join(f"{x:.2f}" for x in load.get("start", []))
    end = " ".join(f"{x:.2f}" for x in load.get("end", []))
    lines = [
        f"# Benchmarks: {meta['date']} at {meta['short_sha']}"
        + (" (uncommitted changes)" if meta.get("dirty") else ""),
        "",
        f"{meta.get('cores')} cores, load average {start} at the start and {end} at the end (1, 5, 15 min); "
        f"Python {meta.get('python')}; {meta.get('duration_s', 0):.0f} s in all. "
        f"{_yardstick(meta)}"
        f"Branch {meta.get('branch', '?')}, commit {meta['git_sha']}. "
        "The machine is shared, so figures are noisy; comparisons are ratios measured side by side in one run.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for row in doc["scenarios"]:
        cells = (row["id"], row["title"], row["figure"], row["target"], met_mark(row["met"]), row["notes"])
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", "How to read and re-run this: [bench/README.md](../README.md).", ""]
    return "\n".join(lines)


def write(doc: dict, directory: Path = RESULTS_DIR) -> tuple[Path, Path]:
    """`<stem>.json` and `<stem>.md`; a full run also becomes LATEST.md and LATEST.json."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = file_stem(doc["meta"])
    json_path, md_path = directory / f"{stem}.json", directory / f"{stem}.md"
    json_path.write_text(json.dumps(doc, indent=2) + "\n")
    markdown = render_markdown(doc)
    md_path.write_text(markdown)
    if not doc["meta"].get("partial"):
        (directory / "LATEST.md").write_text(markdown)
        (directory / "LATEST.json").write_text(json.dumps(doc, indent=2) + "\n")
    return json_path, md_path


def load(path: Path) -> dict:
    doc = json.loads(Path(path).read_text())
    problems = validate(doc)
    if problems:
        raise ValueError(f"{path}: not a bench result: {'; '.join(problems)}")
    return doc
