"""`make up` / `make down` as a user sees them, on the tests' own `lifecycle`
profile (own ports and state), without LocalStack to keep it quick; the e2e
profile covers LocalStack."""
from __future__ import annotations

import socket

import pytest

from scripts.services import pid_alive, port_in_use, read_pid
from scripts.stack import PROFILES, managed_names, managed_pid
from tests.e2e.conftest import run_stack

PROFILE = PROFILES["lifecycle"]


def stack_pids() -> dict[str, int]:
    pids = {name: managed_pid(PROFILE, name) for name in managed_names(PROFILE)}
    pids["postgres"] = read_pid(PROFILE.state / "postgres" / "postmaster.pid")
    pids["redis"] = read_pid(PROFILE.state / "redis" / "redis.pid")
    return pids


@pytest.fixture
def lifecycle_stack():
    yield
    run_stack("down", "--profile", "lifecycle")


def test_up_twice_is_idempotent_and_down_leaves_no_process(lifecycle_stack):
    first = run_stack("up", "--profile", "lifecycle", "--without-localstack")
    assert first.returncode == 0, first.stdout + first.stderr
    pids = stack_pids()
    assert {"api", "demo", "postgres", "redis"} <= set(pids)
    assert all(pid and pid_alive(pid) for pid in pids.values()), pids
    for port in (PROFILE.pg, PROFILE.redis, PROFILE.api, PROFILE.demo):
        assert port_in_use(port), port
    env_file = PROFILE.env_file
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    assert "API_URL=" in env_file.read_text()

    second = run_stack("up", "--profile", "lifecycle", "--without-localstack")
    assert second.returncode == 0, second.stdout + second.stderr
    assert stack_pids() == pids  # nothing restarted
    assert "already running" in second.stdout

    down = run_stack("down", "--profile", "lifecycle")
    assert down.returncode == 0, down.stdout + down.stderr
    assert [name for name, pid in pids.items() if pid_alive(pid)] == []
    for port in (PROFILE.pg, PROFILE.redis, PROFILE.api, PROFILE.demo):
        assert not port_in_use(port), port


def test_up_with_a_port_in_use_names_the_port_and_fails(lifecycle_stack):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", PROFILE.pg))
        blocker.listen()
        proc = run_stack("up", "--profile", "lifecycle", "--without-localstack")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"port {PROFILE.pg}" in output and "already in use" in output
    assert "Traceback" not in output
