#!/usr/bin/env python3
"""LocalStack on the host ("host mode"): its own Python 3.13 venv, start, stop.

LocalStack 4.14.0 needs Python >= 3.13 and a handful of upper-bound pins
(``localstack/requirements-host.txt``). The project's own venv is Python 3.11,
so LocalStack gets a venv of its own. Nothing here needs Docker.

Layout under a *state dir* (``.local/`` for ``make run``, a separate folder for
tests)::

    <state_dir>/localstack-venv/      the venv (override: venv_dir=, or $LOCALSTACK_VENV)
    <state_dir>/localstack/           one LocalStack instance
        localstack.pid                JSON: pid, port, start ticks (so we only ever stop *our* process)
        localstack.log                default log file
        volume/  filesystem/          LOCALSTACK_VOLUME_DIR and FILESYSTEM_ROOT (nothing outside)

Python API (what the stack scripts call)::

    from scripts import localstack as ls            # or importlib from a path
    py = ls.ensure_venv(state_dir, log=print)       # idempotent; also accepts the venv path itself
    inst = ls.start(state_dir, port=4566, log_path=None, timeout=90.0, log=print)
    inst.endpoint                                   # 'http://127.0.0.1:4566'
    ls.is_running(state_dir); ls.pid(state_dir)     # -> bool; -> int | None
    ls.stop(state_dir, log=print)                   # -> bool (True if something was stopped)

``log`` is any callable taking one line (default: print to stdout); ``quiet=True`` silences it.
start() finds the venv through venv_path(): venv_dir=, $LOCALSTACK_VENV, or the nearest
``localstack-venv`` in state_dir or its parents.

Every failure the caller should survive is a ``LocalStackError`` (subclasses
``PythonNotFound``, ``PortInUse``, ``StartFailed``) whose ``str()`` is one line.
The stack goes on without LocalStack when it catches one.

CLI: ``python scripts/localstack.py {ensure-venv,start,stop,status} --help``.
"""
from __future__ import annotations

import argparse
import errno
import glob
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "localstack" / "requirements-host.txt"
DEFAULT_STATE_DIR = ROOT / ".local"
DEFAULT_PORT = 4566
DEFAULT_HOST = "127.0.0.1"
STAMP_NAME = ".hostchecker-requirements.sha256"
MIN_PYTHON = (3, 13)

__all__ = [
    "LocalStackError", "PythonNotFound", "PortInUse", "StartFailed",
    "Instance", "find_python", "venv_path", "ensure_venv", "start", "stop",
    "is_running", "pid", "status", "health", "endpoint_url",
]


# --------------------------------------------------------------------------- errors
class LocalStackError(RuntimeError):
    """LocalStack is unavailable. ``str(exc)`` is a one-line, user-facing message."""


class PythonNotFound(LocalStackError):
    pass


class PortInUse(LocalStackError):
    pass


class StartFailed(LocalStackError):
    pass


def _say(msg: str, quiet: bool = False, log: Optional[Callable[[str], None]] = None) -> None:
    """Progress line: to ``log`` (a callable taking one string) when given, else stdout."""
    if quiet:
        return
    if log is not None:
        log(f"  localstack: {msg}")
    else:
        print(f"[localstack] {msg}", flush=True)


# --------------------------------------------------------------------------- paths
def instance_dir(state_dir) -> Path:
    return Path(state_dir).resolve() / "localstack"


def _pid_file(state_dir) -> Path:
    return instance_dir(state_dir) / "localstack.pid"


def _looks_like_venv(path: Path) -> bool:
    return (path / "pyvenv.cfg").exists() or path.name.endswith("venv")


def venv_path(state_dir=DEFAULT_STATE_DIR, venv_dir=None) -> Path:
    """Where the LocalStack venv lives.

    venv_dir if given; else $LOCALSTACK_VENV; else state_dir itself when it *is* a venv path
    (a name ending in "venv", or holding pyvenv.cfg); else the first existing ``localstack-venv``
    in state_dir or one of its parents (so ``.local/run/localstack`` finds ``.local/localstack-venv``);
    else ``<state_dir>/localstack-venv``.
    """
    if venv_dir:
        return Path(venv_dir).resolve()
    env = os.environ.get("LOCALSTACK_VENV")
    if env:
        return Path(env).resolve()
    state = Path(state_dir).resolve()
    if _looks_like_venv(state):
        return state
    for d in (state, *state.parents):
        cand = d / "localstack-venv"
        if (cand / "bin" / "python").exists():
            return cand
    return state / "localstack-venv"


def endpoint_url(port: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> str:
    return f"http://{host}:{port}"


# --------------------------------------------------------------------------- python 3.13
def _python_version(exe: str) -> Optional[tuple]:
    env = dict(os.environ)
    # pyenv shims honour PYENV_VERSION; point it at an installed 3.13 if the shim needs one.
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    try:
        out = subprocess.run(
            [exe, "-c", "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, timeout=20, env=env,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    try:
        major, minor = out.stdout.strip().split(".")
        return int(major), int(minor)
    except ValueError:
        return None


def find_python() -> str:
    """Return a Python 3.13 interpreter able to create venvs, or raise PythonNotFound.

    Order: $LOCALSTACK_PYTHON, python3.13 on PATH, pyenv-installed 3.13.x, /usr(/local)/bin.
    """
    candidates = []
    env = os.environ.get("LOCALSTACK_PYTHON")
    if env:
        candidates.append(env)
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates += sorted(glob.glob(os.path.join(pyenv_root, "versions", "3.13*", "bin", "python3.13")),
                         reverse=True)
    for name in ("python3.13",):
        found = shutil.which(name)
        if found:
            candidates.append(found)
    candidates += ["/usr/local/bin/python3.13", "/usr/bin/python3.13"]
    seen = set()
    for exe in candidates:
        if exe in seen or not os.path.exists(exe):
            continue
        seen.add(exe)
        ver = _python_version(exe)
        if ver and ver[:2] == MIN_PYTHON:
            return exe
    raise PythonNotFound(
        "LocalStack needs Python 3.13 and none was found "
        "(set LOCALSTACK_PYTHON=/path/to/python3.13, or install it: pyenv install 3.13.0)"
    )


# --------------------------------------------------------------------------- venv
def _requirements_hash(requirements: Path) -> str:
    h = hashlib.sha256()
    h.update(requirements.read_bytes())
    return h.hexdigest()


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(state_dir=DEFAULT_STATE_DIR, *, venv_dir=None, requirements=REQUIREMENTS,
                quiet: bool = False, log: Optional[Callable[[str], None]] = None) -> Path:
    """Create/refresh the LocalStack venv; return its python. Skips all work when the stamp matches.

    Raises PythonNotFound (no 3.13) or StartFailed (pip failed), both one-line LocalStackErrors.
    """
    venv = venv_path(state_dir, venv_dir)
    requirements = Path(requirements)
    wanted = _requirements_hash(requirements)
    stamp = venv / STAMP_NAME
    py = _venv_python(venv)
    if py.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        ver = _python_version(str(py))
        if ver and ver[:2] == MIN_PYTHON:
            _say(f"venv up to date ({venv})", quiet, log)
            return py
    if not (py.exists() and (_python_version(str(py)) or (0, 0))[:2] == MIN_PYTHON):
        base = find_python()
        _say(f"creating venv {venv} with {base}", quiet, log)
        if venv.exists():
            shutil.rmtree(venv)
        venv.parent.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([base, "-m", "venv", str(venv)], capture_output=True, text=True)
        if r.returncode != 0:
            raise StartFailed(f"could not create the LocalStack venv at {venv}: "
                              f"{(r.stderr.strip().splitlines() or ['?'])[-1]}")
    _say(f"installing {requirements.relative_to(ROOT) if requirements.is_relative_to(ROOT) else requirements} "
         f"into {venv} (first time takes a few minutes)", quiet, log)
    env = _clean_env(venv)
    cmd = [str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", str(requirements)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or r.stdout.strip().splitlines() or ["?"])[-1]
        raise StartFailed(f"pip could not install LocalStack's requirements into {venv}: {tail}")
    r = subprocess.run([str(py), "-c", "import localstack.runtime.main"], env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or ["?"])[-1]
        raise StartFailed(f"LocalStack installed but does not import: {tail}")
    stamp.write_text(wanted + "\n")
    _say("venv ready", quiet, log)
    return py


def _clean_env(venv: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYENV_VERSION", "__PYVENV_LAUNCHER__")}
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


# --------------------------------------------------------------------------- process bookkeeping
def _proc_start_ticks(pid: int) -> Optional[int]:
    """Process start time (clock ticks since boot) from /proc; guards against pid reuse."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
        # the comm field may contain spaces/parens: split after the last ')'
        fields = data[data.rindex(")") + 2:].split()
        return int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def _proc_cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _read_pidinfo(state_dir) -> Optional[dict]:
    try:
        return json.loads(_pid_file(state_dir).read_text())
    except (OSError, ValueError):
        return None


def _is_ours(info: Optional[dict]) -> bool:
    if not info or not isinstance(info.get("pid"), int):
        return False
    pid = info["pid"]
    ticks = _proc_start_ticks(pid)
    if ticks is None or ticks != info.get("start_ticks"):
        return False
    # a zombie has an empty cmdline; treat it as gone
    return "localstack.runtime.main" in _proc_cmdline(pid)


def _port_free(host: str, port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        return True
    except OSError as e:
        if e.errno in (errno.EADDRINUSE, errno.EACCES):
            return False
        raise
    finally:
        s.close()


# --------------------------------------------------------------------------- health
def health(port: int = DEFAULT_PORT, host: str = DEFAULT_HOST, timeout: float = 2.0) -> Optional[dict]:
    """The /_localstack/health document, or None when nothing LocalStack-like answers."""
    try:
        with urllib.request.urlopen(f"{endpoint_url(port, host)}/_localstack/health", timeout=timeout) as r:
            doc = json.loads(r.read().decode())
            return doc if isinstance(doc, dict) and "services" in doc else None
    except (OSError, ValueError, urllib.error.URLError):
        return None


def _ready(port: int, host: str) -> bool:
    """READY stage finished (init hooks included) and the core services answer."""
    doc = health(port, host)
    if not doc:
        return False
    try:
        with urllib.request.urlopen(f"{endpoint_url(port, host)}/_localstack/init/ready", timeout=2) as r:
            init = json.loads(r.read().decode())
        if not init.get("completed", False):
            return False
    except (OSError, ValueError, urllib.error.URLError):
        return False
    services = doc.get("services", {})
    wanted = ("s3", "ssm", "secretsmanager", "cloudformation", "events")
    return all(services.get(s) in ("available", "running") for s in wanted)


# --------------------------------------------------------------------------- start / stop
@dataclass
class Instance:
    pid: int
    port: int
    host: str
    log_path: str
    state_dir: str
    reused: bool = False

    @property
    def endpoint(self) -> str:
        return endpoint_url(self.port, self.host)


def _tail(path: Path, n: int = 1) -> str:
    try:
        lines = [l.strip() for l in path.read_text(errors="replace").splitlines() if l.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])


def start(state_dir=DEFAULT_STATE_DIR, port: int = DEFAULT_PORT, log_path=None, *,
          venv_dir=None, host: str = DEFAULT_HOST, timeout: float = 90.0,
          quiet: bool = False, extra_env: Optional[dict] = None,
          log: Optional[Callable[[str], None]] = None) -> Instance:
    """Start LocalStack in the background and return once it is ready (bounded by ``timeout``).

    Idempotent: if the instance recorded under ``state_dir`` is already running and healthy, it is
    reused. The venv must exist (call ensure_venv first). Raises PortInUse / StartFailed /
    PythonNotFound (all LocalStackError, one-line messages).
    """
    inst_dir = instance_dir(state_dir)
    inst_dir.mkdir(parents=True, exist_ok=True)
    log_path = Path(log_path) if log_path else inst_dir / "localstack.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)

    info = _read_pidinfo(state_dir)
    if _is_ours(info):
        if info.get("port") == port and _ready(port, host):
            _say(f"already running (pid {info['pid']}) on {endpoint_url(port, host)}", quiet, log)
            return Instance(info["pid"], port, host, info.get("log_path", str(log_path)),
                            str(Path(state_dir).resolve()), reused=True)
        # ours but on another port or unhealthy: restart it cleanly
        stop(state_dir, quiet=quiet, log=log)
    elif info is not None:
        _pid_file(state_dir).unlink(missing_ok=True)  # stale

    if not _port_free(host, port):
        what = "another LocalStack" if health(port, host) else "another process"
        raise PortInUse(f"port {port} on {host} is already in use by {what}; "
                        f"stop it or choose another port (--port)")

    venv = venv_path(state_dir, venv_dir)
    py = _venv_python(venv)
    if not py.exists():
        raise StartFailed(f"LocalStack venv missing at {venv}; run: python scripts/localstack.py ensure-venv")

    env = _clean_env(venv)
    env.update({
        "GATEWAY_LISTEN": f"{host}:{port}",
        "DNS_ADDRESS": "0",                      # no DNS server on :53
        "LOCALSTACK_VOLUME_DIR": str(inst_dir / "volume"),
        "FILESYSTEM_ROOT": str(inst_dir / "filesystem"),  # host-mode dirs stay inside the state dir
        "LOCALSTACK_HOST": f"localhost.localstack.cloud:{port}",
        "SKIP_SSL_CERT_DOWNLOAD": "1",           # no traffic beyond loopback
        "DISABLE_EVENTS": "1",                   # no analytics
        "LOCALSTACK_TELEMETRY_DISABLED": "1",
        "DO_NOT_TRACK": "1",
        "EAGER_SERVICE_LOADING": "0",
        "AWS_DEFAULT_REGION": env.get("AWS_DEFAULT_REGION", "us-east-1"),
    })
    if extra_env:
        env.update(extra_env)

    _say(f"starting on {endpoint_url(port, host)} (log: {log_path})", quiet, log)
    logf = open(log_path, "ab")
    try:
        proc = subprocess.Popen(
            [str(py), "-m", "localstack.runtime.main"],
            cwd=str(inst_dir), env=env, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
            start_new_session=True,   # own process group: stop() signals exactly this group
        )
    except OSError as e:
        raise StartFailed(f"could not run {py}: {e.strerror}")
    finally:
        logf.close()
    ticks = None
    for _ in range(50):
        ticks = _proc_start_ticks(proc.pid)
        if ticks is not None:
            break
    _pid_file(state_dir).write_text(json.dumps({
        "pid": proc.pid, "port": port, "host": host, "start_ticks": ticks, "log_path": str(log_path),
    }))

    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        rc = proc.poll()
        if rc is not None:
            _pid_file(state_dir).unlink(missing_ok=True)
            raise StartFailed(f"LocalStack exited with code {rc} during start-up "
                              f"(last log line: {_tail(log_path) or 'none'}; full log: {log_path})")
        if _ready(port, host):
            break
        if time.monotonic() > deadline:
            stop(state_dir, quiet=True)
            raise StartFailed(f"LocalStack was not ready after {timeout:.0f}s "
                              f"(last log line: {_tail(log_path) or 'none'}; full log: {log_path})")
        time.sleep(delay)   # polling interval of a bounded wait, not synchronisation
        delay = min(delay * 1.5, 1.0)
    _say(f"ready (pid {proc.pid})", quiet, log)
    return Instance(proc.pid, port, host, str(log_path), str(Path(state_dir).resolve()))


def is_running(state_dir=DEFAULT_STATE_DIR) -> bool:
    """True when the LocalStack process recorded under state_dir is alive (health not checked)."""
    return _is_ours(_read_pidinfo(state_dir))


def pid(state_dir=DEFAULT_STATE_DIR) -> Optional[int]:
    """Pid of the LocalStack started from state_dir, or None when it is not running."""
    info = _read_pidinfo(state_dir)
    return info["pid"] if _is_ours(info) else None


def status(state_dir=DEFAULT_STATE_DIR) -> dict:
    info = _read_pidinfo(state_dir) or {}
    running = _is_ours(info)
    port = info.get("port")
    host = info.get("host", DEFAULT_HOST)
    return {
        "running": running,
        "pid": info.get("pid") if running else None,
        "port": port,
        "endpoint": endpoint_url(port, host) if port else None,
        "ready": bool(running and port and _ready(port, host)),
        "log_path": info.get("log_path"),
    }


def _wait_gone(pid: int, ticks, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # reap if it is our child (start() and stop() in the same process)
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        cur = _proc_start_ticks(pid)
        if cur is None or cur != ticks or not _proc_cmdline(pid):
            return True
        time.sleep(0.1)
    return False


def stop(state_dir=DEFAULT_STATE_DIR, *, timeout: float = 20.0, quiet: bool = False,
         log: Optional[Callable[[str], None]] = None) -> bool:
    """Stop the LocalStack started by start() for this state_dir (pid file only). True if one was stopped."""
    info = _read_pidinfo(state_dir)
    if not _is_ours(info):
        _pid_file(state_dir).unlink(missing_ok=True)
        _say("not running", quiet, log)
        return False
    pid, ticks = info["pid"], info["start_ticks"]
    _say(f"stopping (pid {pid})", quiet, log)
    # start() made the process a session/group leader, so its group id is its pid.
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    if not _wait_gone(pid, ticks, timeout):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _wait_gone(pid, ticks, 5.0)
    _pid_file(state_dir).unlink(missing_ok=True)
    _say("stopped", quiet, log)
    return True


# --------------------------------------------------------------------------- CLI
def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="scripts/localstack.py",
        description="Run LocalStack 4.14.0 on the host (no Docker) in its own Python 3.13 venv.",
    )
    p.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR),
                   help="state folder (default: .local/); venv at <state>/localstack-venv, "
                        "instance data at <state>/localstack/")
    p.add_argument("--venv-dir", default=None, help="use this venv instead of <state>/localstack-venv")
    # the same two options are accepted after the sub-command too
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("--venv-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("ensure-venv", parents=[common], help="create/refresh the venv (skipped when up to date)")
    sp = sub.add_parser("start", parents=[common], help="start in the background and wait until ready")
    sp.add_argument("--port", type=int, default=DEFAULT_PORT)
    sp.add_argument("--log", default=None, help="log file (default: <state>/localstack/localstack.log)")
    sp.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for readiness")
    sp.add_argument("--no-venv", action="store_true", help="do not run ensure-venv first")
    sub.add_parser("stop", parents=[common], help="stop the instance started from this state folder")
    sub.add_parser("status", parents=[common], help="print status as JSON; exit 0 when running and ready")
    args = p.parse_args(argv)
    try:
        if args.cmd == "ensure-venv":
            ensure_venv(args.state_dir, venv_dir=args.venv_dir)
        elif args.cmd == "start":
            if not args.no_venv:
                ensure_venv(args.state_dir, venv_dir=args.venv_dir)
            inst = start(args.state_dir, args.port, args.log, venv_dir=args.venv_dir, timeout=args.timeout)
            print(inst.endpoint)
        elif args.cmd == "stop":
            stop(args.state_dir)
        elif args.cmd == "status":
            st = status(args.state_dir)
            print(json.dumps(st))
            return 0 if st["ready"] else 1
    except LocalStackError as e:
        print(f"localstack: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
