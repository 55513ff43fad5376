"""The local stage reads its configuration as production does: the tokens and the
database and Redis URLs come from the stage's secret (in LocalStack), not from the
API process's environment."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import requests

from scripts.localcloud.stack import PROFILES, managed_pid

SECRET_VALUES = ("DATABASE_URL", "REDIS_URL", "REGISTRATION_TOKEN", "ADMIN_TOKEN")


def process_environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").partition("=")[::2] for item in raw if b"=" in item)


def test_local_api_takes_tokens_and_urls_from_the_localstack_secret(stack):
    if not stack["LOCALSTACK_URL"]:
        pytest.skip("LocalStack did not start here, so the stack runs on the environment (it said so)")
    pid = managed_pid(PROFILES["e2e"], "api")
    assert pid, "the e2e stack's API is not running"
    environ = process_environment(pid)
    assert [key for key in SECRET_VALUES if key in environ] == []
    assert environ["AWS_ENDPOINT_URL"] == stack["LOCALSTACK_URL"]

    api = stack["API_URL"]
    health = requests.get(f"{api}/health", timeout=10).json()
    assert health["database"] == "up" and health["redis"] == "up"  # URLs from the secret
    assert health["active_agents"] == 3  # they registered with the secret's token
    missing = f"{api}/api/checks/{uuid.uuid4()}"
    assert requests.delete(missing, headers={"X-Admin-Token": "wrong"}, timeout=10).status_code == 403
    assert requests.delete(missing, headers={"X-Admin-Token": stack["ADMIN_TOKEN"]}, timeout=10).status_code == 404
