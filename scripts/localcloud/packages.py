"""The system packages the local cloud needs (PostgreSQL, redis-server, iproute2, Chromium for the
browser tests), installed with apt as root, or named in one line otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess

from scripts.localcloud.postgres import postgres_bindir
from scripts.localcloud.procs import ServiceError


def missing_packages(need_browser: bool = False) -> list[str]:
    missing = []
    if not shutil.which("redis-server"):
        missing.append("redis-server")
    if postgres_bindir() is None:
        missing.append("postgresql")
    if need_browser and not shutil.which("chromium"):
        missing.append("chromium")
    if not shutil.which("ip"):
        missing.append("iproute2")
    return missing


def ensure_system_packages(need_browser: bool = False, log=print) -> None:
    missing = missing_packages(need_browser)
    if not missing:
        return
    if os.geteuid() != 0:
        raise ServiceError(
            f"missing system packages: {' '.join(missing)}. Install them with: "
            f"sudo apt-get update && sudo apt-get install -y {' '.join(missing)}"
        )
    log(f"  installing system packages with apt: {' '.join(missing)} (first run only)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        proc = subprocess.run(argv, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise ServiceError(f"{' '.join(argv)} failed: {' | '.join(tail)}")
