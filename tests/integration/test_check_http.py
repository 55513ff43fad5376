"""The http check against local servers: phases, redirects, TLS, verdicts, caps."""

from __future__ import annotations

import socket
import ssl

import pytest

from agent.checks import run_check
from agent.checks.http import BODY_CAP_BYTES
from chalicelib import targets
from scripts.localcloud.demosite import DemoSite, serve_http

TTFB_TOLERANCE_MS = 20


@pytest.fixture(scope="module")
def site():
    demo = DemoSite("127.0.0.1").start()
    yield demo
    demo.stop()


def http_url(site, path):
    return f"http://127.0.0.1:{site.ports['http']}{path}"


def https_url(site, path="/"):
    return f"https://127.0.0.1:{site.ports['https']}{path}"


def check(url, **options):
    return run_check("http", url, options, allow_private=True)


def test_redirect_chain_301_302_200_is_reported_hop_by_hop(site):
    result = check(http_url(site, "/r/301"))
    data = result["data"]
    assert result["success"] is True, result["error"]
    assert [(hop["url"], hop["status_code"]) for hop in data["redirects"]] == [
        (http_url(site, "/r/301"), 301),
        (http_url(site, "/r/302"), 302),
    ]
    assert data["final_url"] == http_url(site, "/ok")
    assert data["status_code"] == 200 and data["reason"] == "OK" and data["http_version"] == "HTTP/1.1"
    assert all(hop["timings_ms"]["ttfb"] is not None for hop in data["redirects"])
    assert result["address"] == "127.0.0.1"


def test_redirects_are_not_followed_when_disabled(site):
    result = check(http_url(site, "/r/301"), follow_redirects=False)
    assert result["success"] is True  # 301 is within the default 200-399
    assert result["data"]["status_code"] == 301 and result["data"]["redirects"] == []
    assert result["data"]["headers"]["location"] == "/r/302"


def test_redirect_loop_stops_at_max_redirects(site):
    result = check(http_url(site, "/loop"), max_redirects=3)
    assert result["success"] is False
    assert result["error"]["kind"] == "http_error"
    assert len(result["data"]["redirects"]) == 4  # three followed, the fourth refused


def test_each_redirect_hop_is_checked_by_the_target_policy(site, monkeypatch):
    # allow_private=False, with a policy that allows 127.0.0.1 and refuses 127.0.0.2
    monkeypatch.setattr(targets, "blocked_reason", lambda a: "blocked for this test" if str(a) == "127.0.0.2" else None)
    url = http_url(site, f"/to?url=http://127.0.0.2:{site.ports['http']}/ok")
    result = run_check("http", url, {}, allow_private=False)
    assert result["success"] is False
    assert result["error"]["kind"] == "blocked_target"
    assert [hop["status_code"] for hop in result["data"]["redirects"]] == [302]


def test_all_phases_are_measured_and_add_up(site):
    result = check(http_url(site, "/ok"))
    timings = result["data"]["timings_ms"]
    assert result["success"] is True
    for phase in ("dns", "connect", "ttfb", "download", "total"):
        assert timings[phase] is not None and timings[phase] >= 0, phase
    assert timings["tls"] is None  # plain HTTP
    parts = timings["dns"] + timings["connect"] + timings["ttfb"] + timings["download"]
    assert parts <= timings["total"] <= result["duration_ms"]
    assert result["data"]["headers"]["content-type"].startswith("text/plain")
    assert result["data"]["body_bytes"] == len(b"Host Checker demo site\n")


def test_self_signed_certificate_fails_with_tls_error_but_reports_certificate_and_timings(site):
    result = check(https_url(site))
    assert result["success"] is False
    assert result["error"]["kind"] == "tls_error"
    tls = result["data"]["tls"]
    assert tls["verified"] is False and "self-signed" in tls["verify_error"]
    assert tls["subject"] == tls["issuer"] and "CN=demo.hostchecker.test" in tls["subject"]
    assert 88 <= tls["days_left"] <= 90
    assert "127.0.0.1" in tls["san"] and "demo.hostchecker.test" in tls["san"]
    assert tls["version"].startswith("TLSv1.")
    timings = result["data"]["timings_ms"]
    assert timings["connect"] is not None and timings["tls"] is not None
    assert timings["ttfb"] is None  # no request is sent over an unverified connection
    assert result["data"]["status_code"] is None and result["data"]["body_bytes"] is None


def test_self_signed_certificate_passes_with_verify_off(site):
    result = check(https_url(site), verify_tls=False)
    assert result["success"] is True, result["error"]
    assert result["data"]["status_code"] == 200
    assert result["data"]["tls"]["verified"] is None  # not checked: verify_tls off
    assert "CN=demo.hostchecker.test" in result["data"]["tls"]["subject"]
    assert result["data"]["timings_ms"]["tls"] is not None


def test_certificate_from_a_trusted_ca_verifies(monkeypatch, tmp_path):
    import trustme  # pinned in requirements-dev.txt: a missing one is an error, not a silent skip

    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "trusted.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(context)
    server = serve_http("127.0.0.1", 0, context)
    try:
        bundle = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
        result = check(f"https://127.0.0.1:{server.server_address[1]}/ok")
    finally:
        server.shutdown()
        server.server_close()
    assert result["success"] is True, result["error"]
    tls = result["data"]["tls"]
    assert tls["verified"] is True and tls["verify_error"] is None
    assert tls["issuer"] != tls["subject"]


@pytest.mark.parametrize("delay_ms", [250, 600])
def test_ttfb_matches_the_servers_delay(site, delay_ms):
    result = check(http_url(site, f"/slow?ms={delay_ms}"))
    assert result["success"] is True, result["error"]
    ttfb = result["data"]["timings_ms"]["ttfb"]
    assert abs(ttfb - delay_ms) <= TTFB_TOLERANCE_MS, f"ttfb {ttfb} ms for a {delay_ms} ms delay"


def test_slow_endpoint_times_out_at_the_configured_timeout(site):
    result = check(http_url(site, "/slow?ms=5000"), timeout=1)
    assert result["success"] is False
    assert result["error"]["kind"] == "timeout"
    assert "first response byte" in result["error"]["message"]
    assert 1000 <= result["duration_ms"] < 1500
    assert result["data"]["timings_ms"]["connect"] is not None


def test_500_page_is_an_http_error(site):
    result = check(http_url(site, "/status/500"))
    assert result["success"] is False
    assert result["error"]["kind"] == "http_error"
    assert result["data"]["status_code"] == 500


def test_expected_status_range_decides_success(site):
    assert check(http_url(site, "/status/404"), expected_status="404")["success"] is True
    result = check(http_url(site, "/ok"), expected_status="300-399")
    assert result["success"] is False and result["error"]["kind"] == "http_error"


def test_10mb_body_read_is_capped(site):
    result = check(http_url(site, f"/big?bytes={10 * 1024 * 1024}"))
    assert result["success"] is True
    assert result["data"]["body_bytes"] == BODY_CAP_BYTES <= 1024 * 1024
    assert result["data"]["body_truncated"] is True
    assert result["data"]["headers"]["content-length"] == str(10 * 1024 * 1024)


def test_head_reads_no_body(site):
    result = check(http_url(site, "/big?bytes=5000"), method="HEAD")
    assert result["success"] is True
    assert result["data"]["method"] == "HEAD" and result["data"]["body_bytes"] == 0


def test_host_without_scheme_uses_the_options(site):
    result = run_check(
        "http", "127.0.0.1", {"scheme": "http", "port": site.ports["http"], "path": "/ok"}, allow_private=True
    )
    assert result["success"] is True
    assert result["data"]["final_url"] == http_url(site, "/ok")


def test_closed_port_is_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: connections get a RST
        result = check(f"http://127.0.0.1:{s.getsockname()[1]}/")
    assert result["error"]["kind"] == "refused"


def test_unresolvable_name_is_a_dns_failure(monkeypatch):
    def fail(*_args, **_kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    result = check("http://no-such-host.example/")
    assert result["success"] is False
    assert result["error"]["kind"] == "dns_failure"


def test_options_that_were_already_normalized_are_accepted(site):
    from chalicelib import protocol

    options = protocol.normalize_options("http", {"expected_status": "200-299"})
    assert check(http_url(site, "/ok"), **options)["success"] is True
