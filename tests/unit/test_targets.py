"""The target policy (chalicelib/targets.py) refuses every spelling of a
private address, and the agent's checks apply it again after resolution."""

from __future__ import annotations

import socket

import pytest

from agent.checks import run_check
from chalicelib import protocol, targets

BLOCKED_LITERALS = [
    "127.1",  # short dotted form
    "2130706433",  # decimal
    "0x7f000001",  # hex
    "0x7f.1",  # mixed hex/short
    "0177.0.0.1",  # octal
    "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
    "::1",
    "169.254.169.254",  # cloud metadata
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",  # CGNAT
    "fd00::1",  # unique-local
    "fe80::1",
    "224.0.0.1",  # multicast
    "0.0.0.0",
    "198.18.0.1",  # benchmarking (our own test labs)
    "http://127.0.0.1:8080/admin",
    "http://[::ffff:10.0.0.1]/",
    "０ｘ７ｆ０００００１",  # fullwidth hex: IDNA maps it to 0x7f000001
    "１２７．０．０．１",  # fullwidth digits and dots
    "http://１２７.０.０.１:8080/",
    "[::ffff:0:127.0.0.1]",  # IPv4-translated (RFC 2765)
    "[::ffff:0:8.8.8.8]",  # ... refused whole, even embedding a public address
    "[64:ff9b:1::7f00:1]",  # local-use NAT64 (RFC 8215)
    "[64:ff9b:1::808:808]",  # ... refused whole as well
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


@pytest.mark.parametrize("literal", ["０ｘ７ｆ０００００１", "[::ffff:0:127.0.0.1]", "[64:ff9b:1::7f00:1]"])
def test_the_agent_refuses_the_forms_the_api_missed_before_any_traffic(literal, monkeypatch):
    def no_connect(*_args, **_kwargs):
        raise AssertionError("the check connected to a blocked address")

    monkeypatch.setattr(socket.socket, "connect", no_connect)
    for check_type in ("tcp", "http"):
        result = run_check(check_type, literal, {}, allow_private=False)
        assert result["error"]["kind"] == "blocked_target", result["error"]
    assert targets.blocked_reason(targets.resolve(literal.strip("[]"), allow_private=True)[0])
    assert result["success"] is False


# --- IDNA 2008 (UTS 46, non-transitional) ---------------------------------------


@pytest.mark.parametrize(
    "raw, host, host_unicode",
    [
        ("straße.de", "xn--strae-oqa.de", "straße.de"),  # IDNA 2003 would make it strasse.de
        ("faß.de", "xn--fa-hia.de", "faß.de"),
        ("Straße.DE", "xn--strae-oqa.de", "straße.de"),  # upper case is mapped to lower case
        ("BÜCHER.de", "xn--bcher-kva.de", "bücher.de"),
        ("https://FAß.de/pfad", "xn--fa-hia.de", "faß.de"),
        ("bücher。de", "xn--bcher-kva.de", "bücher.de"),  # an ideographic full stop separates labels
        ("xn--strae-oqa.de", "xn--strae-oqa.de", "straße.de"),  # an A-label as given, decoded for display
        ("_sip._tcp.Example.COM", "_sip._tcp.example.com", "_sip._tcp.example.com"),
    ],
)
def test_hostnames_are_idna_2008(raw, host, host_unicode):
    parsed = targets.parse_target(raw)
    assert (parsed.host, parsed.host_unicode) == (host, host_unicode)


@pytest.mark.parametrize("raw", ["😀.de", "https://i❤.ws/", "mail.☃.example"])
def test_an_emoji_or_symbol_label_is_refused_naming_the_target(raw):
    with pytest.raises(targets.TargetError) as caught:
        targets.parse_target(raw)
    assert not isinstance(caught.value, targets.BlockedTarget)
    assert caught.value.field == "target" and "IDNA 2008" in caught.value.message


def test_a_unicode_name_is_resolved_by_its_a_label(monkeypatch):
    asked = []

    def fake(host, *args, **kwargs):
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 0))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    assert targets.resolve("straße.de", allow_private=False) == ["93.184.215.14"]
    assert asked == ["xn--strae-oqa.de"]


# --- What a check assumes -------------------------------------------------------


@pytest.mark.parametrize(
    "raw, scheme, port, assumed",
    [
        ("example.com", "https", 443, {"scheme": "https", "port": 443}),
        ("example.com:8443", "https", 8443, {"scheme": "https"}),
        ("http://example.com/", "http", 80, {"port": 80}),
        ("https://example.com:444/", "https", 444, {}),
    ],
)
def test_http_and_tcp_assume_the_same_port_for_a_target(raw, scheme, port, assumed):
    target = targets.parse_target(raw)
    assert targets.http_endpoint(target, {"scheme": "https", "port": None}) == (scheme, port, assumed)
    tcp_port, tcp_assumed = targets.tcp_port(target, {"port": None})
    assert tcp_port == port and tcp_assumed == ({"port": port} if "port" in assumed else {})


def test_options_port_and_scheme_win_over_the_defaults():
    target = targets.parse_target("example.com")
    assert targets.http_endpoint(target, {"scheme": "http", "port": 8080}) == ("http", 8080, {})
    assert targets.tcp_port(target, {"port": 22}) == (22, {})


def test_dns_of_an_ip_target_becomes_an_explicit_ptr_lookup():
    target = targets.parse_target("1.1.1.1")
    options = protocol.normalize_options("dns", {})
    assert targets.apply_assumptions("dns", target, {}, options)["record_type"] == "PTR"
    assert targets.apply_assumptions("dns", target, {"record_type": "ptr"}, options)["record_type"] == "PTR"
    with pytest.raises(protocol.OptionError) as caught:
        targets.apply_assumptions("dns", target, {"record_type": "MX"}, protocol.normalize_options("dns", {}))
    assert caught.value.field == "options.dns.record_type" and "PTR" in caught.value.message


def test_dns_of_a_hostname_keeps_its_record_type_and_the_resolver_name_becomes_an_a_label():
    target = targets.parse_target("example.com")
    options = protocol.normalize_options("dns", {"record_type": "MX", "resolver": "ns.straße.de"})
    out = targets.apply_assumptions("dns", target, {"record_type": "MX"}, options)
    assert out["record_type"] == "MX" and out["resolver"] == "ns.xn--strae-oqa.de"


@pytest.mark.parametrize(
    "resolver", ["127.0.0.1", "169.254.169.254", "[::1]", "０ｘ７ｆ０００００１", "localhost", "ns.internal"]
)
def test_a_dns_resolver_in_a_blocked_range_is_refused_naming_the_option(resolver):
    target = targets.parse_target("example.com")
    options = protocol.normalize_options("dns", {"resolver": resolver})
    with pytest.raises(targets.BlockedTarget) as caught:
        targets.apply_assumptions("dns", target, {}, options)
    assert caught.value.field == "options.dns.resolver"
    assert targets.apply_assumptions("dns", target, {}, options, allow_private=True)["resolver"]


@pytest.mark.parametrize("value", [5, 0, "6", True, 4.5])
def test_ip_version_must_be_4_or_6(value):
    with pytest.raises(protocol.OptionError) as caught:
        protocol.normalize_options("tcp", {"ip_version": value})
    assert caught.value.field == "options.tcp.ip_version"


def test_an_integral_float_is_an_integer_option_as_json_schema_says():
    # 4.0 is an integer in JSON Schema (and so in the OpenAPI document); it is stored as 4.
    options = protocol.normalize_options("http", {"ip_version": 4.0, "max_redirects": 3.0, "expected_status": 204.0})
    assert options["ip_version"] == 4 and type(options["ip_version"]) is int
    assert options["max_redirects"] == 3 and type(options["max_redirects"]) is int
    assert options["expected_status"] == [204, 204]
    assert protocol.normalize_options("http", {"expected_status": [200.0, 299.0]})["expected_status"] == [200, 299]


@pytest.mark.parametrize("check_type", protocol.CHECK_TYPES)
def test_every_check_type_takes_ip_version(check_type):
    assert protocol.normalize_options(check_type, {"ip_version": 6})["ip_version"] == 6
    assert protocol.normalize_options(check_type, {})["ip_version"] is None


@pytest.mark.parametrize(
    "check_type, raw, options, field",
    [
        ("tcp", "198.51.100.7", {"ip_version": 6}, "options.tcp.ip_version"),
        ("http", "https://[2001:db8::1]/", {"ip_version": 4}, "options.http.ip_version"),
        ("dns", "example.com", {"ip_version": 6, "resolver": "192.0.2.53"}, "options.dns.ip_version"),
    ],
)
def test_ip_version_must_fit_the_literal_it_applies_to(check_type, raw, options, field):
    target = targets.parse_target(raw, allow_private=True)
    with pytest.raises(protocol.OptionError) as caught:
        targets.apply_assumptions(
            check_type, target, options, protocol.normalize_options(check_type, options), allow_private=True
        )
    assert caught.value.field == field and "IPv" in caught.value.message


def test_a_url_target_is_fetched_as_written_whatever_the_bare_host_options_say():
    target = targets.parse_target("http://example.com/")
    assert targets.http_endpoint(target, {"scheme": "https", "port": 8443}) == ("http", 80, {"port": 80})


def test_a_name_whose_answer_mixes_public_and_private_addresses_is_refused(monkeypatch):
    def fake(host, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(targets.BlockedTarget, match="127.0.0.1 is a blocked address"):
        targets.resolve("mixed.example.com", allow_private=False)
    assert targets.resolve("mixed.example.com", allow_private=True) == ["93.184.215.14", "127.0.0.1"]
