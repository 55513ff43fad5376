"""The target policy (chalicelib/targets.py) refuses every spelling of a
private address, and the agent's checks apply it again after resolution."""
from __future__ import annotations

import socket

import pytest

from agent.checks import run_check
from chalicelib import targets

BLOCKED_LITERALS = [
    "127.1",                 # short dotted form
    "2130706433",            # decimal
    "0x7f000001",            # hex
    "0x7f.1",                # mixed hex/short
    "0177.0.0.1",            # octal
    "[::ffff:127.0.0.1]",    # IPv4-mapped IPv6
    "::1",
    "169.254.169.254",       # cloud metadata
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",            # CGNAT
    "fd00::1",               # unique-local
    "fe80::1",
    "224.0.0.1",             # multicast
    "0.0.0.0",
    "198.18.0.1",            # benchmarking (our own test labs)
    "http://127.0.0.1:8080/admin",
    "http://[::ffff:10.0.0.1]/",
]
PUBLIC_LITERALS = ["1.1.1.1", "8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "https://1.1.1.1/dns-query"]


@pytest.mark.parametrize("literal", BLOCKED_LITERALS)
def test_private_and_odd_literals_are_refused(literal):
    with pytest.raises(targets.BlockedTarget):
        targets.parse_target(literal, allow_private=False)


@pytest.mark.parametrize("literal", BLOCKED_LITERALS)
def test_private_literals_are_accepted_when_private_targets_are_allowed(literal):
    assert targets.parse_target(literal, allow_private=True).is_ip


@pytest.mark.parametrize("literal", PUBLIC_LITERALS)
def test_public_literals_are_allowed(literal):
    parsed = targets.parse_target(literal, allow_private=False)
    assert parsed.is_ip
    targets.check_address(parsed.host, allow_private=False)


def test_localhost_is_refused_after_resolution():
    with pytest.raises(targets.BlockedTarget):
        targets.resolve("localhost", allow_private=False)
    assert "127.0.0.1" in targets.resolve("localhost", allow_private=True)


@pytest.fixture
def rebinding_name(monkeypatch):
    """A public-looking name whose DNS answer is 127.0.0.1 (no /etc/hosts, no network)."""
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        if host == "rebind.example.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return "rebind.example.com"


def test_a_name_resolving_to_loopback_is_refused_after_resolution(rebinding_name):
    assert targets.parse_target(rebinding_name, allow_private=False).host == rebinding_name  # the name itself passes
    with pytest.raises(targets.BlockedTarget):
        targets.resolve(rebinding_name, allow_private=False)


@pytest.mark.parametrize("check_type", ["http", "tcp", "ping"])
def test_checks_refuse_a_name_resolving_to_loopback_without_connecting(rebinding_name, check_type, monkeypatch):
    def no_connect(*_args, **_kwargs):
        raise AssertionError("the check connected to a blocked address")

    monkeypatch.setattr(socket.socket, "connect", no_connect)
    result = run_check(check_type, rebinding_name, {}, allow_private=False)
    assert result["success"] is False
    assert result["error"]["kind"] == "blocked_target"


def test_check_refuses_private_literal_before_any_traffic():
    result = run_check("tcp", "0x7f.1", {"port": 80}, allow_private=False)
    assert result["error"]["kind"] == "blocked_target"
    assert result["success"] is False
