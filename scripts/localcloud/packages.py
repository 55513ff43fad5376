"""The system packages the local cloud needs (PostgreSQL, redis-server, iproute2, Chromium for the
browser tests, and the benchmarks' public tools), installed with apt as root, or named in one line
otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from scripts.localcloud.postgres import postgres_bindir
from scripts.localcloud.procs import ServiceError

# The benchmarks' tools (bench/README.md): a load generator, the peer we compare the agent with,
# and GNU time for peak memory. py-spy comes from PyPI (requirements-dev.in).
BENCH_TOOLS = {
    "wrk": "/usr/bin/wrk",
    "prometheus-blackbox-exporter": "/usr/bin/prometheus-blackbox-exporter",
    "time": "/usr/bin/time",
}
# The blackbox exporter package starts a service on its default port (9115) when it can. The bench
# starts its own on loopback with its own config, so the package's service is kept from starting
# (policy-rc.d during the install) and masked where systemd runs.
_NO_SERVICE_START = "#!/bin/sh\n# written by scripts/localcloud/packages.py for one apt-get install\nexit 101\n"
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


def missing_packages(need_browser: bool = False, need_bench: bool = False) -> list[str]:
    missing = []
    if not shutil.which("redis-server"):
        missing.append("redis-server")
    if postgres_bindir() is None:
        missing.append("postgresql")
    if need_browser and not shutil.which("chromium"):
        missing.append("chromium")
    if not shutil.which("ip"):
        missing.append("iproute2")
    if need_bench:
        missing.extend(package for package, path in BENCH_TOOLS.items() if not Path(path).exists())
    return missing


def ensure_system_packages(need_browser: bool = False, need_bench: bool = False, log=print) -> None:
    missing = missing_packages(need_browser, need_bench)
    if not missing:
        return
    if os.geteuid() != 0:
        raise ServiceError(
            f"missing system packages: {' '.join(missing)}. Install them with: "
            f"sudo apt-get update && sudo apt-get install -y {' '.join(missing)}"
        )
    log(f"  installing system packages with apt: {' '.join(missing)} (first run only)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    wrote_policy = False
    if "prometheus-blackbox-exporter" in missing and not POLICY_RC_D.exists():
        POLICY_RC_D.write_text(_NO_SERVICE_START)
        POLICY_RC_D.chmod(0o755)
        wrote_policy = True
    try:
        for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
            proc = subprocess.run(argv, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
                raise ServiceError(f"{' '.join(argv)} failed: {' | '.join(tail)}")
    finally:
        if wrote_policy:
            POLICY_RC_D.unlink(missing_ok=True)
    if "prometheus-blackbox-exporter" in missing:
        keep_blackbox_service_off()


def keep_blackbox_service_off() -> None:
    """Stop and mask the package's own exporter service (systemd), so only the bench's one runs."""
    if not Path("/run/systemd/system").is_dir() or not shutil.which("systemctl"):
        return  # no systemd: policy-rc.d kept the init script from starting it
    subprocess.run(
        ["systemctl", "mask", "--now", "prometheus-blackbox-exporter.service"], capture_output=True, check=False
    )
