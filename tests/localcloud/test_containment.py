"""No lab address ever leaves the machine: with a stack running and its lab torn down under it,
a connect to the API's lab address fails here with EHOSTUNREACH (the root namespace's
`unreachable 198.18.0.0/15`), instead of following the default route off the machine."""

from __future__ import annotations

import errno
import json
import socket
import subprocess
from urllib.parse import urlsplit

import pytest

from scripts.localcloud import netlab
from scripts.localcloud.netlab import containment
from scripts.localcloud.procs import stop
from scripts.localcloud.stack import PROFILES, managed_pid
from tests.e2e.conftest import read_env_file, run_stack

pytestmark = pytest.mark.skipif(
    netlab.unavailable_reason() is not None, reason=f"needs network namespaces: {netlab.unavailable_reason()}"
)

PROFILE = PROFILES["lifecycle"]


@pytest.fixture
def stack_without_its_lab():
    """The lifecycle stack (no LocalStack, no agents), then its lab torn down under it."""
    try:
        up = run_stack("up", "--profile", "lifecycle", "--without-localstack", "--without-agents")
        assert up.returncode == 0, up.stdout + up.stderr
        values = read_env_file(PROFILE.env_file)
        description = json.loads(PROFILE.lab_file.read_text())
        assert stop(PROFILE.pid_file("netlab").read(), grace=20)  # the lab process tears its lab down
        yield values, description
    finally:
        run_stack("down", "--profile", "lifecycle")


def test_the_api_address_of_a_vanished_lab_is_unreachable_locally(stack_without_its_lab):
    values, description = stack_without_its_lab
    api = urlsplit(values["API_URL"])
    assert not set(description["namespaces"]) & set(netlab.list_namespaces())
    assert managed_pid(PROFILE, "api")  # the stack runs on, so its hold keeps the route
    assert containment.route_installed() and PROFILE.hold_name in containment.holders()
    route = subprocess.run(["ip", "route", "get", api.hostname], capture_output=True, text=True)
    assert route.returncode != 0 and "no route to host" in route.stderr.lower(), route
    with socket.socket() as s:
        s.settimeout(5)
        assert s.connect_ex((api.hostname, api.port)) == errno.EHOSTUNREACH


def test_down_releases_the_stack_s_hold():
    up = run_stack("up", "--profile", "lifecycle", "--without-localstack", "--without-agents")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert PROFILE.hold_name in containment.holders()
    finally:
        run_stack("down", "--profile", "lifecycle")
    assert PROFILE.hold_name not in containment.holders()
