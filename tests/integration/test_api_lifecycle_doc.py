"""The hand-run curl session in docs/api-lifecycle.sh works as written."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("redis-cli")), reason="needs curl and redis-cli")
def test_the_documented_curl_session_completes_a_check(api_server, redis_url, clean_state):
    env = dict(os.environ, API_URL=api_server, REDIS_URL=redis_url, REGISTRATION_TOKEN="test-registration-token")
    done = subprocess.run(
        ["bash", str(ROOT / "docs" / "api-lifecycle.sh")], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.strip().splitlines()[-1] == "completed"
