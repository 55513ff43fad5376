"""The whole local stack for end-to-end tests, brought up by the project's own
`python -m scripts.stack` (what `make up` runs) under the `e2e` profile: its own
ports and state in .local/e2e/, so it never touches `make run`'s stack.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable


def run_stack(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HC_", "PYTEST"))}
    for key in ("DATABASE_URL", "REDIS_URL", "REGISTRATION_TOKEN", "ADMIN_TOKEN", "ALLOW_PRIVATE_TARGETS"):
        env.pop(key, None)
    return subprocess.run(
        [PYTHON, "-m", "scripts.stack", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def read_env_file(path: Path) -> dict[str, str]:
    """The values of a stack.env file, as `source` would set them."""
    values = {}
    for line in path.read_text().splitlines():
        if not line.startswith("export "):
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        values[key] = shlex.split(value)[0] if value else ""
    return values


@pytest.fixture(scope="session")
def stack():
    # `down` runs whatever happens after `up` started: a failed or timed-out `up`, or an
    # unreadable stack.env, must not leave a half-started stack (processes, namespaces) behind.
    taken_down = False
    try:
        proc = run_stack("up", "--profile", "e2e")
        if proc.returncode != 0:
            down = run_stack("down", "--profile", "e2e")
            taken_down = True
            pytest.fail(f"the e2e stack did not come up:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}\n{down.stdout}")
        values = read_env_file(ROOT / ".local" / "e2e" / "stack.env")
        values["_up_output"] = proc.stdout
        yield values
    finally:
        if not taken_down:
            run_stack("down", "--profile", "e2e")
