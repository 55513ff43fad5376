"""Processes and ports of the local cloud, each job done exactly once.

- `start_time(pid)`: the one /proc start-time parser; a pid with the same start
  time is the same process, so a recycled pid is never taken for ours.
- `PidFile`: "pid start-time" on one line; `alive()` answers only for our process.
- `spawn(...)`: start a process in its own session, logging to a file, recorded in a PidFile.
- `stop(*pids)`: the one way to stop processes: SIGTERM all, wait, SIGKILL what is left.
- `wait_for(predicate, timeout, what)`: the one bounded poll.
- `port_free(port, host)`: the one free-port probe (a bind, as the server's own bind would);
  `choose_ports(...)`: free ports for a profile, recorded and reused when still free.
- `listens(pid, port)`: whether *this* process listens on the port (readiness of what we started).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import time
from contextlib import suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class ServiceError(RuntimeError):
    """A step failed; the message says what, and how to fix it."""


def checkout_id(root: Path = ROOT) -> str:
    """A short id of this checkout (a hash of its root path): labs and machine-wide records carry it."""
    return hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:6]


# --- process identity --------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (which may hold spaces and parentheses)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
        return data[data.rindex(")") + 2 :].split()
    except (OSError, ValueError):
        return None


def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), or None when there is no such process."""
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields else None
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int, started: int | None = None) -> bool:
    """Whether `pid` runs (a zombie counts as gone) and, given `started`, is still that process."""
    fields = _stat_fields(pid)
    if not fields or fields[0] == "Z":
        return False
    return started is None or start_time(pid) == started


def read_pid(path: Path) -> int | None:
    """The first number in a daemon's own pid file (redis.pid, postmaster.pid)."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class PidFile:
    """`<pid> <start time>` of a process we started."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, pid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"{pid} {start_time(pid)}\n")

    def read(self) -> tuple[int, int] | None:
        try:
            pid, started = self.path.read_text().split()
            return int(pid), int(started)
        except (OSError, ValueError):
            return None

    def alive(self) -> int | None:
        """The pid, when the recorded process still runs."""
        record = self.read()
        return record[0] if record and pid_alive(*record) else None


# --- start, wait, stop -------------------------------------------------------


def spawn(
    argv: list[str], env: dict[str, str], log_path: Path, pid_file: PidFile | None = None, cwd: Path = ROOT
) -> subprocess.Popen:
    """Start `argv` in a session of its own (so `stop(group=True)` reaches its children)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    if pid_file is not None:
        pid_file.write(proc.pid)
    return proc


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05, max_interval: float = 0.5):
    """Poll `predicate` until it returns a truthy value (returned), or raise ServiceError after `timeout`.

    The interval grows from `interval` to `max_interval`: quick to notice, cheap when slow."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise ServiceError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
        interval = min(interval * 1.5, max_interval)


def _signal(pid: int, sig: int, group: bool) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig) if group else os.kill(pid, sig)


def stop(*pids: int | tuple[int, int | None], grace: float = 10.0, group: bool = False) -> list[int]:
    """Stop processes: SIGTERM each at once, wait up to `grace` for all, then SIGKILL what is left.

    A pid may come as (pid, start time): it is signalled only while it is still that process.
    `group`: signal the process group (the pid leads its own session, see spawn). Each pid is
    signalled once, so an agent's drain is never cut short by a second SIGTERM.
    Returns the pids that were running."""
    targets = [p if isinstance(p, tuple) else (p, start_time(p)) for p in pids]
    running = [(pid, started) for pid, started in targets if started is not None and pid_alive(pid, started)]
    for pid, _ in running:
        _signal(pid, signal.SIGTERM, group)

    def all_gone():  # a zombie counts as gone: its parent (a Popen, if any) reaps it
        return not any(pid_alive(pid, started) for pid, started in running)

    try:
        wait_for(all_gone, grace, "processes to exit")
    except ServiceError:
        for pid, started in running:
            if pid_alive(pid, started):
                _signal(pid, signal.SIGKILL, group)
        wait_for(all_gone, 5, "killed processes to exit")
    return [pid for pid, _ in running]


# --- ports -------------------------------------------------------------------


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on host:port now (the probe binds, as the server will)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
        return True


def require_free_port(port: int, what: str, host: str = "127.0.0.1") -> None:
    if not port_free(port, host):
        raise ServiceError(
            f"port {port} on {host} is already in use, so {what} cannot start there. "
            f"Stop whatever listens on it (ss -ltnp 'sport = :{port}') or choose another port."
        )


def _any_free_port(host: str, taken: set[int]) -> int:
    while True:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in taken:
            return port


PORTS_LOCK = Path("/run/lock/hostchecker-ports.lock")
PORT_CLAIMS = Path("/run/lock/hostchecker-ports.d")


def _claimed_elsewhere(mine: Path) -> set[int]:
    """Ports other starts chose and may not have bound yet: claims whose process still runs."""
    taken: set[int] = set()
    for path in PORT_CLAIMS.glob("*.json") if PORT_CLAIMS.is_dir() else []:
        try:
            claim = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if path == mine:
            continue
        if pid_alive(*claim["owner"]):
            taken.update(claim["ports"])
        else:
            path.unlink(missing_ok=True)
    return taken


def _claim(mine: Path, ports: list[int]) -> None:
    try:
        PORT_CLAIMS.mkdir(parents=True, exist_ok=True)
        mine.write_text(json.dumps({"owner": [os.getpid(), start_time(os.getpid())], "ports": ports}))
    except OSError:
        pass  # no shared claims (e.g. not writable): the bind probe alone decides


def choose_ports(
    record: Path, preferred: dict[str, int | None], keep: set[str] = frozenset(), host: str = "127.0.0.1"
) -> dict[str, int]:
    """A port per name, written to `record` (JSON) and reused next time.

    `keep`: names whose recorded port is held by our own running server (reused as is).
    Otherwise: the recorded port when free, else the preferred one when free, else any free port.
    Two checkouts starting at once must not pick the same port before either binds it: under a
    machine-wide lock, each start claims its ports for as long as the choosing process runs
    (by then its servers hold them), and avoids the ports other running starts claimed."""
    try:
        recorded = json.loads(record.read_text())
    except (OSError, ValueError):
        recorded = {}
    chosen: dict[str, int] = {}
    mine = PORT_CLAIMS / f"{hashlib.sha256(str(record.resolve()).encode()).hexdigest()[:16]}.json"
    PORTS_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(PORTS_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        claimed = _claimed_elsewhere(mine)
        for name, wanted in preferred.items():
            taken = claimed | set(chosen.values())
            old = recorded.get(name)
            if old and name in keep:
                chosen[name] = old
                continue
            candidates = [p for p in (old, wanted) if p and p not in taken and port_free(p, host)]
            chosen[name] = candidates[0] if candidates else _any_free_port(host, taken)
        _claim(mine, list(chosen.values()))
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(chosen, indent=2) + "\n")
    return chosen


def listens(pid: int, port: int) -> bool:
    """Whether process `pid` itself holds a listening TCP socket on `port` (any address, its namespace).

    Unlike a connect, this is never fooled by another process (another checkout, another test
    session) that listens on the same port."""
    inodes = set()
    for table in (f"/proc/{pid}/net/tcp", f"/proc/{pid}/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # local address, LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    try:
        return any(os.readlink(fd) in inodes for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
