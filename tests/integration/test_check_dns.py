"""The dns check against a DNS server the test runs on loopback."""

from __future__ import annotations

import socket

import pytest

from agent.checks import run_check
from scripts.localcloud.demosite import DNSServer, default_zone

ZONE = {
    **default_zone("example.test", "198.18.7.7"),
    "alias.example.test": [("CNAME", 60, "example.test.")],
    "7.7.18.198.in-addr.arpa": [("PTR", 60, "host.example.test.")],
}


@pytest.fixture(scope="module")
def server():
    dns_server = DNSServer("127.0.0.1", 0, ZONE)
    yield dns_server
    dns_server.stop()


def query(server, name, record_type="A", **options):
    opts = {"resolver": "127.0.0.1", "port": server.port, "record_type": record_type, "timeout": 2, **options}
    return run_check("dns", name, opts, allow_private=True)


@pytest.mark.parametrize(
    "record_type, expected",
    [
        ("A", "198.18.7.7"),
        ("AAAA", "2001:db8::10"),
        ("MX", "10 mail.example.test."),
        ("TXT", '"v=spf1 -all"'),
    ],
)
def test_record_types_are_answered(server, record_type, expected):
    result = query(server, "example.test", record_type)
    assert result["success"] is True, result["error"]
    data = result["data"]
    assert data["rcode"] == "NOERROR" and data["record_type"] == record_type
    assert data["answers"] == [{"name": "example.test.", "type": record_type, "ttl": 300, "value": expected}]
    assert data["resolver"] == "127.0.0.1" and data["query_time_ms"] >= 0


def test_cname_query_returns_the_alias(server):
    result = query(server, "alias.example.test", "CNAME")
    assert result["success"] is True
    assert [(a["type"], a["value"]) for a in result["data"]["answers"]] == [("CNAME", "example.test.")]


def test_a_query_through_a_cname_reports_the_chain_and_address(server):
    result = query(server, "www.example.test", "A")
    assert [(a["name"], a["type"], a["value"]) for a in result["data"]["answers"]] == [
        ("www.example.test.", "CNAME", "example.test."),
        ("example.test.", "A", "198.18.7.7"),
    ]
    assert result["address"] == "198.18.7.7"


def test_nxdomain_fails_with_dns_failure_and_keeps_the_rcode(server):
    result = query(server, "missing.example.test")
    assert result["success"] is False
    assert result["error"]["kind"] == "dns_failure"
    assert result["data"]["rcode"] == "NXDOMAIN"
    assert result["data"]["answers"] == []
    assert result["data"]["authority"][0]["type"] == "SOA"


def test_tcp_transport_gives_the_same_answer(server):
    result = query(server, "example.test", "A", protocol="tcp")
    assert result["success"] is True and result["data"]["protocol"] == "tcp"
    assert result["data"]["answers"][0]["value"] == "198.18.7.7"


def test_ip_target_is_looked_up_in_reverse(server):
    result = query(server, "198.18.7.7")
    assert result["success"] is True
    assert result["data"]["record_type"] == "PTR"
    assert result["data"]["query"] == "7.7.18.198.in-addr.arpa."
    assert result["data"]["answers"][0]["value"] == "host.example.test."


def test_url_target_queries_its_host(server):
    result = query(server, "https://example.test/some/path")
    assert result["success"] is True and result["data"]["query"] == "example.test."


def test_a_private_resolver_is_refused_unless_allowed(server):
    result = run_check("dns", "example.test", {"resolver": "127.0.0.1", "port": server.port}, allow_private=False)
    assert result["success"] is False
    assert result["error"]["kind"] == "blocked_target"


def test_a_silent_resolver_times_out():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # receives queries, never answers
        result = run_check(
            "dns",
            "example.test",
            {"resolver": "127.0.0.1", "port": silent.getsockname()[1], "timeout": 1},
            allow_private=True,
        )
    assert result["success"] is False
    assert result["error"]["kind"] == "timeout"
    assert 1000 <= result["duration_ms"] < 1500


def test_ip_target_is_an_explicit_ptr_query_and_says_so_when_another_type_was_asked(server):
    result = query(server, "198.18.7.7", "A")
    assert result["success"] is True
    assert result["data"]["record_type"] == "PTR" and result["address"] == "198.18.7.7"
    assert "PTR" in result["data"]["note"] and "not A" in result["data"]["note"]
    assert query(server, "198.18.7.7", "PTR")["data"]["note"] is None


def test_no_ptr_record_is_a_successful_empty_answer_with_a_note(server):
    result = query(server, "198.18.9.9", "PTR")  # NXDOMAIN for 9.9.18.198.in-addr.arpa
    assert result["success"] is True, result["error"]
    data = result["data"]
    assert data["rcode"] == "NXDOMAIN" and data["answers"] == []
    assert data["note"].startswith("no PTR record for 198.18.9.9")
    assert result["address"] == "198.18.9.9" and data["ip_version"] == 4


def test_a_missing_record_of_a_hostname_still_fails(server):
    result = query(server, "example.test", "CAA")
    assert result["success"] is False and result["error"]["kind"] == "dns_failure"


def test_ip_version_picks_the_family_of_a_named_resolver(server, monkeypatch):
    real = socket.getaddrinfo

    def fake(host, port, family=0, *args, **kwargs):
        if host == "resolver.example.test":
            answers = [
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", 0, 0, 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0)),
            ]
            return [a for a in answers if family in (0, a[0])]
        return real(host, port, family, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    result = query(server, "example.test", "A", resolver="resolver.example.test", ip_version=4)
    assert result["success"] is True, result["error"]
    assert result["data"]["resolver"] == "127.0.0.1" and result["data"]["ip_version"] == 4


def test_answers_in_blocked_ranges_are_withheld_unless_private_targets_are_allowed():
    from agent.checks.dns import withhold_blocked

    answers = [
        {"name": "db.corp.", "type": "A", "ttl": 60, "value": "10.1.2.3"},
        {"name": "db.corp.", "type": "A", "ttl": 60, "value": "1.1.1.1"},
        {"name": "db.corp.", "type": "TXT", "ttl": 60, "value": '"10.1.2.3"'},
    ]
    assert withhold_blocked([dict(a) for a in answers], allow_private=True) is None
    assert withhold_blocked(answers, allow_private=False) == "private (RFC 1918)"
    assert [a["value"] for a in answers] == ["withheld (private (RFC 1918))", "1.1.1.1", '"10.1.2.3"']
