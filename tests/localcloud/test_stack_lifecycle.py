"""`make up` / `make down` as a user sees them, on the tests' own `lifecycle`
profile (own ports and state), without LocalStack to keep it quick; the e2e
profile covers LocalStack."""
from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from scripts.services import Postgres, pid_alive, port_in_use, read_pid
from scripts.localcloud import netlab
from scripts.stack import PROFILES, managed_names, managed_pid, netlab_prefix
from tests.e2e.conftest import read_env_file, run_stack

PROFILE = PROFILES["lifecycle"]


def stack_pids() -> dict[str, int]:
    pids = {name: managed_pid(PROFILE, name) for name in managed_names(PROFILE)}
    pids["postgres"] = Postgres(PROFILE.state, PROFILE.pg).pid()
    pids["redis"] = read_pid(PROFILE.state / "redis" / "redis.pid")
    return pids


def listeners(values: dict[str, str]) -> list[tuple[str, int]]:
    """(host, port) of PostgreSQL, Redis, the API and the demo site, as stack.env tells them."""
    api, demo = urlsplit(values["API_URL"]), urlsplit(values["DEMO_HTTP_URL"])
    return [("127.0.0.1", PROFILE.pg), ("127.0.0.1", PROFILE.redis),
            (api.hostname, api.port), (demo.hostname, demo.port or 80)]


def lab_leftovers() -> list[str]:
    """Namespaces and delay-link processes of this profile's regional lab."""
    prefix = netlab_prefix(PROFILE)
    names = [n for n in netlab.list_namespaces() if n.startswith(prefix + "-")]
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "delaylink" in cmdline and prefix in cmdline:
            names.append(f"process {proc.name}: {cmdline[:80]}")
    return names


@pytest.fixture
def lifecycle_stack():
    yield
    run_stack("down", "--profile", "lifecycle")


def test_up_twice_is_idempotent_and_down_leaves_no_process(lifecycle_stack):
    first = run_stack("up", "--profile", "lifecycle", "--without-localstack")
    assert first.returncode == 0, first.stdout + first.stderr
    pids = stack_pids()
    assert {"api", "demo", "postgres", "redis"} <= set(pids)
    if netlab.unavailable_reason() is None:  # as root: the agents sit in regional namespaces
        assert "netlab" in pids and lab_leftovers() != []
    assert all(pid and pid_alive(pid) for pid in pids.values()), pids
    env_file = PROFILE.env_file
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    values = read_env_file(env_file)
    listening = listeners(values)
    assert all(port_in_use(port, host) for host, port in listening), listening

    second = run_stack("up", "--profile", "lifecycle", "--without-localstack")
    assert second.returncode == 0, second.stdout + second.stderr
    assert stack_pids() == pids  # nothing restarted
    assert "already running" in second.stdout

    down = run_stack("down", "--profile", "lifecycle")
    assert down.returncode == 0, down.stdout + down.stderr
    assert [name for name, pid in pids.items() if pid_alive(pid)] == []
    assert lab_leftovers() == []  # no namespace, no delay-link process
    # Probe only loopback, and check the lab's addresses are gone rather than connecting
    # to them: a connect to a vanished address would follow the default route off the machine.
    assert [port for host, port in listening if host == "127.0.0.1" and port_in_use(port, host)] == []
    addresses = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True).stdout
    assert [host for host, _ in listening if host != "127.0.0.1" and f" {host}/" in addresses] == []


def test_up_with_a_port_in_use_names_the_port_and_fails(lifecycle_stack):
    with socket.socket() as blocker:
        # The previous test's PostgreSQL may have left the port in TIME_WAIT.
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", PROFILE.pg))
        blocker.listen()
        proc = run_stack("up", "--profile", "lifecycle", "--without-localstack")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"port {PROFILE.pg}" in output and "already in use" in output
    assert "Traceback" not in output
