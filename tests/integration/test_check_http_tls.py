"""HTTPS over one TCP connection per hop, whatever the certificate, with totals that add up.

Local servers with trustme certificates: a CA the test trusts (SSL_CERT_FILE)
or does not. The server counts the connections it accepted; after each check
one more connection of our own (the sentinel) must be accepted as number
hops + 1, which proves no other connection was made (accept is FIFO).
"""

from __future__ import annotations

import socket
import ssl
import subprocess

import pytest

from agent.checks import run_check
from scripts.localcloud.demosite import serve_http
from tests.integration.agent_harness import wait_until

PHASES = ("dns", "connect", "tls", "ttfb", "download")
SLOW_MS = 150  # the server's delay in the curl comparison: both totals are dominated by it
RUNS = 5


@pytest.fixture(scope="module")
def ca():
    import trustme  # pinned in requirements-dev.txt: a missing one is an error, not a silent skip

    return trustme.CA()


@pytest.fixture(scope="module")
def server(ca):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "tls.hostchecker.test").configure_cert(context)
    srv = serve_http("127.0.0.1", 0, context)
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def trusted(ca, tmp_path, monkeypatch):
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    return bundle


@pytest.fixture
def untrusted(tmp_path, monkeypatch):
    """A trust store without the test CA (an empty bundle and no directory): every chain fails."""
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))


def url(server, path="/ok"):
    return f"https://127.0.0.1:{server.server_address[1]}{path}"


def connections_made(server, before: int) -> int:
    """How many connections were accepted since `before`, counted up to a sentinel connection of ours.

    Connections are accepted in the order they were made, so everything the
    check opened (it has returned) is accepted before the sentinel.
    """
    with socket.create_connection(server.server_address[:2]) as sentinel:
        me = sentinel.getsockname()[:2]
        wait_until(lambda: me in server.accepted_from, "the sentinel connection to be accepted", timeout=5)
    return server.accepted_from.index(me) - before


def assert_totals_add_up(data):
    for hop in data["hops"]:
        timings = hop["timings_ms"]
        parts = sum(timings[p] or 0 for p in PHASES)
        assert timings["total"] >= parts, hop
    top = data["timings_ms"]
    assert top["total"] >= sum(top[p] or 0 for p in PHASES)
    assert top["total"] == pytest.approx(sum(h["timings_ms"]["total"] for h in data["hops"]), abs=0.01)


def test_verified_certificate_uses_one_connection(server, trusted):
    before = len(server.accepted_from)
    result = run_check("http", url(server), {}, allow_private=True)
    assert result["success"] is True, result["error"]
    tls = result["data"]["tls"]
    assert tls["verified"] is True and tls["verify_error"] is None
    assert_totals_add_up(result["data"])
    assert connections_made(server, before) == 1


def test_unverified_with_verify_tls_off_uses_one_connection(server, untrusted):
    before = len(server.accepted_from)
    result = run_check("http", url(server), {"verify_tls": False}, allow_private=True)
    assert result["success"] is True, result["error"]
    assert result["data"]["status_code"] == 200
    tls = result["data"]["tls"]
    assert tls["verified"] is None and tls["verify_error"] is None  # not checked
    assert "tls.hostchecker.test" in tls["san"]
    assert_totals_add_up(result["data"])
    assert connections_made(server, before) == 1


def test_failing_verification_uses_one_connection_and_still_reports_the_certificate(server, untrusted):
    before = len(server.accepted_from)
    result = run_check("http", url(server), {}, allow_private=True)
    assert result["success"] is False and result["error"]["kind"] == "tls_error"
    assert "certificate verification failed" in result["error"]["message"]
    tls = result["data"]["tls"]
    assert tls["verified"] is False and "unable to get local issuer certificate" in tls["verify_error"]
    assert "tls.hostchecker.test" in tls["san"] and tls["issuer"] != tls["subject"]
    assert tls["version"].startswith("TLSv1.") and tls["chain_length"] >= 1
    timings = result["data"]["timings_ms"]
    assert timings["tls"] is not None and timings["ttfb"] is None  # no request over a failed handshake
    assert_totals_add_up(result["data"])
    assert connections_made(server, before) == 1


@pytest.mark.parametrize("options, trust", [({}, "trusted"), ({"verify_tls": False}, "untrusted")])
def test_each_redirect_hop_is_one_connection_with_its_own_timings(server, options, trust, request):
    request.getfixturevalue(trust)
    before = len(server.accepted_from)
    result = run_check("http", url(server, "/r/301"), options, allow_private=True)
    assert result["success"] is True, result["error"]
    data = result["data"]
    assert [h["status_code"] for h in data["hops"]] == [301, 302, 200]
    assert [h["url"] for h in data["hops"]] == [url(server, p) for p in ("/r/301", "/r/302", "/ok")]
    assert all(h["address"] == "127.0.0.1" and h["ip_version"] == 4 for h in data["hops"])
    assert [r["timings_ms"] for r in data["redirects"]] == [h["timings_ms"] for h in data["hops"][:2]]
    assert_totals_add_up(data)
    assert connections_made(server, before) == 3


def curl_total_ms(target: str, *curl_args: str) -> float:
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}", *curl_args, target],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return float(out) * 1000


@pytest.mark.parametrize(
    "options, curl_args, trust",
    [
        ({}, (), "trusted"),
        ({"verify_tls": False}, ("-k",), "untrusted"),
    ],
)
def test_total_agrees_with_curl(server, options, curl_args, trust, request):
    """Within 2 ms or 10% of curl's time_total: same server, same delay, runs interleaved, the fastest of
    each compared (the minimum is what the work costs; slower runs measured other processes' load)."""
    bundle = request.getfixturevalue(trust)
    if bundle is not None:
        curl_args = (*curl_args, "--cacert", str(bundle))
    target = url(server, f"/slow?ms={SLOW_MS}")
    ours, theirs = [], []
    for _ in range(RUNS):
        ours.append(run_check("http", target, options, allow_private=True)["data"]["timings_ms"]["total"])
        theirs.append(curl_total_ms(target, *curl_args))
    ours, theirs = min(ours), min(theirs)
    assert abs(ours - theirs) <= max(2.0, 0.1 * theirs), f"ours {ours} ms, curl {theirs} ms"
