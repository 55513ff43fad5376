"""scripts/localcloud/netlab: labs build, measure and leave nothing behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agent.checks import run_check
from scripts.localcloud import netlab
from scripts.localcloud.netlab import containment
from scripts.localcloud.procs import pid_alive

pytestmark = pytest.mark.skipif(
    netlab.unavailable_reason() is not None, reason=f"needs network namespaces: {netlab.unavailable_reason()}"
)

ROOT = Path(__file__).resolve().parents[2]
RTT_TOLERANCE_MS = 5.0


def root_links() -> str:
    return netlab.sh("ip", "-o", "link", "show").stdout


@pytest.fixture
def regions():
    lab = netlab.build_regions(netlab.DEFAULT_PREFIX, {"near": 10, "far": 40})
    try:
        yield lab
    finally:
        lab.teardown()


def test_teardown_leaves_no_namespace_device_or_process():
    chain = netlab.build_chain(netlab.DEFAULT_PREFIX, 2, delay_ms=5)
    star = None
    try:
        star = netlab.build_regions(netlab.DEFAULT_PREFIX, {"a": 5}, demo=True)
        # a process that never ends by itself: only the teardown can stop it
        sleeper = chain.popen_in(chain.client, [sys.executable, "-c", "import signal; signal.pause()"])
        pids = [link.proc.pid for lab in (chain, star) for link in lab.links] + [sleeper.pid]
        names = chain.namespaces + star.namespaces
        devices = list(star.root_devices)
        assert pids and all(pid_alive(pid) for pid in pids)
        assert set(names) <= set(netlab.list_namespaces())

        chain.teardown()
        star.teardown()

        assert not set(names) & set(netlab.list_namespaces())
        assert not [pid for pid in pids if pid_alive(pid)]
        assert devices and not [dev for dev in devices if dev in root_links()]
        assert str(star.block) not in netlab.sh("ip", "-4", "route").stdout
    finally:
        chain.teardown()  # idempotent; also the cleanup when an assertion above failed
        if star is not None:
            star.teardown()


def test_failed_build_removes_what_it_made(monkeypatch):
    # A prefix of this test's own: other sessions may create and remove namespaces meanwhile.
    prefix = f"hcfail{os.getpid()}"
    original = netlab.Lab.veth
    calls = []

    def fail_second(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise netlab.NetlabError("injected failure")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(netlab.Lab, "veth", fail_second)
    with pytest.raises(netlab.NetlabError, match="injected"):
        netlab.build_chain(prefix, 3)
    assert len(calls) == 2  # the first link was made, so there was something to remove
    assert not [ns for ns in netlab.list_namespaces() if ns.startswith(prefix)]


def test_parallel_labs_get_distinct_names_and_blocks():
    labs, errors = [], []

    def build():
        try:
            labs.append(netlab.build_regions(netlab.DEFAULT_PREFIX, {"x": 1}, demo=False))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors
        assert len({lab.name for lab in labs}) == 3
        assert len({lab.block for lab in labs}) == 3
    finally:
        for lab in labs:
            lab.teardown()


def test_call_in_runs_inside_the_namespace():
    lab = netlab.build_chain(netlab.DEFAULT_PREFIX, 1)
    try:

        def bind_client_address():
            with socket.socket() as s:
                s.bind((lab.client_address, 0))
                return True

        assert lab.call_in(lab.client, bind_client_address) is True
        with pytest.raises(OSError):
            bind_client_address()  # that address exists only in the lab
    finally:
        lab.teardown()


def test_regions_reach_the_host_and_the_demo_namespace_with_their_delays(regions):
    """Each path crosses its region's delay link. A delay link can only hold a packet back, never
    deliver it early, so the fastest of a few samples sits just above the configured delay; the
    slower ones only show how busy the machine is (scheduling), which is not what this test is about."""
    with socket.create_server((regions.host_address, 0)) as api:  # what `make run` binds the API to
        api_port = api.getsockname()[1]
        demo = regions.call_in(regions.demo, socket.create_server, (regions.demo_address, 0))
        with demo:
            for region in regions.regions.values():
                ping = regions.call_in(
                    region.namespace,
                    run_check,
                    "ping",
                    regions.demo_address,
                    {"count": 4, "interval": 0.2},
                    allow_private=True,
                )
                assert ping["success"], ping
                assert abs(ping["data"]["rtt_ms"]["min"] - region.delay_ms) <= RTT_TOLERANCE_MS, region
                for address, port in ((regions.host_address, api_port), (regions.demo_address, demo.getsockname()[1])):
                    connects = [
                        regions.call_in(region.namespace, run_check, "tcp", address, {"port": port}, allow_private=True)
                        for _ in range(3)
                    ]
                    assert all(c["success"] for c in connects), connects
                    fastest = min(c["data"]["connect_ms"] for c in connects)
                    assert abs(fastest - region.delay_ms) <= RTT_TOLERANCE_MS, (region, address, connects)


def orphan_lab(build: str) -> dict:
    """A lab built by a child process that exits without teardown; returns the lab's description."""
    script = (
        "import json, os\n"
        "from scripts.localcloud import netlab\n"
        f"lab = netlab.{build}\n"
        "print(json.dumps(lab.describe(), default=str), flush=True)\n"
        "os._exit(0)  # no teardown\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_remove_recorded_undoes_a_lab_whose_owner_died_and_nothing_else():
    bystander = netlab.build_chain(hops=1)  # another lab (as of another checkout) must survive
    description = orphan_lab("build_chain(hops=1, delay_ms=1)")
    try:
        link_pid = description["links"][0]["pid"][0]
        assert set(description["namespaces"]) <= set(netlab.list_namespaces())
        assert netlab.remove_recorded(description)
        assert not set(description["namespaces"]) & set(netlab.list_namespaces())
        assert not pid_alive(link_pid)  # procs.stop waited for it
        assert set(bystander.namespaces) <= set(netlab.list_namespaces())
    finally:
        netlab.remove_recorded(description)
        bystander.teardown()


def test_cli_help_runs():
    for module in ("scripts.netlab", "scripts.localcloud.netlab.delaylink"):
        done = subprocess.run(
            [sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0 and "usage" in done.stdout


def test_regions_cannot_route_beyond_the_lab(regions):
    """Route lookups only (no packet is sent): the hub, through which every region's
    traffic passes, knows the lab and refuses everything else, so nothing of the lab
    can leave the machine even on a host that forwards."""

    def lookup(ns: str, address: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "-n", ns, "route", "get", address], capture_output=True, text=True)

    assert lookup(regions.hub, regions.host_address).returncode == 0
    assert lookup(regions.hub, regions.demo_address).returncode == 0
    for outside in ("203.0.113.5", "10.1.2.3"):
        refused = lookup(regions.hub, outside)
        assert refused.returncode != 0 and "no route to host" in refused.stderr.lower(), refused


def test_a_lab_holds_the_containment_route_and_its_own_routes_still_win(regions):
    """Route lookups only: the lab's range is unreachable from the root namespace, except the
    lab's own, more specific routes; the hold goes with the lab."""

    def lookup(address: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "route", "get", address], capture_output=True, text=True)

    assert containment.route_installed() and regions.name in containment.holders()
    assert lookup(regions.demo_address).returncode == 0  # via the lab's hub
    unused = "198.18.254.254"  # in the range, in no lab
    assert "no route to host" in lookup(unused).stderr.lower()
    regions.teardown()
    assert regions.name not in containment.holders()
