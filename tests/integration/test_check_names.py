"""Name resolution where the local stack's agents run: inside a region namespace.

`make run` starts each agent with `ip netns exec <region>`, so the agent
uses the namespace's /etc/netns/<region>/resolv.conf, which scripts/localcloud/netlab
points at the demo namespace's DNS server. These tests start that DNS server
(with a name whose answer is 127.0.0.1, as a rebinding attacker would serve)
and run the checks the same way, in a `python` started by `ip netns exec`.

Also: a lookup runs in the network namespace of the check that asked for it,
even when checks run on threads switched into different namespaces.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.checks import run_check
from chalicelib import targets
from scripts.localcloud import netlab
from scripts.localcloud.demosite import DNSServer, default_zone, serve_http

pytestmark = pytest.mark.skipif(
    netlab.unavailable_reason() is not None, reason=f"needs network namespaces: {netlab.unavailable_reason()}"
)

ROOT = Path(__file__).resolve().parents[2]
NAME = "demo.hostchecker.test"
REBIND = f"rebind.{NAME}"  # a public-looking name whose DNS answer is loopback
MISSING = f"missing.{NAME}"  # NXDOMAIN


@pytest.fixture(scope="module")
def region_lab():
    lab = netlab.build_regions(netlab.DEFAULT_PREFIX, {"near": 2}, demo=True)
    servers = []
    try:
        zone = {**default_zone(NAME, lab.demo_address), REBIND: [("A", 60, "127.0.0.1")]}
        servers.append(lab.call_in(lab.demo, DNSServer, lab.demo_address, 53, zone))
        servers.append(lab.call_in(lab.demo, serve_http, lab.demo_address, 80))
        yield lab
    finally:
        for server in servers:
            if isinstance(server, DNSServer):
                server.stop()
            else:
                server.shutdown()
                server.server_close()
        lab.teardown()


def run_in_region(lab, checks: list[tuple[str, str, dict, bool]]) -> list[dict]:
    """run_check for each (type, target, options, allow_private), in a process started as the stack starts agents."""
    code = (
        "import json, sys\n"
        "from agent.checks import run_check\n"
        "print(json.dumps([run_check(t, target, o, allow_private=p) for t, target, o, p in json.load(sys.stdin)]))\n"
    )
    namespace = lab.regions["near"].namespace
    done = lab.run_in(namespace, [sys.executable, "-c", code], input=json.dumps(checks), cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_regions_get_the_demo_dns_server_as_their_resolver(region_lab):
    resolv = netlab.NETNS_ETC / region_lab.regions["near"].namespace / "resolv.conf"
    assert f"nameserver {region_lab.demo_address}" in resolv.read_text()
    done = region_lab.run_in(region_lab.regions["near"].namespace, ["cat", "/etc/resolv.conf"])
    assert f"nameserver {region_lab.demo_address}" in done.stdout


def test_an_agent_in_a_region_resolves_names_through_the_labs_dns(region_lab):
    demo = region_lab.demo_address
    http, tcp, dns = run_in_region(
        region_lab,
        [
            ("http", f"http://{NAME}/ok", {}, True),
            ("tcp", NAME, {"port": 80}, True),
            ("dns", NAME, {}, True),  # the system resolver
        ],
    )
    assert http["success"] is True, http["error"]
    assert http["address"] == demo and http["data"]["status_code"] == 200
    assert tcp["success"] is True and tcp["address"] == demo
    assert dns["success"] is True, dns["error"]
    assert dns["data"]["resolver"] == demo
    assert [(a["type"], a["value"]) for a in dns["data"]["answers"]] == [("A", demo)]


def test_a_name_that_does_not_exist_is_a_dns_failure_for_every_type(region_lab):
    results = run_in_region(
        region_lab,
        [
            ("http", f"http://{MISSING}/", {}, True),
            ("tcp", MISSING, {"port": 80}, True),
            ("ping", MISSING, {"count": 1}, True),
            ("traceroute", MISSING, {}, True),
            ("dns", MISSING, {}, True),
        ],
    )
    for check_type, result in zip(("http", "tcp", "ping", "traceroute", "dns"), results, strict=True):
        assert result["success"] is False, (check_type, result)
        assert result["error"]["kind"] == "dns_failure", (check_type, result["error"])
    assert results[-1]["data"]["rcode"] == "NXDOMAIN"


def test_a_name_resolving_to_loopback_is_refused_after_resolution(region_lab):
    # Nothing listens on 127.0.0.1:80 in the region: were the policy skipped,
    # tcp and http would fail as `refused`, not `blocked_target`.
    results = run_in_region(
        region_lab,
        [
            ("http", f"http://{REBIND}/", {}, False),
            ("tcp", REBIND, {"port": 80}, False),
            ("ping", REBIND, {"count": 1}, False),
            ("traceroute", REBIND, {}, False),
        ],
    )
    for check_type, result in zip(("http", "tcp", "ping", "traceroute"), results, strict=True):
        assert result["success"] is False, (check_type, result)
        assert result["error"]["kind"] == "blocked_target", (check_type, result["error"])
        assert "127.0.0.1" in result["error"]["message"]
    allowed = run_in_region(region_lab, [("tcp", REBIND, {"port": 80}, True)])[0]
    assert allowed["error"]["kind"] == "refused" and allowed["address"] == "127.0.0.1"


def _netns_inode() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def test_a_lookup_runs_in_the_namespace_of_the_check_that_asked(monkeypatch):
    lab = netlab.build_regions(netlab.DEFAULT_PREFIX, {"a": 1, "b": 1}, demo=False)
    try:
        seen: list[tuple[str, int]] = []

        def recording_resolve(host, allow_private, family=0):
            seen.append((host, _netns_inode()))
            return ["127.0.0.1"]

        monkeypatch.setattr(targets, "resolve", recording_resolve)
        for name in ("a", "b", "a"):
            ns = lab.regions[name].namespace
            # Nothing listens on 127.0.0.1:9 in the region: refused, after the lookup.
            result = lab.call_in(ns, run_check, "tcp", f"{name}.example.test", {"port": 9}, allow_private=True)
            assert result["error"]["kind"] == "refused", result
        expected = [
            (f"{name}.example.test", os.stat(netlab.NETNS_DIR / lab.regions[name].namespace).st_ino)
            for name in ("a", "b", "a")
        ]
        assert seen == expected
    finally:
        lab.teardown()


def test_teardown_removes_the_namespaces_resolver_files():
    lab = netlab.build_regions(netlab.DEFAULT_PREFIX, {"gone": 1}, demo=True)
    try:
        folder = netlab.NETNS_ETC / lab.regions["gone"].namespace
        assert (folder / "resolv.conf").exists()
        lab.teardown()
        assert not folder.exists()
    finally:
        lab.teardown()  # idempotent; the cleanup when an assertion above failed


def test_removing_a_killed_lab_removes_its_resolver_files():
    script = (
        "import json, os\n"
        "from scripts.localcloud import netlab\n"
        "lab = netlab.build_regions(regions={'x': 1}, demo=True)\n"
        "print(json.dumps(lab.describe(), default=str), flush=True)\n"
        "os._exit(0)  # no teardown\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    description = json.loads(done.stdout)
    try:
        folder = netlab.NETNS_ETC / description["regions"]["x"]["namespace"]
        assert (folder / "resolv.conf").exists()
        netlab.remove_recorded(description)
        assert not folder.exists()
        assert not set(description["namespaces"]) & set(netlab.list_namespaces())
    finally:
        netlab.remove_recorded(description)
