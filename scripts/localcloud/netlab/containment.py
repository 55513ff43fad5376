"""Lab traffic never leaves the machine: `unreachable 198.18.0.0/15` in the root namespace.

While any lab or stack of ours (of any checkout) exists, the root namespace holds that route,
so an address of a lab that is gone fails here with EHOSTUNREACH instead of following the
default route off the machine. The labs' own routes (a /24 via their hub, /32 peers of delay
links) are more specific and win while the lab exists.

The route is shared, so it is reference-counted by ownership entries, one JSON file per holder
under /run/hostchecker/labs/ (a tmpfs: a reboot forgets them along with the namespaces):
`{"pids": [[pid, start time], ...], "pid_dir": ..., "namespaces": [...]}`. An entry counts while
one of its processes runs (a pid, or a pid file in `pid_dir`) or one of its namespaces exists;
entries that no longer count are pruned. `hold` installs the route (idempotent), `release`
drops an entry and removes the route when no entry is left.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import threading
from pathlib import Path

from scripts.localcloud.procs import PidFile, pid_alive, start_time

LAB_RANGE = "198.18.0.0/15"
ENTRIES = Path("/run/hostchecker/labs")
NETNS_DIR = Path("/run/netns")
LOCK_PATH = Path("/run/lock/hostchecker-netlab.lock")


class lab_lock:
    """Serialises address claims and ownership entries between concurrent labs (all checkouts).

    Re-entrant within a process (a flock on a second descriptor of the same file would wait
    for ourselves)."""

    _guard = threading.RLock()
    _depth = 0
    _fd = -1

    def __enter__(self):
        lab_lock._guard.acquire()
        if lab_lock._depth == 0:
            LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
            lab_lock._fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(lab_lock._fd, fcntl.LOCK_EX)
        lab_lock._depth += 1
        return self

    def __exit__(self, *exc):
        lab_lock._depth -= 1
        if lab_lock._depth == 0:
            fcntl.flock(lab_lock._fd, fcntl.LOCK_UN)
            os.close(lab_lock._fd)
        lab_lock._guard.release()


def me() -> list[int]:
    """This process as an entry's owner: [pid, start time]."""
    return [os.getpid(), start_time(os.getpid())]


def _counts(entry: dict) -> bool:
    if any(pid_alive(pid, started) for pid, started in entry.get("pids", [])):
        return True
    pid_dir = entry.get("pid_dir")
    if pid_dir and any(PidFile(p).alive() for p in Path(pid_dir).glob("*.pid")):
        return True
    return any((NETNS_DIR / ns).exists() for ns in entry.get("namespaces", []))


def _live_entries() -> list[str]:
    """The names of the entries that still count; the others are removed."""
    live = []
    for path in sorted(ENTRIES.glob("*.json")) if ENTRIES.is_dir() else []:
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            entry = {}
        if _counts(entry):
            live.append(path.stem)
        else:
            path.unlink(missing_ok=True)
    return live


def route_installed() -> bool:
    done = subprocess.run(["ip", "route", "show", "type", "unreachable", LAB_RANGE], capture_output=True, text=True)
    return LAB_RANGE in done.stdout


def _route(action: str) -> None:
    subprocess.run(["ip", "route", action, "unreachable", LAB_RANGE], capture_output=True, text=True)


def hold(name: str, *, pids: list | None = None, pid_dir: Path | None = None, namespaces: list[str] = ()) -> None:
    """Record (or update) the entry `name` and make sure the route is installed."""
    entry = {
        "pids": pids if pids is not None else [me()],
        "pid_dir": str(pid_dir) if pid_dir else None,
        "namespaces": list(namespaces),
    }

    with lab_lock():
        ENTRIES.mkdir(parents=True, exist_ok=True)
        tmp = ENTRIES / f".{name}.tmp"
        tmp.write_text(json.dumps(entry))
        tmp.replace(ENTRIES / f"{name}.json")
        _route("replace")


def release(name: str) -> bool:
    """Drop the entry `name`; remove the route when no entry counts any more. True if it was removed."""
    with lab_lock():
        (ENTRIES / f"{name}.json").unlink(missing_ok=True)
        if _live_entries():
            return False
        _route("del")
        return True


def holders() -> list[str]:
    with lab_lock():
        return _live_entries()
