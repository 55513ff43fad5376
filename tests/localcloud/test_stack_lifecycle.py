"""`make up` / `make down` as a user sees them, on the tests' own `lifecycle` profile (own ports
and state), without LocalStack to keep it quick; the e2e profile covers LocalStack."""

from __future__ import annotations

import json
import socket
import subprocess
from urllib.parse import urlsplit

import pytest

from scripts.localcloud import netlab
from scripts.localcloud.postgres import Postgres
from scripts.localcloud.procs import pid_alive, port_free, read_pid
from scripts.localcloud.stack import PROFILES, managed_names, managed_pid
from tests.e2e.conftest import read_env_file, run_stack

PROFILE = PROFILES["lifecycle"]


def stack_pids() -> dict[str, int]:
    pids = {name: managed_pid(PROFILE, name) for name in managed_names(PROFILE)}
    pids["postgres"] = Postgres(PROFILE.state, 0).pid()
    pids["redis"] = read_pid(PROFILE.state / "redis" / "redis.pid")
    return pids


def listeners(values: dict[str, str]) -> list[tuple[str, int]]:
    """(host, port) of PostgreSQL, Redis, the API and the demo site, as stack.env tells them."""
    api, demo = urlsplit(values["API_URL"]), urlsplit(values["DEMO_HTTP_URL"])
    return [
        ("127.0.0.1", int(values["PORT_PG"])),
        ("127.0.0.1", int(values["PORT_REDIS"])),
        (api.hostname, api.port),
        (demo.hostname, demo.port or 80),
    ]


def lab_leftovers(description: dict | None) -> list[str]:
    """Namespaces and delay-link processes of this profile's lab, by the names it recorded."""
    if not description:
        return []
    names = [ns for ns in description["namespaces"] if ns in netlab.list_namespaces()]
    return names + [f"pid {link['pid'][0]}" for link in description["links"] if pid_alive(*link["pid"])]


@pytest.fixture
def lifecycle_stack():
    yield
    run_stack("down", "--profile", "lifecycle")


def test_up_twice_is_idempotent_and_down_leaves_no_process(lifecycle_stack):
    first = run_stack("up", "--profile", "lifecycle", "--without-localstack")
    assert first.returncode == 0, first.stdout + first.stderr
    pids = stack_pids()
    assert {"api", "demo", "postgres", "redis"} <= set(pids)
    description = None
    if netlab.unavailable_reason() is None:  # as root: the agents sit in regional namespaces
        description = json.loads(PROFILE.lab_file.read_text())
        assert "netlab" in pids and lab_leftovers(description) != []
        assert description["name"].startswith(PROFILE.lab_prefix)  # the lab carries the checkout's id
    assert all(pid and pid_alive(pid) for pid in pids.values()), pids
    env_file = PROFILE.env_file
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    values = read_env_file(env_file)
    assert {f"PORT_{k.upper()}": str(v) for k, v in PROFILE.recorded_ports().items()}.items() <= values.items()
    listening = listeners(values)
    assert not [(host, port) for host, port in listening if host == "127.0.0.1" and port_free(port)], listening

    second = run_stack("up", "--profile", "lifecycle", "--without-localstack")
    assert second.returncode == 0, second.stdout + second.stderr
    assert stack_pids() == pids  # nothing restarted
    assert "already running" in second.stdout
    assert read_env_file(env_file)["PORT_API"] == values["PORT_API"]  # the same ports again

    down = run_stack("down", "--profile", "lifecycle")
    assert down.returncode == 0, down.stdout + down.stderr
    assert [name for name, pid in pids.items() if pid_alive(pid)] == []
    assert lab_leftovers(description) == []  # no namespace, no delay-link process
    # Probe only loopback, and check the lab's addresses are gone rather than connecting to them.
    assert [port for host, port in listening if host == "127.0.0.1" and not port_free(port)] == []
    addresses = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True).stdout
    assert [host for host, _ in listening if host != "127.0.0.1" and f" {host}/" in addresses] == []


def test_a_recorded_port_taken_meanwhile_is_replaced_by_a_free_one(lifecycle_stack):
    recorded = PROFILE.recorded_ports()
    if "pg" not in recorded:
        assert (
            run_stack(
                "up", "--profile", "lifecycle", "--without-localstack", "--without-netns", "--without-agents"
            ).returncode
            == 0
        )
        run_stack("down", "--profile", "lifecycle")
        recorded = PROFILE.recorded_ports()
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", recorded["pg"]))
        blocker.listen()
        proc = run_stack("up", "--profile", "lifecycle", "--without-localstack", "--without-netns", "--without-agents")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    now = PROFILE.recorded_ports()
    assert now["pg"] != recorded["pg"] and read_env_file(PROFILE.env_file)["PORT_PG"] == str(now["pg"])
    assert {k: v for k, v in now.items() if k != "pg"} == {k: v for k, v in recorded.items() if k != "pg"}
