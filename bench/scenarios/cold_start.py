"""Scenario 7: the Lambda cold start proxy. `python -X importtime -c "import app"` (parsed: the
total and the heaviest direct imports), the whole interpreter's wall time for the import, and the
time from starting a fresh API process to its first answered request."""

from __future__ import annotations

import statistics
import subprocess
import time

from bench import api_process
from bench.harness import PYTHON, ROOT, Bench
from bench.results import scenario_result

NUMBER = 7
TITLE = "Lambda cold start proxy: import app, and a fresh API process's first request"
TARGET = "≤ 120 ms (import app)"
RUNS = 5


def parse_importtime(stderr: str, module: str = "app") -> dict:
    """{total_ms, top, self_top} from -X importtime's lines `import time: self [us] | cumulative | imported
    package`: `top` are `module`'s direct imports by cumulative ms, `self_top` the modules whose own
    top-level code took longest, wherever they are in the tree."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2  # one space, then two per level
        rows.append((depth, name.strip(), int(self_us), int(cumulative_us)))
    total, top, subtree = None, [], []
    for index, (depth, name, _, cumulative) in enumerate(rows):
        if name == module and depth == 0:
            total = cumulative
            start = index
            while start > 0 and rows[start - 1][0] > 0:
                start -= 1
            subtree = rows[start : index + 1]
            # its direct imports are the depth-1 rows printed before it, back to the previous depth-0 row
            j = index - 1
            while j >= 0 and rows[j][0] > 0:
                if rows[j][0] == 1:
                    top.append((rows[j][1], rows[j][3] / 1000))
                j -= 1
    if total is None:
        raise ValueError(f"no top-level `{module}` line in -X importtime's output")
    self_top = sorted(((name, own / 1000) for _, name, own, _ in subtree), key=lambda t: -t[1])[:3]
    # Ours against the libraries': our modules' own bodies, and each library package as first
    # imported by one of ours (its whole subtree, the standard library's modules included).
    ours_us, libraries = 0, {}
    stack: list[tuple[int, str]] = []  # rows are printed children first: walk them back, parents first
    for depth, name, own, cumulative in reversed(subtree):
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parent = stack[-1][1] if stack else None
        stack.append((depth, name))
        if _ours(name):
            ours_us += own
        elif parent is None or _ours(parent):
            package = name.split(".")[0]
            libraries[package] = libraries.get(package, 0) + cumulative
    return {
        "total_ms": total / 1000,
        "top": sorted(top, key=lambda t: -t[1])[:5],
        "self_top": self_top,
        "ours_ms": ours_us / 1000,
        "libraries": sorted(((n, us / 1000) for n, us in libraries.items()), key=lambda t: -t[1]),
    }


def _ours(module: str) -> bool:
    return module in ("app", "chalicelib") or module.startswith(("chalicelib.", "agent."))


def import_once() -> tuple[dict, float]:
    env = Bench.base_env()
    env.pop("HC_STAGE", None)
    began = time.perf_counter()
    proc = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", "import app"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise RuntimeError(f"import app failed: {proc.stderr.strip().splitlines()[-1:]}")
    return parse_importtime(proc.stderr), wall


def bare_interpreter_s() -> float:
    began = time.perf_counter()
    subprocess.run([PYTHON, "-c", "pass"], cwd=ROOT, check=True)
    return time.perf_counter() - began


def run(bench: Bench) -> dict:
    parsed, walls, bare = [], [], []
    for _ in range(RUNS):  # interleaved with the bare interpreter, so both see the same load
        doc, wall = import_once()
        parsed.append(doc)
        walls.append(wall)
        bare.append(bare_interpreter_s())
    total = statistics.median(d["total_ms"] for d in parsed)
    wall_ms = (statistics.median(walls) - statistics.median(bare)) * 1000
    median_run = sorted(parsed, key=lambda d: d["total_ms"])[len(parsed) // 2]
    api = api_process.start(bench, bench.env["DATABASE_URL"])
    api.stop()
    metrics = {
        "import_app_ms": round(total, 1),
        "import_wall_over_bare_ms": round(wall_ms, 1),
        "first_request_s": round(api.first_answer_s, 3),
        "import_ours_ms": round(median_run["ours_ms"], 1),
        "import_libraries_ms": round(median_run["total_ms"] - median_run["ours_ms"], 1),
    }
    met = total <= 120
    figure = (
        f"import app {total:.0f} ms (-X importtime, median of {RUNS}); "
        f"fresh API process to first answer {api.first_answer_s:.2f} s"
    )
    heaviest = ", ".join(f"{name} {ms:.0f} ms" for name, ms in median_run["top"])
    own = ", ".join(f"{name} {ms:.0f} ms" for name, ms in median_run["self_top"])
    libraries = ", ".join(f"{name} {ms:.0f} ms" for name, ms in median_run["libraries"][:6])
    outside = median_run["total_ms"] - median_run["ours_ms"]
    verdict = (
        f"**outside our code: the libraries app needs (each package's own import, measured in the same "
        f"run) take {outside:.0f} ms, over the 120 ms target before a line of ours runs**; "
        if not met and outside > 120
        else ""
    )
    notes = verdict + (
        f"our modules' own code {median_run['ours_ms']:.0f} ms of the {median_run['total_ms']:.0f} ms; "
        f"the libraries they import (each package's whole first import): {libraries}; "
        f"heaviest imports of app (cumulative): {heaviest}; slowest module bodies (self): {own}; "
        f"interpreter wall time over `python -c pass`: {wall_ms:.0f} ms"
    )
    return scenario_result(NUMBER, TITLE, figure, TARGET, met, notes, metrics)
