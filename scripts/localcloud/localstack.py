"""LocalStack on the host ("host mode"): its own Python 3.13 venv, start, stop.

LocalStack 4.14.0 needs Python >= 3.13 and a handful of upper-bound pins
(``localstack/requirements-host.txt``). The project's own venv is Python 3.11,
so LocalStack gets a venv of its own. Nothing here needs Docker.

The venv is a pure cache of the pinned packages, so it is shared by every checkout on the
machine: ``/var/cache/hostchecker/localstack-venv-<hash of the pins>`` (as root; else under
``$XDG_CACHE_HOME``), created once under a lock. ``$LOCALSTACK_VENV`` overrides it.
An instance's state is not shared: it lives in the state folder given to start()::

    <state_dir>/localstack/
        localstack.pid                pid and start time (so we only ever stop *our* process)
        localstack.log                default log file
        volume/  filesystem/          LOCALSTACK_VOLUME_DIR and FILESYSTEM_ROOT (nothing outside)

Every failure the caller should survive is a ``LocalStackError`` (subclasses
``PythonNotFound``, ``PortInUse``, ``StartFailed``) whose ``str()`` is one line.
The stack goes on without LocalStack when it catches one.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scripts.localcloud.procs import ROOT, PidFile, ServiceError, port_free, spawn, wait_for
from scripts.localcloud.procs import stop as stop_pids

REQUIREMENTS = ROOT / "localstack" / "requirements-host.txt"
DEFAULT_PORT = 4566
DEFAULT_HOST = "127.0.0.1"
STAMP_NAME = ".hostchecker-requirements.sha256"
MIN_PYTHON = (3, 13)


class LocalStackError(RuntimeError):
    """LocalStack is unavailable. ``str(exc)`` is a one-line, user-facing message."""


class PythonNotFound(LocalStackError):
    pass


class PortInUse(LocalStackError):
    pass


class StartFailed(LocalStackError):
    pass


def _say(msg: str, quiet: bool = False, log: Callable[[str], None] | None = None) -> None:
    """Progress line: to ``log`` (a callable taking one string) when given, else stdout."""
    if quiet:
        return
    if log is not None:
        log(f"  localstack: {msg}")
    else:
        print(f"[localstack] {msg}", flush=True)


def instance_dir(state_dir) -> Path:
    return Path(state_dir).resolve() / "localstack"


def _pid_file(state_dir) -> PidFile:
    return PidFile(instance_dir(state_dir) / "localstack.pid")


def endpoint_url(port: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> str:
    return f"http://{host}:{port}"


# --------------------------------------------------------------------------- python 3.13
def _python_version(exe: str) -> tuple | None:
    env = dict(os.environ)
    # pyenv shims honour PYENV_VERSION; point it at an installed 3.13 if the shim needs one.
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    try:
        out = subprocess.run(
            [exe, "-c", "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=20,
            env=env,
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
    candidates += sorted(glob.glob(os.path.join(pyenv_root, "versions", "3.13*", "bin", "python3.13")), reverse=True)
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


# --------------------------------------------------------------------------- venv (a shared cache)
def _requirements_hash(requirements: Path) -> str:
    """A hash of the pins alone (comments and blank lines left out): rewording a comment keeps the cache."""
    lines = [line.split("#", 1)[0].strip() for line in Path(requirements).read_text().splitlines()]
    return hashlib.sha256("\n".join(line for line in lines if line).encode()).hexdigest()


def cache_root() -> Path:
    if os.geteuid() == 0:
        return Path("/var/cache/hostchecker")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hostchecker"


def venv_path(venv_dir=None, requirements=REQUIREMENTS) -> Path:
    """venv_dir if given; else $LOCALSTACK_VENV; else the machine-wide cache entry for these pins."""
    chosen = venv_dir or os.environ.get("LOCALSTACK_VENV")
    if chosen:
        return Path(chosen).resolve()
    return cache_root() / f"localstack-venv-{_requirements_hash(requirements)[:12]}"


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _venv_current(venv: Path, wanted: str) -> bool:
    stamp = venv / STAMP_NAME
    py = _venv_python(venv)
    return (
        py.exists()
        and stamp.exists()
        and stamp.read_text().strip() == wanted
        and (_python_version(str(py)) or (0, 0))[:2] == MIN_PYTHON
    )


def _run_or_fail(argv: list[str], what: str, env: dict | None = None) -> None:
    r = subprocess.run(argv, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or r.stdout.strip().splitlines() or ["?"])[-1]
        raise StartFailed(f"{what}: {tail}")


def _create_venv(venv: Path, requirements: Path, log) -> None:
    base = find_python()
    log(f"creating venv {venv} with {base}; installing {requirements.name} (first time takes a few minutes)")
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    _run_or_fail([base, "-m", "venv", str(venv)], f"could not create the LocalStack venv at {venv}")
    env = _clean_env(venv)
    py = str(_venv_python(venv))
    _run_or_fail(
        [py, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", str(requirements)],
        f"pip could not install LocalStack's requirements into {venv}",
        env,
    )
    _run_or_fail([py, "-c", "import localstack.runtime.main"], "LocalStack installed but does not import", env)


def ensure_venv(
    *, venv_dir=None, requirements=REQUIREMENTS, quiet: bool = False, log: Callable[[str], None] | None = None
) -> Path:
    """The LocalStack venv's python; created once per set of pins (under a lock, for parallel checkouts).

    Raises PythonNotFound (no 3.13) or StartFailed (pip failed), both one-line LocalStackErrors.
    """
    requirements = Path(requirements)
    venv = venv_path(venv_dir, requirements)
    wanted = _requirements_hash(requirements)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _venv_current(venv, wanted):
            _say(f"venv up to date ({venv})", quiet, log)
        else:
            _create_venv(venv, requirements, lambda m: _say(m, quiet, log))
            (venv / STAMP_NAME).write_text(wanted + "\n")
            _say("venv ready", quiet, log)
    return _venv_python(venv)


def _clean_env(venv: Path) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYENV_VERSION", "__PYVENV_LAUNCHER__")
    }
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


# --------------------------------------------------------------------------- health
def health(port: int = DEFAULT_PORT, host: str = DEFAULT_HOST, timeout: float = 2.0) -> dict | None:
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
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])


def _runtime_env(venv: Path, inst_dir: Path, host: str, port: int, extra_env: dict | None) -> dict:
    """LocalStack's settings: everything under the instance folder, no traffic beyond loopback."""
    env = _clean_env(venv)
    env.update(
        {
            "GATEWAY_LISTEN": f"{host}:{port}",
            "DNS_ADDRESS": "0",  # no DNS server on :53
            "LOCALSTACK_VOLUME_DIR": str(inst_dir / "volume"),
            "FILESYSTEM_ROOT": str(inst_dir / "filesystem"),
            "LOCALSTACK_HOST": f"localhost.localstack.cloud:{port}",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "DISABLE_EVENTS": "1",  # no analytics
            "LOCALSTACK_TELEMETRY_DISABLED": "1",
            "DO_NOT_TRACK": "1",
            "EAGER_SERVICE_LOADING": "0",
            "AWS_DEFAULT_REGION": env.get("AWS_DEFAULT_REGION", "us-east-1"),
        }
    )
    env.update(extra_env or {})
    return env


def _reuse(state_dir, port: int, host: str, log_path: Path, quiet: bool, log) -> Instance | None:
    """The instance already running for state_dir on `port`, if healthy; else stop whatever of ours runs."""
    pid = _pid_file(state_dir).alive()
    if pid and _ready(port, host):
        _say(f"already running (pid {pid}) on {endpoint_url(port, host)}", quiet, log)
        return Instance(pid, port, host, str(log_path), str(Path(state_dir).resolve()), reused=True)
    if pid:  # ours but on another port or unhealthy: restart it cleanly
        stop(state_dir, quiet=quiet, log=log)
    return None


def _wait_ready(proc, state_dir, port: int, host: str, log_path: Path, timeout: float) -> None:
    def ready():
        if proc.poll() is not None:
            raise StartFailed(
                f"LocalStack exited with code {proc.returncode} during start-up "
                f"(last log line: {_tail(log_path) or 'none'}; full log: {log_path})"
            )
        return _ready(port, host)

    try:
        wait_for(ready, timeout, "LocalStack", interval=0.1, max_interval=1.0)
    except ServiceError:
        stop(state_dir, quiet=True)
        raise StartFailed(
            f"LocalStack was not ready after {timeout:.0f}s "
            f"(last log line: {_tail(log_path) or 'none'}; full log: {log_path})"
        ) from None
    except StartFailed:
        _pid_file(state_dir).path.unlink(missing_ok=True)
        raise


def start(
    state_dir,
    port: int = DEFAULT_PORT,
    log_path=None,
    *,
    venv_dir=None,
    host: str = DEFAULT_HOST,
    timeout: float = 90.0,
    quiet: bool = False,
    extra_env: dict | None = None,
    log: Callable[[str], None] | None = None,
) -> Instance:
    """Start LocalStack in the background and return once it is ready (bounded by ``timeout``).

    Idempotent: a healthy instance recorded under ``state_dir`` on this port is reused. The venv
    must exist (ensure_venv). Raises PortInUse / StartFailed (one-line LocalStackErrors).
    """
    inst_dir = instance_dir(state_dir)
    inst_dir.mkdir(parents=True, exist_ok=True)
    log_path = Path(log_path) if log_path else inst_dir / "localstack.log"
    reused = _reuse(state_dir, port, host, log_path, quiet, log)
    if reused:
        return reused
    if not port_free(port, host):
        what = "another LocalStack" if health(port, host) else "another process"
        raise PortInUse(f"port {port} on {host} is already in use by {what}; stop it or choose another port (--port)")
    venv = venv_path(venv_dir)
    py = _venv_python(venv)
    if not py.exists():
        raise StartFailed(f"LocalStack venv missing at {venv}; run: python -m scripts.localstack ensure-venv")
    _say(f"starting on {endpoint_url(port, host)} (log: {log_path})", quiet, log)
    try:
        proc = spawn(
            [str(py), "-m", "localstack.runtime.main"],
            _runtime_env(venv, inst_dir, host, port, extra_env),
            log_path,
            _pid_file(state_dir),
            cwd=inst_dir,
        )
    except OSError as e:
        raise StartFailed(f"could not run {py}: {e.strerror}") from None
    _wait_ready(proc, state_dir, port, host, log_path, timeout)
    _say(f"ready (pid {proc.pid})", quiet, log)
    return Instance(proc.pid, port, host, str(log_path), str(Path(state_dir).resolve()))


def is_running(state_dir) -> bool:
    """True when the LocalStack process recorded under state_dir is alive (health not checked)."""
    return pid(state_dir) is not None


def pid(state_dir) -> int | None:
    """Pid of the LocalStack started from state_dir, or None when it is not running."""
    return _pid_file(state_dir).alive()


def stop(state_dir, *, timeout: float = 20.0, quiet: bool = False, log: Callable[[str], None] | None = None) -> bool:
    """Stop the LocalStack started by start() for this state_dir (pid file only). True if one was stopped."""
    pid_file = _pid_file(state_dir)
    record = pid_file.read()
    stopped = bool(record and stop_pids(record, grace=timeout, group=True))
    pid_file.path.unlink(missing_ok=True)
    _say("stopped" if stopped else "not running", quiet, log)
    return stopped
