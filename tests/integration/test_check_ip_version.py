"""ip_version (4 | 6) picks the family a check resolves its target to, on every type;
without it the first getaddrinfo answer wins, and the address used is always reported.
Also: what a result says it assumed (scheme, port) and the host in both forms."""

from __future__ import annotations

import socket

import pytest

from agent.checks import run_check
from scripts.localcloud.demosite import serve_http

DUAL = "dual.example.test"  # resolves to ::1 first, then 127.0.0.1 (faked getaddrinfo, no network)


@pytest.fixture
def dual_name(monkeypatch):
    real = socket.getaddrinfo

    def fake(host, port, family=0, *args, **kwargs):
        if host in (DUAL, "xn--dal-hoa.example.test"):
            answers = [
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", 0, 0, 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0)),
            ]
            answers = [a for a in answers if family in (0, a[0])]
            if not answers:
                raise socket.gaierror(socket.EAI_NODATA, "No address associated with hostname")
            return answers
        if host == "v4only.example.test":
            if family == socket.AF_INET6:
                raise socket.gaierror(socket.EAI_NODATA, "No address associated with hostname")
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0))]
        return real(host, port, family, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return DUAL


@pytest.fixture(scope="module")
def servers():
    """The same demo site on ::1 and on 127.0.0.1, on one port number."""
    v6 = serve_http("::1", 0)
    port = v6.server_address[1]
    v4 = serve_http("127.0.0.1", port)
    yield port
    for srv in (v4, v6):
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("ip_version, address", [(None, "::1"), (6, "::1"), (4, "127.0.0.1")])
def test_tcp_connects_to_the_family_asked_for(dual_name, servers, ip_version, address):
    result = run_check("tcp", dual_name, {"port": servers, "ip_version": ip_version}, allow_private=True)
    assert result["success"] is True, result["error"]
    assert result["address"] == address and result["data"]["address"] == address
    assert result["data"]["ip_version"] == (6 if ":" in address else 4)


@pytest.mark.parametrize("ip_version, address", [(6, "::1"), (4, "127.0.0.1")])
def test_http_fetches_over_the_family_asked_for(dual_name, servers, ip_version, address):
    result = run_check("http", f"http://{dual_name}:{servers}/ok", {"ip_version": ip_version}, allow_private=True)
    assert result["success"] is True, result["error"]
    assert result["address"] == address
    assert [h["address"] for h in result["data"]["hops"]] == [address]
    assert result["data"]["ip_version"] == ip_version


def test_a_name_without_an_address_of_that_version_is_a_dns_failure_naming_it(dual_name):
    result = run_check("tcp", "v4only.example.test", {"port": 80, "ip_version": 6}, allow_private=True)
    assert result["success"] is False and result["error"]["kind"] == "dns_failure"
    assert "does not resolve to an IPv6 address (ip_version 6)" in result["error"]["message"]


def test_an_ipv6_literal_works_without_ip_version(servers):
    result = run_check("http", f"http://[::1]:{servers}/ok", {}, allow_private=True)
    assert result["success"] is True and result["address"] == "::1" and result["data"]["ip_version"] == 6


def test_results_carry_the_host_in_both_forms(dual_name, servers):
    result = run_check("tcp", "düal.example.test", {"port": servers, "ip_version": 4}, allow_private=True)
    assert result["success"] is True, result["error"]
    assert result["data"]["host"] == "xn--dal-hoa.example.test"
    assert result["data"]["host_unicode"] == "düal.example.test"


def test_a_bare_host_is_https_on_443_for_http_and_tcp_and_the_results_say_so():
    # Whatever is (or is not) listening on 127.0.0.1:443, the port tried is the one assumed.
    tcp = run_check("tcp", "127.0.0.1", {"timeout": 2}, allow_private=True)
    http = run_check("http", "127.0.0.1", {"timeout": 2}, allow_private=True)
    assert tcp["data"]["port"] == 443 and tcp["data"]["assumed"] == {"port": 443}
    assert http["data"]["url"] == "https://127.0.0.1/"
    assert (http["data"]["scheme"], http["data"]["port"]) == ("https", 443)
    assert http["data"]["assumed"] == {"scheme": "https", "port": 443}


def test_a_url_target_assumes_nothing_but_its_scheme_default_port(servers):
    result = run_check("http", f"http://127.0.0.1:{servers}/ok", {}, allow_private=True)
    assert result["data"]["assumed"] == {} and result["data"]["port"] == servers
    tcp = run_check("tcp", "http://127.0.0.1/", {"timeout": 2}, allow_private=True)
    assert tcp["data"]["port"] == 80 and tcp["data"]["assumed"] == {"port": 80}


@pytest.mark.parametrize("ip_version, address", [(6, "::1"), (4, "127.0.0.1")])
def test_ping_resolves_to_the_family_asked_for(dual_name, ip_version, address):
    result = run_check(
        "ping", dual_name, {"count": 1, "interval": 0.2, "timeout": 2, "ip_version": ip_version}, allow_private=True
    )
    assert result["success"] is True, result["error"]
    assert result["address"] == address and result["data"]["ip_version"] == ip_version
