"""Per-IP rate limits: exhaustion gives 429 with Retry-After and X-RateLimit-*, a new window resets."""

from __future__ import annotations

import pytest

from chalicelib import config, ratelimit


@pytest.fixture
def frozen_clock(monkeypatch):
    """The limiter's clock, moved by hand: 10 s into an hour window."""
    now = {"t": 1_800_000_000 - (1_800_000_000 % 3600) + 10}
    monkeypatch.setattr(ratelimit, "clock", lambda: now["t"])
    return now


def test_check_creation_is_limited_per_ip_and_resets_with_the_window(api, frozen_clock):
    config.reset_settings(checks_per_hour=3)
    api.register("fra-1")
    client = {"X-Forwarded-For": "198.51.100.7"}
    remaining = [
        api.post("/api/checks", {"target": "example.com", "checks": ["http"]}, headers=client) for _ in range(3)
    ]
    assert [r.status for r in remaining] == [202, 202, 202]
    assert [r.headers["X-RateLimit-Remaining"] for r in remaining] == ["2", "1", "0"]
    assert remaining[0].headers["X-RateLimit-Limit"] == "3"

    refused = api.post("/api/checks", {"target": "example.com", "checks": ["http"]}, headers=client)
    assert refused.status == 429 and refused.body["error"]["code"] == "rate_limited"
    assert refused.headers["Retry-After"] == "3590" and refused.headers["X-RateLimit-Reset"] == "3590"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    _assert_browser_can_read_the_limit_headers(refused)

    # another client is not affected
    other = api.post(
        "/api/checks", {"target": "example.com", "checks": ["http"]}, headers={"X-Forwarded-For": "198.51.100.8"}
    )
    assert other.status == 202

    frozen_clock["t"] += 3590  # the next window
    again = api.post("/api/checks", {"target": "example.com", "checks": ["http"]}, headers=client)
    assert again.status == 202 and again.headers["X-RateLimit-Remaining"] == "2"


def _assert_browser_can_read_the_limit_headers(reply):
    """A cross-origin page sees only the headers the response itself exposes."""
    assert reply.headers["Access-Control-Allow-Origin"]
    exposed = {h.strip().lower() for h in reply.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"retry-after", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= exposed


def test_invalid_check_requests_do_not_use_up_the_check_quota(api, frozen_clock):
    config.reset_settings(checks_per_hour=1)
    api.register("fra-1")
    for _ in range(3):
        assert api.post("/api/checks", {"target": "", "checks": ["http"]}).status == 400
    assert api.create_check().status == 202


def test_a_selection_naming_no_agent_does_not_use_up_the_check_quota(api, frozen_clock):
    """docs/api.md: a typo never burns quota; an agent id or a location nobody has is one."""
    config.reset_settings(checks_per_hour=1)
    api.register("fra-1", "Frankfurt")
    for selection in ({"agents": ["00000000-0000-0000-0000-000000000001"]}, {"locations": ["Frankfrut"]}):
        for _ in range(2):
            reply = api.create_check(**selection)
            assert reply.status == 400, reply.body
            assert "X-RateLimit-Remaining" not in reply.headers
    assert api.create_check(locations=["frankfurt"]).status == 202


def test_other_routes_have_a_per_minute_limit_of_their_own(api, frozen_clock):
    config.reset_settings(requests_per_minute=5)
    statuses = [api.get("/api/agents").status for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    refused = api.get("/api/agents")
    assert int(refused.headers["Retry-After"]) <= 60
    _assert_browser_can_read_the_limit_headers(refused)  # answered before any view ran
    assert api.get("/health").status == 200  # health is never limited
    frozen_clock["t"] += 60
    assert api.get("/api/agents").status == 200


def test_limiter_fails_open_when_redis_is_down(api, frozen_clock):
    config.reset_settings(redis_url="redis://127.0.0.1:1/0", checks_per_hour=1)
    # With a limit of 1 a working limiter refuses the second hit; a down Redis lets every hit through.
    decisions = [ratelimit.hit("checks", "198.51.100.7", 1, 3600) for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, True]


def test_client_ip_trusts_forwarded_for_only_behind_a_private_hop():
    assert ratelimit.client_ip("127.0.0.1", "198.51.100.7, 10.0.0.1") == "198.51.100.7"
    assert ratelimit.client_ip("8.8.8.8", "198.51.100.7") == "8.8.8.8"
    assert ratelimit.client_ip("127.0.0.1", "garbage") == "127.0.0.1"
    assert ratelimit.client_ip(None, None) == "unknown"
