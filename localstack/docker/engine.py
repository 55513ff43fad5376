#!/usr/bin/env python3
"""The Docker engine for the compose stack: install it, start it, stop it if we started it.

    python localstack/docker/engine.py start | stop | status

As root on Debian, `start` installs docker.io, debootstrap and docker-compose when missing and
starts `dockerd` in the background (pid, log and what it changed recorded in .local/docker/).
An engine that already runs is used as it is and never stopped by us.

A running dockerd turns on IP forwarding and sets the FORWARD policy to DROP. The regional
labs (198.18.0.0/15 namespaces) must keep working, so `start` accepts their traffic in the
DOCKER-USER chain (Docker's place for the operator's rules), and `stop` puts the policy and
ip_forward back as they were before we started dockerd.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / ".local" / "docker"
RECORD = STATE / "dockerd.json"
LAB_NET = "198.18.0.0/15"
PACKAGES = {"dockerd": "docker.io", "debootstrap": "debootstrap", "docker-compose": "docker-compose"}


class EngineError(RuntimeError):
    """The engine cannot run here; the message is one line saying why."""


def engine_running() -> bool:
    docker = "/usr/bin/docker" if os.access("/usr/bin/docker", os.X_OK) else shutil.which("docker")
    if not docker:
        return False
    return subprocess.run([docker, "info"], capture_output=True).returncode == 0


def install_packages() -> None:
    missing = [pkg for cmd, pkg in PACKAGES.items() if not shutil.which(cmd)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise EngineError(f"{', '.join(missing)} missing and not root: apt-get install -y {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        run = subprocess.run(argv, capture_output=True, text=True, env=env)
        if run.returncode != 0:
            tail = (run.stderr.strip().splitlines() or ["?"])[-1]
            raise EngineError(f"{' '.join(argv[:2])} failed: {tail}")


def _forward_policy() -> str:
    run = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True)
    for line in run.stdout.splitlines():
        if line.startswith("-P FORWARD "):
            return line.split()[2]
    return "ACCEPT"


def _ip_forward() -> str:
    return Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()


def keep_labs_forwarding() -> None:
    """Accept the labs' forwarded traffic before Docker's own FORWARD rules (idempotent)."""
    for flag in ("-s", "-d"):
        rule = ["DOCKER-USER", flag, LAB_NET, "-j", "ACCEPT"]
        if subprocess.run(["iptables", "-C", *rule], capture_output=True).returncode != 0:
            subprocess.run(["iptables", "-I", *rule], capture_output=True)


def start(timeout: float = 60.0) -> bool:
    """Make sure an engine runs; True when this call started it (so only then stop it later)."""
    if engine_running():
        if os.geteuid() == 0:
            keep_labs_forwarding()
        return False
    if os.geteuid() != 0:
        raise EngineError("no Docker engine is running, and starting dockerd needs root")
    install_packages()
    STATE.mkdir(parents=True, exist_ok=True)
    before = {"forward_policy": _forward_policy(), "ip_forward": _ip_forward()}
    log = open(STATE / "dockerd.log", "ab")  # noqa: SIM115 - handed to the daemon
    proc = subprocess.Popen(
        ["dockerd", "--log-level=warn"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    RECORD.write_text(json.dumps({"pid": proc.pid, **before}))
    deadline = time.monotonic() + timeout
    while not engine_running():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop()
            tail = (STATE / "dockerd.log").read_text(errors="replace").strip().splitlines()[-1:] or ["?"]
            raise EngineError(f"dockerd did not start: {tail[0]} (log: {STATE / 'dockerd.log'})")
        time.sleep(0.2)  # polling the engine's socket, bounded by the deadline
    keep_labs_forwarding()
    return True


def stop(timeout: float = 30.0) -> bool:
    """Stop the dockerd recorded by start(), restoring forwarding as it was; False if none."""
    try:
        record = json.loads(RECORD.read_text())
    except (OSError, ValueError):
        return False
    pid = record["pid"]
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):  # reap it when it is our child
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.2)
    except ProcessLookupError:
        pass
    subprocess.run(["iptables", "-P", "FORWARD", record.get("forward_policy", "ACCEPT")], capture_output=True)
    Path("/proc/sys/net/ipv4/ip_forward").write_text(record.get("ip_forward", "0") + "\n")
    RECORD.unlink(missing_ok=True)
    return True


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    try:
        if command == "start":
            print("dockerd started" if start() else "dockerd already running (left as it is)")
        elif command == "stop":
            print("dockerd stopped" if stop() else "no dockerd started by this checkout")
        else:
            print("running" if engine_running() else "not running")
    except EngineError as exc:
        print(f"!! {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
