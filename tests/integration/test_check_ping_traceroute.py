"""ping and traceroute through a chain of network namespaces (scripts/localcloud/netlab).

The checks run on a thread switched into the chain's client namespace, so
every packet stays inside namespaces this test builds, in 198.18.0.0/15.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.checks import capabilities, run_check
from scripts.localcloud import netlab

pytestmark = pytest.mark.skipif(
    netlab.unavailable_reason() is not None, reason=f"needs network namespaces: {netlab.unavailable_reason()}"
)

ROOT = Path(__file__).resolve().parents[2]
HOPS = 3
ADDED_RTT_MS = 20.0
RTT_TOLERANCE_MS = 5.0


@pytest.fixture(scope="module")
def chain():
    lab = netlab.build_chain(netlab.DEFAULT_PREFIX, HOPS, delay_ms=ADDED_RTT_MS)
    try:
        yield lab
    finally:
        lab.teardown()


@pytest.fixture(scope="module")
def chain_with_silent_router():
    lab = netlab.build_chain(netlab.DEFAULT_PREFIX, HOPS)
    try:
        # r1 answers nothing with ICMP errors (a global ICMP budget of zero): a silent hop.
        done = lab.run_in(lab.nodes[0], ["sysctl", "-qw", "net.ipv4.icmp_msgs_per_sec=0", "net.ipv4.icmp_msgs_burst=0"])
        assert done.returncode == 0, done.stderr
        yield lab
    finally:
        lab.teardown()


def in_client(lab, check_type, target, **options):
    return lab.call_in(lab.client, run_check, check_type, target, options, allow_private=True)


def test_root_can_run_ping_and_traceroute():
    assert {"ping", "traceroute"} <= set(capabilities(refresh=True))


def test_traceroute_reports_exactly_the_hops_built(chain):
    result = in_client(chain, "traceroute", chain.target_address, timeout=10)
    assert result["success"] is True, result["error"]
    data = result["data"]
    assert data["reached"] is True and data["address"] == chain.target_address
    assert [hop["ttl"] for hop in data["hops"]] == list(range(1, HOPS + 1))
    assert [hop["address"] for hop in data["hops"]] == chain.hop_addresses
    for hop in data["hops"]:
        assert hop["loss_pct"] == 0 and len(hop["rtts_ms"]) == 3
        # every hop is behind the link; the fastest probe shows the delay, the others also the machine's load
        assert abs(min(hop["rtts_ms"]) - ADDED_RTT_MS) <= RTT_TOLERANCE_MS
        assert "hostname" in hop


def test_ping_through_a_20ms_link_reports_the_added_rtt(chain):
    result = in_client(chain, "ping", chain.target_address, count=5, interval=0.2)
    assert result["success"] is True, result["error"]
    data = result["data"]
    assert data["packets_sent"] == data["packets_received"] == 5 and data["loss_pct"] == 0
    assert len(data["rtts_ms"]) == 5
    assert abs(data["rtt_ms"]["min"] - ADDED_RTT_MS) <= RTT_TOLERANCE_MS, data["rtt_ms"]  # a link never speeds up
    assert data["rtt_ms"]["min"] <= data["rtt_ms"]["avg"] <= data["rtt_ms"]["max"]


def test_ping_without_reply_is_a_timeout(chain):
    nobody = "198.18.2.99"  # on the target's link, but no namespace has it
    result = in_client(chain, "ping", nobody, count=2, interval=0.2, timeout=1)
    assert result["success"] is False
    assert result["error"]["kind"] == "timeout"
    assert result["data"]["loss_pct"] == 100 and result["data"]["packets_received"] == 0
    assert result["duration_ms"] < 1500


def test_ping_to_an_unroutable_address_is_unreachable(chain):
    result = in_client(chain, "ping", "198.18.200.1", count=1, timeout=1)
    assert result["success"] is False
    assert result["error"]["kind"] == "unreachable"


def test_silent_hop_is_reported_with_full_loss(chain_with_silent_router):
    lab = chain_with_silent_router
    result = in_client(lab, "traceroute", lab.target_address, timeout=10)
    assert result["success"] is True, result["error"]
    hops = result["data"]["hops"]
    assert len(hops) == HOPS
    assert hops[0] == {"ttl": 1, "address": None, "addresses": [], "hostname": None, "rtts_ms": [], "loss_pct": 100.0}
    assert [hop["address"] for hop in hops[1:]] == lab.hop_addresses[1:]


def test_traceroute_stops_at_max_hops_when_the_target_is_further(chain):
    result = in_client(chain, "traceroute", chain.target_address, max_hops=2, timeout=10)
    assert result["success"] is False
    assert result["error"]["kind"] == "unreachable"
    assert [hop["address"] for hop in result["data"]["hops"]] == chain.hop_addresses[:2]
    assert result["data"]["reached"] is False


@pytest.mark.skipif(shutil.which("capsh") is None, reason="needs capsh to drop CAP_NET_RAW")
def test_without_icmp_sockets_ping_fails_as_internal_and_is_not_advertised():
    code = (
        f"import json, sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from agent.checks import capabilities, run_check\n"
        "print(json.dumps([capabilities(), run_check('ping', '127.0.0.1', {'count': 1}, allow_private=True)]))\n"
    )
    done = subprocess.run(
        ["capsh", "--drop=cap_net_raw", "--", "-c", f'{sys.executable} -c "$0"', code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    caps, result = json.loads(done.stdout)
    assert "ping" not in caps and "traceroute" not in caps and "http" in caps
    assert result["success"] is False and result["error"]["kind"] == "internal"
    assert "CAP_NET_RAW" in result["error"]["message"]
