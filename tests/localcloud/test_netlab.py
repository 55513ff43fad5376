"""scripts/netlab.py and scripts/delaylink.py: labs build, measure and leave nothing behind."""
from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agent.checks import run_check
from scripts import netlab

pytestmark = pytest.mark.skipif(netlab.unavailable_reason() is not None,
                                reason=f"needs network namespaces: {netlab.unavailable_reason()}")

ROOT = Path(__file__).resolve().parents[2]
RTT_TOLERANCE_MS = 5.0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[-1].split()[0] != "Z"


def root_links() -> str:
    return netlab.sh("ip", "-o", "link", "show").stdout


@pytest.fixture
def regions():
    lab = netlab.build_regions("hctest", {"near": 10, "far": 40})
    try:
        yield lab
    finally:
        lab.teardown()


def test_teardown_leaves_no_namespace_device_or_process():
    chain = netlab.build_chain("hctest", 2, delay_ms=5)
    star = None
    try:
        star = netlab.build_regions("hctest", {"a": 5}, demo=True)
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
    try:
        with pytest.raises(netlab.NetlabError, match="injected"):
            netlab.build_chain(prefix, 3)
        assert len(calls) == 2   # the first link was made, so there was something to remove
        assert not [ns for ns in netlab.list_namespaces() if ns.startswith(prefix)]
    finally:
        netlab.cleanup(prefix)


def test_parallel_labs_get_distinct_names_and_blocks():
    labs, errors = [], []

    def build():
        try:
            labs.append(netlab.build_regions("hctest", {"x": 1}, demo=False))
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
    lab = netlab.build_chain("hctest", 1)
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
    with socket.create_server((regions.host_address, 0)) as api:  # what `make run` binds the API to
        api_port = api.getsockname()[1]
        demo = regions.call_in(regions.demo, socket.create_server, (regions.demo_address, 0))
        with demo:
            for region in regions.regions.values():
                ping = regions.call_in(region.namespace, run_check, "ping", regions.demo_address,
                                       {"count": 4, "interval": 0.2}, allow_private=True)
                to_api = regions.call_in(region.namespace, run_check, "tcp", regions.host_address,
                                         {"port": api_port}, allow_private=True)
                to_demo = regions.call_in(region.namespace, run_check, "tcp", regions.demo_address,
                                          {"port": demo.getsockname()[1]}, allow_private=True)
                assert ping["success"] and to_api["success"] and to_demo["success"]
                assert abs(ping["data"]["rtt_ms"]["avg"] - region.delay_ms) <= RTT_TOLERANCE_MS, region
                assert abs(to_api["data"]["connect_ms"] - region.delay_ms) <= RTT_TOLERANCE_MS, region
                assert abs(to_demo["data"]["connect_ms"] - region.delay_ms) <= RTT_TOLERANCE_MS, region


def test_cleanup_removes_a_lab_whose_owner_died():
    prefix = f"hcorphan{os.getpid()}"
    script = (
        "import os, sys; sys.path.insert(0, %r)\n"
        "from scripts import netlab\n"
        "lab = netlab.build_chain(%r, 1, delay_ms=1)\n"
        "print(lab.links[0].proc.pid, flush=True)\n"
        "os._exit(0)  # no teardown\n" % (str(ROOT), prefix)
    )
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        link_pid = int(done.stdout.split()[0])
        assert [ns for ns in netlab.list_namespaces() if ns.startswith(prefix)]
        removed = netlab.cleanup(prefix)
        assert removed
        assert not [ns for ns in netlab.list_namespaces() if ns.startswith(prefix)]
        # the orphaned link process is not our child; wait for it to go by polling its pidfd
        try:
            pidfd = os.pidfd_open(link_pid)
        except ProcessLookupError:
            pass
        else:
            select.select([pidfd], [], [], 10)
            os.close(pidfd)
        assert not pid_alive(link_pid)
    finally:
        netlab.cleanup(prefix)


def test_cli_help_runs():
    for script in ("netlab.py", "delaylink.py"):
        done = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "--help"],
                              capture_output=True, text=True, timeout=30)
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
