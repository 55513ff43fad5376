"""HC_TEST_PUBLIC_RANGES: the tests' stand-in for the internet, on the `test` stage only.

The SSRF suite (tests/integration/test_ssrf.py) needs an allowed target on a machine where
every address is private. The ranges it names are treated as public by the one policy that
the API and the agent share (chalicelib/targets.py), and refused at start-up anywhere else:
the API's settings and the agent's config both fail, loudly.
"""

from __future__ import annotations

import pytest

from agent.checks import run_check
from agent.config import ConfigError, load_config
from chalicelib import config, targets
from tests.unit.test_agent_config import GOOD_ENV, run_agent

RANGES = "198.18.100.0/24,2001:db8:100::/48"


def test_the_ranges_are_public_on_the_test_stage_and_nothing_else_is(monkeypatch):
    assert targets.blocked_reason("198.18.100.7") == "reserved (benchmarking)"
    monkeypatch.setenv("HC_STAGE", "test")
    monkeypatch.setenv(targets.TEST_PUBLIC_RANGES_ENV, RANGES)
    assert targets.blocked_reason("198.18.100.7") is None
    assert targets.blocked_reason("2001:db8:100::1") is None
    assert targets.parse_target("http://198.18.100.7/", allow_private=False).host == "198.18.100.7"
    for still_blocked in ("198.18.101.1", "127.0.0.1", "169.254.169.254", "2001:db8:101::1"):
        assert targets.blocked_reason(still_blocked), still_blocked


@pytest.mark.parametrize("stage", ["prod", "dev", "local", ""])
def test_the_api_refuses_to_start_with_them_off_the_test_stage(monkeypatch, caplog, stage):
    monkeypatch.delenv("HC_SECRET_NAME", raising=False)
    monkeypatch.setenv("ALLOW_PRIVATE_TARGETS", "false")
    monkeypatch.setenv(targets.TEST_PUBLIC_RANGES_ENV, RANGES)
    monkeypatch.setenv("HC_STAGE", stage)
    try:
        with pytest.raises(RuntimeError, match=targets.TEST_PUBLIC_RANGES_ENV):
            config.reset_settings()
        assert any(r.levelname == "CRITICAL" and "honoured only on" in r.getMessage() for r in caplog.records)
        monkeypatch.setenv("HC_STAGE", "test")
        assert config.reset_settings().stage == "test"
    finally:
        monkeypatch.undo()
        config.reset_settings()


def test_a_bad_list_is_refused_naming_the_entry(monkeypatch):
    monkeypatch.setenv("HC_STAGE", "test")
    monkeypatch.setenv(targets.TEST_PUBLIC_RANGES_ENV, "198.18.100.0/24, nonsense")
    with pytest.raises(targets.UnsafePolicy, match="'nonsense'"):
        targets.test_public_networks()


@pytest.mark.parametrize("stage", [None, "prod"])
def test_the_agent_refuses_to_start_with_them_off_the_test_stage(tmp_path, stage):
    env = dict(GOOD_ENV, HC_STATE_DIR=str(tmp_path), **{targets.TEST_PUBLIC_RANGES_ENV: RANGES})
    if stage:
        env["HC_STAGE"] = stage
    with pytest.raises(ConfigError, match="honoured only on"):
        load_config([], env)
    assert load_config([], dict(env, HC_STAGE="test")).name == "Frankfurt"
    done = run_agent([], env, tmp_path)
    assert done.returncode == 2, done.stderr
    assert targets.TEST_PUBLIC_RANGES_ENV in done.stderr and "Traceback" not in done.stderr


def test_a_check_that_meets_them_off_the_test_stage_fails_closed(monkeypatch):
    monkeypatch.setenv("HC_STAGE", "prod")
    monkeypatch.setenv(targets.TEST_PUBLIC_RANGES_ENV, RANGES)
    result = run_check("tcp", "198.18.100.7", {"port": 9, "timeout": 1}, allow_private=False)
    assert result["success"] is False and result["error"]["kind"] == "internal", result
    assert "honoured only on" in result["error"]["message"]
