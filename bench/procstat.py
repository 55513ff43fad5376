"""What processes cost, read from /proc: CPU time (utime + stime of /proc/<pid>/stat), resident
memory (VmRSS), and process trees (so a server's workers and PostgreSQL's backends count too)."""

from __future__ import annotations

import os
from pathlib import Path

TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    return raw[raw.rindex(")") + 2 :].split()


def parse_stat_cpu_ms(fields: list[str]) -> tuple[float, float]:
    """(own utime+stime, reaped children's cutime+cstime) in ms, from the fields after the name."""
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + stime) * TICK_MS, (cutime + cstime) * TICK_MS


def children_map() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields:
            tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def tree(root: int, kids: dict[int, list[int]] | None = None) -> list[int]:
    """`root` and all its descendants that exist now."""
    kids = children_map() if kids is None else kids
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found.append(pid)
        todo.extend(kids.get(pid, []))
    return found


def cpu_ms(roots: list[int]) -> float:
    """CPU used so far by the trees under `roots`: every live process's own time, plus what the
    roots' exited and reaped children used (cutime) so that a short-lived worker is not lost."""
    kids = children_map()
    total = 0.0
    for root in roots:
        for pid in tree(root, kids):
            fields = _stat_fields(pid)
            if fields:
                own, reaped = parse_stat_cpu_ms(fields)
                total += own + reaped
    return total


def machine_busy_ms() -> tuple[float, float]:
    """(CPU time spent busy, wall-clock CPU time elapsed) over all cores since boot, in ms, from the
    `cpu` line of /proc/stat: busy is everything but idle and iowait. Two readings give how much of
    the machine a window used (busy delta / elapsed delta)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    idle = fields[3] + fields[4]
    return (total - idle) * TICK_MS, total * TICK_MS


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree_rss_mb(root: int) -> float:
    return sum(rss_mb(pid) for pid in tree(root))


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def yardstick_ms(rounds: int = 3) -> float:
    """How fast this machine runs Python right now: the best of `rounds` timings of one fixed loop.
    The same code's figures move with it (a shared host's CPU is not always the same speed), so a
    run's figures compare with another's only next to their yardsticks."""
    import time

    best = float("inf")
    for _ in range(rounds):
        began = time.perf_counter()
        sum(i * i for i in range(1_000_000))
        best = min(best, time.perf_counter() - began)
    return round(best * 1000, 1)


def child_pid(pid: int) -> int | None:
    """The first child of `pid` (e.g. the program under /usr/bin/time)."""
    kids = children_map().get(pid) or []
    return kids[0] if kids else None
