"""The dns check's depth against servers the test starts: DNS over TLS and over HTTPS
(trustme certificates), the HTTPS/SVCB/DNSKEY/DS/NSEC/ANY record types, DNSSEC (the AD
flag, the RRSIGs, and the agent's own validation of a zone signed here) and the trace
from a root of our own down through a TLD to the zone."""

from __future__ import annotations

import socket
import ssl

import dns.dnssec
import pytest
import trustme

from agent.checks import run_check
from tests.integration.dns_servers import ZoneServer, make_zone, sign

ZONE = """
$TTL 300
@ IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 60
@ IN NS ns.example.test.
@ IN A 198.18.7.7
@ IN HTTPS 1 . alpn="h2,h3" port=8443
@ IN TXT "hello"
svc IN SVCB 1 svc-host.example.test. alpn="h2"
ns IN A 127.0.0.3
"""
TLD = """
$TTL 300
@ IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60
@ IN NS ns.test.
ns IN A 127.0.0.2
example IN NS ns.example.test.
ns.example IN A 127.0.0.3
"""
ROOT = """
$TTL 300
@ IN SOA a.root. hostmaster.root. 1 3600 600 86400 60
@ IN NS a.root.
a.root IN A 127.0.0.1
test IN NS ns.test.
ns.test IN A 127.0.0.2
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    ca = trustme.CA()
    bundle = tmp_path_factory.mktemp("dnsca") / "ca.pem"
    bundle.write_bytes(ca.cert_pem.bytes())
    return ca, str(bundle)


def _tls(ca, *names):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(*names).configure_cert(context)
    return context


@pytest.fixture(scope="module")
def signed():
    """The signed zone alone (the resolver the check asks), with its DS for the parent."""
    zone = make_zone("example.test.", ZONE)
    ds = sign(zone)
    server = ZoneServer(zone)
    yield server, ds
    server.stop()


@pytest.fixture(scope="module")
def hierarchy():
    """root (127.0.0.1) -> test. (127.0.0.2) -> example.test. (127.0.0.3), all on one port; the
    child zone is signed and its DS is in the parent."""
    child = make_zone("example.test.", ZONE)
    ds = sign(child)
    tld = make_zone("test.", TLD + f"example IN DS {ds[0].to_text()}\n")
    for _ in range(20):
        root = ZoneServer(make_zone(".", ROOT), "127.0.0.1")
        try:
            servers = [root, ZoneServer(tld, "127.0.0.2", root.port), ZoneServer(child, "127.0.0.3", root.port)]
            break
        except OSError:
            root.stop()
    yield servers, ds
    for server in servers:
        server.stop()


def query(port, name="example.test", record_type="A", **options):
    opts = {"resolver": "127.0.0.1", "port": port, "record_type": record_type, "timeout": 5, **options}
    return run_check("dns", name, opts, allow_private=True)


@pytest.mark.parametrize(
    ("name", "record_type", "expected"),
    [
        ("example.test", "HTTPS", ['1 . alpn="h2,h3" port="8443"']),
        ("svc.example.test", "SVCB", ['1 svc-host.example.test. alpn="h2"']),
        ("example.test", "TXT", ['"hello"']),
    ],
)
def test_new_record_types_are_answered(signed, name, record_type, expected):
    server, _ = signed
    result = query(server.port, name, record_type)
    assert result["success"] is True, result["error"]
    assert [a["value"] for a in result["data"]["answers"]] == expected
    assert {a["type"] for a in result["data"]["answers"]} == {record_type}


def test_dnskey_ds_and_nsec_are_answered_as_signed(signed, hierarchy):
    server, ds = signed
    keys = query(server.port, "example.test", "DNSKEY")
    assert keys["success"] is True, keys["error"]
    [key] = keys["data"]["answers"]
    assert key["value"].startswith("257 3 15 ")  # KSK flags, protocol 3, Ed25519
    nsec = query(server.port, "example.test", "NSEC")
    assert nsec["success"] is True and nsec["data"]["answers"][0]["value"].startswith("ns.example.test. A NS SOA")
    tld = hierarchy[0][1]
    ds_answer = query(tld.port, "example.test", "DS", resolver="127.0.0.2")
    assert ds_answer["success"] is True, ds_answer["error"]
    assert [a["value"] for a in ds_answer["data"]["answers"]] == [hierarchy[1][0].to_text()]


def test_any_returns_every_rrset_of_the_name(signed):
    server, _ = signed
    result = query(server.port, "example.test", "ANY")
    assert result["success"] is True, result["error"]
    types = {a["type"] for a in result["data"]["answers"]}
    assert {"SOA", "NS", "A", "HTTPS", "TXT", "DNSKEY", "NSEC"} <= types


def test_dnssec_reports_the_signatures_and_validates_them(signed):
    server, _ = signed
    result = query(server.port, "example.test", "A", dnssec=True)
    assert result["success"] is True, result["error"]
    sec = result["data"]["dnssec"]
    assert sec["ad"] is False  # an authoritative server does not claim validation
    [sig] = sec["rrsigs"]
    assert (sig["covers"], sig["signer"], sig["algorithm"]) == ("A", "example.test.", "ED25519")
    key_tag = dns.dnssec.key_id(next(iter(server.zone.find_rdataset("example.test.", "DNSKEY"))))
    assert sig["key_tag"] == key_tag
    assert sec["validation"] == {"status": "secure", "signer": "example.test.", "key_tags": [key_tag], "error": None}
    assert [a["type"] for a in result["data"]["answers"]] == ["A", "RRSIG"]  # as dig shows the answer section


def test_an_unsigned_zone_is_insecure():
    server = ZoneServer(make_zone("example.test.", ZONE))
    try:
        result = query(server.port, "example.test", "A", dnssec=True)
    finally:
        server.stop()
    assert result["success"] is True
    assert result["data"]["dnssec"]["validation"]["status"] == "insecure" and result["data"]["dnssec"]["rrsigs"] == []


def test_a_record_changed_after_signing_is_bogus():
    zone = make_zone("example.test.", ZONE)
    sign(zone)
    with zone.writer() as txn:  # the A changes, its RRSIG stays: a forged answer
        txn.replace("example.test.", dns.rdataset.from_text("IN", "A", 300, "198.18.6.6"))
    server = ZoneServer(zone)
    try:
        result = query(server.port, "example.test", "A", dnssec=True)
    finally:
        server.stop()
    validation = result["data"]["dnssec"]["validation"]
    assert validation["status"] == "bogus" and validation["error"].startswith("example.test. A:")


def test_dns_over_tls_verifies_the_resolver_and_answers(signed, pki, monkeypatch):
    server, _ = signed
    ca, bundle = pki
    monkeypatch.setenv("SSL_CERT_FILE", bundle)
    port = server.serve_dot(_tls(ca, "127.0.0.1", "localhost"))
    result = query(port, protocol="dot")
    assert result["success"] is True, result["error"]
    assert [a["value"] for a in result["data"]["answers"]] == ["198.18.7.7"]
    transport = result["data"]["transport"]
    assert transport["tls_version"].startswith("TLSv1.") and transport["connect_ms"] >= 0 and transport["tls_ms"] > 0
    by_name = query(port, protocol="dot", resolver="localhost", ip_version=4)
    assert by_name["success"] is True, by_name["error"]


def test_dns_over_tls_with_a_certificate_for_another_name_is_a_tls_error(signed, pki, monkeypatch):
    server, _ = signed
    ca, bundle = pki
    monkeypatch.setenv("SSL_CERT_FILE", bundle)
    port = server.serve_dot(_tls(ca, "other.test"))
    result = query(port, protocol="dot")
    assert result["success"] is False and result["error"]["kind"] == "tls_error"
    assert "127.0.0.1" in result["error"]["message"]


def test_dns_over_https_posts_the_query_and_reads_the_answer(signed, pki, monkeypatch):
    server, _ = signed
    ca, bundle = pki
    monkeypatch.setenv("SSL_CERT_FILE", bundle)
    port = server.serve_doh(_tls(ca, "127.0.0.1"), path="/q")
    before = len(server.queries)
    result = query(port, "example.test", "HTTPS", protocol="doh", doh_path="/q", dnssec=True)
    assert result["success"] is True, result["error"]
    assert result["data"]["answers"][0]["value"] == '1 . alpn="h2,h3" port="8443"'
    assert result["data"]["transport"]["http_status"] == 200
    assert result["data"]["transport"]["alpn"] in (None, "http/1.1")
    assert result["data"]["dnssec"]["validation"]["status"] == "secure"
    assert server.queries[before:] == [("example.test.", "HTTPS"), ("example.test.", "DNSKEY")]
    wrong_path = query(port, protocol="doh", doh_path="/dns-query")
    assert wrong_path["error"]["kind"] == "dns_failure" and "HTTP 404" in wrong_path["error"]["message"]


def test_the_default_ports_follow_the_protocol():
    from chalicelib.protocol import normalize_options

    assert [normalize_options("dns", {"protocol": p})["port"] for p in ("udp", "tcp", "dot", "doh")] == [
        53,
        53,
        853,
        443,
    ]
    assert normalize_options("dns", {"protocol": "dot", "port": 8853})["port"] == 8853


def test_trace_walks_from_the_root_through_each_delegation(hierarchy):
    servers, ds = hierarchy
    result = query(servers[0].port, "example.test", "A", trace=True)
    assert result["success"] is True, result["error"]
    steps = result["data"]["trace"]
    assert [(s["zone"], s["server"], s["server_name"]) for s in steps] == [
        (".", "127.0.0.1", None),
        ("test.", "127.0.0.2", "ns.test."),
        ("example.test.", "127.0.0.3", "ns.example.test."),
    ]
    assert [s["referral"] for s in steps] == [["ns.test."], ["ns.example.test."], []]
    assert steps[1]["ds"] == [ds[0].to_text()]  # the chain of trust, as the parent publishes it
    assert [a["value"] for a in steps[-1]["answers"]] == ["198.18.7.7"]
    assert result["data"]["authoritative"] is True and result["address"] == "198.18.7.7"
    assert [q for q in servers[0].queries if q[0] == "example.test."] == [("example.test.", "A")]


def test_trace_refuses_a_referral_into_blocked_space(hierarchy):
    servers, _ = hierarchy
    opts = {"resolver": "198.18.0.1", "port": servers[0].port, "trace": True, "timeout": 2}
    # without allow_private the root itself (a benchmarking address here) is refused before any packet
    result = run_check("dns", "example.test", opts, allow_private=False)
    assert result["success"] is False and result["error"]["kind"] == "blocked_target"


def test_trace_over_dot_is_refused_by_the_options():
    result = run_check("dns", "example.test", {"trace": True, "protocol": "dot"}, allow_private=True)
    assert result["error"]["kind"] == "internal" and "options.dns.trace" in result["error"]["message"]


@pytest.mark.parametrize("protocol", ["dot", "doh"])
def test_an_encrypted_resolver_that_never_answers_the_handshake_times_out_at_the_deadline(protocol):
    """The TLS handshake runs on the event loop under the check's deadline: a resolver that accepts
    the connection and stays silent ends the check as a timeout, with the connect it made."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        port = listener.getsockname()[1]
        opts = {"protocol": protocol, "resolver": "127.0.0.1", "port": port, "timeout": 1}
        result = run_check("dns", "example.test", opts, allow_private=True)
    finally:
        listener.close()
    assert result["success"] is False
    assert result["error"]["kind"] == "timeout", result["error"]
    assert result["data"]["transport"]["connect_ms"] is not None
