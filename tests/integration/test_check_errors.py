"""Error kinds (DESIGN §6) from real network faults, one per check type where the
fault applies: a router that drops (`timeout`), a router that answers "host
unreachable" (`unreachable`), a port with nothing on it (`refused`).

The faults live in a chain of namespaces this module builds in 198.18.0.0/15:
the client routes 198.18.250.0/24 and 198.18.251.0/24 to its first router,
which has a blackhole route for the first (packets vanish, no ICMP) and an
unreachable route for the second (ICMP host unreachable back to the client).
The checks run on a thread switched into the client namespace, so no packet
leaves the lab.
"""

from __future__ import annotations

import socket

import pytest

from agent.checks import run_check
from scripts.localcloud import netlab

pytestmark = pytest.mark.skipif(
    netlab.unavailable_reason() is not None, reason=f"needs network namespaces: {netlab.unavailable_reason()}"
)

BLACKHOLED = "198.18.250.1"  # dropped by the router, silently
UNREACHABLE = "198.18.251.1"  # the router answers ICMP host unreachable


def build_faulty_chain():
    chain = netlab.build_chain(netlab.DEFAULT_PREFIX, 2)
    try:
        router = chain.nodes[0]
        netlab.ip("route", "add", "blackhole", "198.18.250.0/24", ns=router)
        netlab.ip("route", "add", "unreachable", "198.18.251.0/24", ns=router)
        for net in ("198.18.250.0/24", "198.18.251.0/24"):
            chain.route(chain.client, net, "198.18.0.2")
    except BaseException:
        chain.teardown()
        raise
    return chain


@pytest.fixture(scope="module")
def lab():
    chain = build_faulty_chain()
    try:
        yield chain
    finally:
        chain.teardown()


@pytest.fixture
def fresh_lab():
    """A chain of its own: the kernel rate-limits "unreachable" answers per source
    (net.ipv4.route.error_burst, 5, not per namespace), and the other tests spend them."""
    chain = build_faulty_chain()
    try:
        yield chain
    finally:
        chain.teardown()


def in_client(lab, check_type, target, **options):
    return lab.call_in(lab.client, run_check, check_type, target, options, allow_private=True)


def assert_failed(result, kind):
    assert result["success"] is False, result
    assert result["error"]["kind"] == kind, result["error"]
    assert result["error"]["message"]
    assert isinstance(result["duration_ms"], (int, float))


@pytest.mark.parametrize(
    "check_type, target, options",
    [
        ("tcp", BLACKHOLED, {"port": 80, "timeout": 1}),
        ("http", f"http://{BLACKHOLED}/", {"timeout": 1}),
        ("ping", BLACKHOLED, {"count": 2, "interval": 0.2, "timeout": 1}),
        ("dns", "example.test", {"resolver": BLACKHOLED, "timeout": 1}),
    ],
)
def test_a_dropping_router_gives_timeout(lab, check_type, target, options):
    result = in_client(lab, check_type, target, **options)
    assert_failed(result, "timeout")
    if check_type != "dns":
        assert result["address"] == BLACKHOLED


def test_traceroute_into_a_black_hole_times_out_with_silent_hops(lab):
    result = in_client(lab, "traceroute", BLACKHOLED, timeout=3)
    assert_failed(result, "timeout")
    hops = result["data"]["hops"]
    assert hops and all(hop["address"] is None and hop["loss_pct"] == 100 for hop in hops)
    assert result["data"]["reached"] is False


@pytest.mark.parametrize(
    "check_type, target, options",
    [
        ("tcp", UNREACHABLE, {"port": 80, "timeout": 5}),
        ("http", f"http://{UNREACHABLE}/", {"timeout": 5}),
        ("ping", UNREACHABLE, {"count": 2, "interval": 0.2, "timeout": 5}),
        ("dns", "example.test", {"resolver": UNREACHABLE, "timeout": 5}),
    ],
)
def test_a_router_saying_host_unreachable_gives_unreachable(fresh_lab, check_type, target, options):
    # A chain of its own: on the shared one, the router's "unreachable" budget depends on
    # which tests ran just before (see fresh_lab); a full-suite run saw ping get no answer.
    result = in_client(fresh_lab, check_type, target, **options)
    assert_failed(result, "unreachable")


def test_traceroute_stops_where_a_router_reports_unreachable(fresh_lab):
    lab = fresh_lab
    result = in_client(lab, "traceroute", UNREACHABLE, timeout=10)
    assert_failed(result, "unreachable")
    assert [hop["address"] for hop in result["data"]["hops"]] == ["198.18.0.2"]
    assert "reports" in result["error"]["message"]


def test_no_route_at_all_is_unreachable(lab):
    # The client has no route to 198.18.199.0/24: the kernel refuses at once.
    for check_type, options in (("tcp", {"port": 80}), ("ping", {"count": 1}), ("traceroute", {})):
        assert_failed(in_client(lab, check_type, "198.18.199.1", **options), "unreachable")


def test_a_port_with_nothing_on_it_is_refused(lab):
    # The target namespace answers a SYN to a closed port with a RST, and a
    # datagram to a closed port with ICMP port unreachable.
    target = lab.target_address
    assert_failed(in_client(lab, "tcp", target, port=81, timeout=5), "refused")
    assert_failed(in_client(lab, "http", f"http://{target}:81/", timeout=5), "refused")
    assert_failed(in_client(lab, "dns", "example.test", resolver=target, port=5353, timeout=5), "refused")


def test_tcp_connect_time_is_measured_across_the_chain(lab):
    server = lab.call_in(lab.target, socket.create_server, (lab.target_address, 0))
    with server:
        result = in_client(lab, "tcp", lab.target_address, port=server.getsockname()[1])
    assert result["success"] is True, result["error"]
    assert result["address"] == lab.target_address
    assert set(result["data"]) >= {"address", "port", "connect_ms"}
