"""Where the time goes, from py-spy (`py-spy record --format raw`): the functions that were on CPU
most (self samples) and our own frames that were on the stack most (inclusive), for a table note."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

from bench.harness import ROOT, STATE

PY_SPY = ROOT / ".venv" / "bin" / "py-spy"
RATE = 200  # samples per second; --gil: only the thread holding the interpreter lock, i.e. Python on CPU
OUR_CODE = ("app.py", "chalicelib/", "agent/", "scripts/")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*?)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """`func (path/to/file.py:12)` -> `func (file.py)`; line numbers would split one function apart."""
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in OUR_CODE:
        if marker in path:
            path = path[path.index(marker) :]
            break
    else:
        path = Path(path).name
    return f"{match['func']} ({path})"


def parse_raw(text: str) -> tuple[Counter, Counter, int]:
    """(self samples by function, samples by our innermost function, total samples) of py-spy's raw
    output: one `frame;frame;...;leaf count` line per distinct stack. "Our innermost function" is the
    deepest frame from this project's code (app.py, chalicelib/, agent/, scripts/) on each stack: the
    code of ours that the time was spent for, below the handlers every request passes through."""
    own, ours, total = Counter(), Counter(), 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [frame_name(f) for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        own[frames[-1]] += n
        for name in reversed(frames):
            if any(marker in name for marker in OUR_CODE):
                ours[name] += n
                break
    return own, ours, total


def top(counter: Counter, total: int, n: int = 3) -> str:
    if not total:
        return "no samples"
    return ", ".join(f"{name} {100 * count / total:.0f}%" for name, count in counter.most_common(n))


def record(pid: int, seconds: float, label: str, subprocesses: bool = True) -> dict:
    """Sample `pid` (and its children) for `seconds`; {self, ours, samples} as note-ready text."""
    out = STATE / "profiles" / f"{label}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(max(1, round(seconds)))]
    argv += ["--format", "raw", "--output", str(out), "--nonblocking", "--gil", "--rate", str(RATE)]
    if subprocesses:
        argv.append("--subprocesses")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    if proc.returncode != 0 or not out.exists():
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["py-spy failed"]}
    own, ours, total = parse_raw(out.read_text())
    return {"self": top(own, total), "ours": top(ours, total), "samples": total, "file": str(out)}


def start_record(pid: int, seconds: float, label: str) -> subprocess.Popen:
    """The same in the background (while the load runs); finish with `finish_record`."""
    out = STATE / "profiles" / f"{label}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    argv = [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(max(1, round(seconds)))]
    argv += ["--format", "raw", "--output", str(out), "--nonblocking", "--gil", "--rate", str(RATE), "--subprocesses"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    proc.bench_output = out  # type: ignore[attr-defined]
    return proc


def finish_record(proc: subprocess.Popen, timeout: float = 60) -> dict:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return {"error": "py-spy did not finish"}
    out: Path = proc.bench_output  # type: ignore[attr-defined]
    if not out.exists():
        return {"error": (err or "py-spy wrote nothing").strip().splitlines()[-1:]}
    own, ours, total = parse_raw(out.read_text())
    return {"self": top(own, total), "ours": top(ours, total), "samples": total, "file": str(out)}


def note(label: str, prof: dict) -> str:
    if "error" in prof:
        return f"py-spy {label}: {prof['error']}"
    return (
        f"py-spy {label} ({prof['samples']} samples holding the GIL): top of stack {prof['self']}; "
        f"innermost of ours {prof['ours']}"
    )


class Recorder:
    """py-spy on `pid` for as long as a `with` block runs (stopped with SIGINT, on which py-spy writes
    what it has): `with Recorder(pid, "s5-api") as rec: ...`, then `rec.result`."""

    LONGEST_S = 600

    def __init__(self, pid: int | None, label: str):
        self.pid, self.label, self.proc, self.result = pid, label, None, {"error": "no process to profile"}

    def __enter__(self):
        if self.pid:
            self.proc = start_record(self.pid, self.LONGEST_S, self.label)
        return self

    def __exit__(self, *exc):
        import signal

        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            self.result = finish_record(self.proc, timeout=30)
        return False
