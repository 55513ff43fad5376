"""Two clones of the project on one machine: `make up` in both at the same time, `make down` in one,
and the other's API, agents and lab keep working. Each clone is a `git clone` of this checkout's committed HEAD;
to stay affordable they reuse this checkout's .venv and built UI (symlinks) and the machine-wide
LocalStack venv cache, so `make` finds nothing to install or build."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from scripts.localcloud import netlab
from scripts.localcloud.procs import ROOT
from scripts.localcloud.stack import AGENTS, agents_online
from tests.e2e.conftest import read_env_file

pytestmark = pytest.mark.skipif(
    not (ROOT / "frontend" / "dist" / "index.html").exists() or not (ROOT / ".venv" / ".installed").exists(),
    reason="needs this checkout's .venv and built UI (make venv ui)",
)

SHARED = (".venv", "frontend/node_modules", "frontend/dist")
OLD = "@1000000000"  # 2001: older than the shared .venv and UI, so make rebuilds nothing


def clone(dest: Path) -> Path:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(ROOT), str(dest)], check=True)
    subprocess.run(["git", "checkout", "--quiet", head.stdout.strip()], cwd=dest, check=True)
    for shared in SHARED:
        (dest / shared).symlink_to(ROOT / shared)
    files = subprocess.run(["git", "ls-files", "-z"], cwd=dest, capture_output=True, check=True).stdout
    subprocess.run(["xargs", "-0", "touch", "-h", "-d", OLD], cwd=dest, input=files, check=True)
    return dest


def make_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HC_", "PYTEST", "MAKE"))}
    for key in ("DATABASE_URL", "REDIS_URL", "REGISTRATION_TOKEN", "ADMIN_TOKEN", "ALLOW_PRIVATE_TARGETS"):
        env.pop(key, None)
    return env


def make(checkout: Path, target: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", target],
        cwd=checkout,
        env=make_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def make_up_together(clones: list[Path], timeout: float = 600) -> None:
    """`make up` in every clone at the same time; each must succeed (prints how long each took)."""
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            ["make", "--no-print-directory", "up"],
            cwd=checkout,
            env=make_env(),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for checkout in clones
    ]
    for checkout, proc in zip(clones, procs, strict=True):
        output, _ = proc.communicate(timeout=timeout)
        print(f"make up in a fresh clone ({checkout.name}, both at once): {time.monotonic() - started:.1f} s")
        assert proc.returncode == 0, output[-5000:]


def endpoints(env: dict[str, str]) -> set[tuple[str, int]]:
    """(host, port) of every server a stack.env points at: API, UI, PostgreSQL, Redis, LocalStack."""
    urls = [env[key] for key in ("API_URL", "UI_URL", "DATABASE_URL", "REDIS_URL", "LOCALSTACK_URL") if env[key]]
    return {(urlsplit(url).hostname, urlsplit(url).port) for url in urls}


def lab_namespaces(checkout: Path) -> list[str]:
    path = checkout / ".local" / "run" / "netlab.json"
    return json.loads(path.read_text())["namespaces"] if path.exists() else []


@pytest.fixture(scope="module")
def two_stacks(tmp_path_factory):
    root = tmp_path_factory.mktemp("clones")
    clones = [clone(root / "a"), clone(root / "b")]
    try:
        make_up_together(clones)
        yield [(checkout, read_env_file(checkout / ".local" / "stack.env")) for checkout in clones]
    finally:
        for checkout in clones:
            make(checkout, "clean")


def test_make_down_in_one_clone_leaves_the_other_running(two_stacks):
    (first, first_env), (second, second_env) = two_stacks
    assert first_env["CHECKOUT_ID"] != second_env["CHECKOUT_ID"]
    assert first_env["API_URL"] != second_env["API_URL"]
    assert not endpoints(first_env) & endpoints(second_env)  # no address and port in use by both
    lab = netlab.unavailable_reason() is None
    second_lab = lab_namespaces(second)
    if lab:
        assert first_env["LAB_NAME"] != second_env["LAB_NAME"] and second_lab

    down = make(first, "down")
    assert down.returncode == 0, down.stdout + down.stderr

    health = requests.get(f"{second_env['API_URL']}/health", timeout=10)
    assert health.status_code == 200 and health.json()["database"] == "up", health.text
    assert {a["name"] for a in AGENTS} <= agents_online(second_env["API_URL"])
    if lab:
        assert set(second_lab) <= set(netlab.list_namespaces())  # the other lab is untouched
        assert not set(lab_namespaces(first) or []) & set(netlab.list_namespaces())

    down = make(second, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not set(second_lab) & set(netlab.list_namespaces())
