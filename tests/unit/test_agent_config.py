"""Agent settings: environment plus flags, and one clear line with exit 2 for a bad one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import DEFAULT_CONCURRENCY, AgentConfig, ConfigError, load_config
from chalicelib import protocol

ROOT = Path(__file__).resolve().parents[2]

GOOD_ENV = {
    "HC_API_URL": "http://127.0.0.1:8390",
    "HC_REDIS_URL": "redis://127.0.0.1:63800/0",
    "HC_AGENT_NAME": "Frankfurt",
    "HC_AGENT_LOCATION": "Frankfurt, DE",
}


def run_agent(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HC_")}
    clean.update(env)
    clean.setdefault("HC_STATE_DIR", str(tmp_path / "state"))
    return subprocess.run(
        [sys.executable, "-m", "agent", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def test_defaults_from_environment(tmp_path):
    cfg = load_config([], dict(GOOD_ENV, HC_STATE_DIR=str(tmp_path)))
    assert cfg.concurrency == DEFAULT_CONCURRENCY == 512
    assert cfg.allow_private_targets is False
    assert cfg.state_file == tmp_path / "state.json"
    assert cfg.spool_dir == tmp_path / "spool"
    assert cfg.region is None and cfg.registration_token is None
    assert cfg.metrics_address is None  # no /metrics unless asked for


def test_metrics_address_from_flag_or_environment(tmp_path):
    env = dict(GOOD_ENV, HC_STATE_DIR=str(tmp_path), HC_METRICS_ADDRESS="0.0.0.0:9100")
    assert load_config([], env).metrics_address == ("0.0.0.0", 9100)
    assert load_config(["--metrics-address", "127.0.0.1:9464"], env).metrics_address == ("127.0.0.1", 9464)
    assert load_config(["--metrics-address", "[::1]:9464"], env).metrics_address == ("::1", 9464)


def test_engines_default_to_one_and_come_from_flag_or_environment(tmp_path):
    env = dict(GOOD_ENV, HC_STATE_DIR=str(tmp_path))
    assert load_config([], env).engines == 1
    assert load_config([], dict(env, HC_ENGINES="2")).engines == 2
    assert load_config(["--engines", "3"], dict(env, HC_ENGINES="2")).engines == 3


def test_flags_override_environment(tmp_path):
    cfg = load_config(
        [
            "--concurrency",
            "8",
            "--name",
            "Virginia",
            "--allow-private-targets",
            "yes",
            "--state-file",
            str(tmp_path / "id.json"),
            "--api-url",
            "http://127.0.0.1:9/api/",
        ],
        dict(GOOD_ENV, HC_CONCURRENCY="3", HC_STATE_DIR=str(tmp_path)),
    )
    assert cfg.concurrency == 8
    assert cfg.name == "Virginia"
    assert cfg.allow_private_targets is True
    assert cfg.state_file == tmp_path / "id.json"
    assert cfg.api_url == "http://127.0.0.1:9"  # a trailing /api is the routes' own prefix


@pytest.mark.parametrize(
    "env_change, field",
    [
        ({"HC_API_URL": None}, "HC_API_URL"),
        ({"HC_API_URL": "ftp://example.com"}, "HC_API_URL"),
        ({"HC_REDIS_URL": "127.0.0.1:6379"}, "HC_REDIS_URL"),
        ({"HC_AGENT_NAME": ""}, "HC_AGENT_NAME"),
        ({"HC_AGENT_NAME": "bad/name"}, "HC_AGENT_NAME"),
        ({"HC_AGENT_LOCATION": None}, "HC_AGENT_LOCATION"),
        ({"HC_CONCURRENCY": "0"}, "HC_CONCURRENCY"),
        ({"HC_CONCURRENCY": "many"}, "HC_CONCURRENCY"),
        ({"HC_ALLOW_PRIVATE_TARGETS": "maybe"}, "HC_ALLOW_PRIVATE_TARGETS"),
        ({"HC_GRACE_PERIOD_S": "-1"}, "HC_GRACE_PERIOD_S"),
        ({"HC_LOG_FORMAT": "xml"}, "HC_LOG_FORMAT"),
        ({"HC_METRICS_ADDRESS": "9464"}, "HC_METRICS_ADDRESS"),
        ({"HC_METRICS_ADDRESS": "127.0.0.1:http"}, "HC_METRICS_ADDRESS"),
        ({"HC_METRICS_ADDRESS": "127.0.0.1:70000"}, "HC_METRICS_ADDRESS"),
        ({"HC_ENGINES": "0"}, "HC_ENGINES"),
        ({"HC_ENGINES": "17"}, "HC_ENGINES"),
        ({"HC_ENGINES": "two"}, "HC_ENGINES"),
        ({"HC_ENGINES": "4", "HC_CONCURRENCY": "3"}, "HC_ENGINES"),  # each engine runs at least one task
        ({"HC_ENGINES": "2", "HC_METRICS_ADDRESS": "127.0.0.1:9464"}, "HC_METRICS_ADDRESS"),
    ],
)
def test_bad_setting_names_the_variable(env_change, field):
    env = dict(GOOD_ENV)
    for key, value in env_change.items():
        if value is None:
            env.pop(key)
        else:
            env[key] = value
    with pytest.raises(ConfigError) as info:
        load_config([], env)
    assert field in str(info.value)


@pytest.mark.parametrize(
    "env_change, args, expect",
    [
        ({"HC_API_URL": None}, [], "HC_API_URL / --api-url is required"),
        ({"HC_CONCURRENCY": "many"}, [], "HC_CONCURRENCY / --concurrency must be an integer"),
        ({}, ["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        # A first start needs a registration token; the message says so.
        ({}, [], "HC_REGISTRATION_TOKEN"),
    ],
)
def test_bad_setting_exits_2_with_one_line_and_no_traceback(tmp_path, env_change, args, expect):
    env = dict(GOOD_ENV)
    for key, value in env_change.items():
        if value is None:
            env.pop(key)
        else:
            env[key] = value
    proc = run_agent(args, env, tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert expect in lines[0]
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_help_lists_every_variable(tmp_path):
    proc = run_agent(["--help"], {}, tmp_path)
    assert proc.returncode == 0
    for var in (
        "HC_API_URL",
        "HC_REDIS_URL",
        "HC_AGENT_NAME",
        "HC_AGENT_LOCATION",
        "HC_AGENT_REGION",
        "HC_CONCURRENCY",
        "HC_REGISTRATION_TOKEN",
        "HC_STATE_DIR",
        "HC_STATE_FILE",
        "HC_ALLOW_PRIVATE_TARGETS",
        "HC_GRACE_PERIOD_S",
    ):
        assert var in proc.stdout


def test_second_agent_on_the_same_state_folder_is_refused(tmp_path):
    """Two agents sharing a state folder would share a spool and an identity."""
    import fcntl

    state_dir = tmp_path / "state"
    state_dir.mkdir()
    with open(state_dir / "agent.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc = run_agent([], dict(GOOD_ENV, HC_STATE_DIR=str(state_dir)), tmp_path)
    assert proc.returncode == 2
    assert "another agent is already running" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "variable, limit",
    [
        ("HC_AGENT_NAME", protocol.MAX_NAME),
        ("HC_AGENT_LOCATION", protocol.MAX_LOCATION),
        ("HC_AGENT_REGION", protocol.MAX_REGION),
    ],
)
def test_the_agent_accepts_exactly_what_the_api_registers(tmp_path, variable, limit):
    """One definition of the limits (chalicelib.protocol): a value the API would refuse at
    registration is refused here, at start, naming the variable; one it accepts is accepted."""
    load_config([], dict(GOOD_ENV, HC_STATE_DIR=str(tmp_path), **{variable: "a" * limit}))
    with pytest.raises(ConfigError) as info:
        load_config([], dict(GOOD_ENV, HC_STATE_DIR=str(tmp_path), **{variable: "a" * (limit + 1)}))
    assert variable in str(info.value) and str(limit) in str(info.value)


def test_the_agent_reports_the_release_version():
    from agent.checks.base import USER_AGENT
    from chalicelib.config import Settings

    assert AgentConfig.version == Settings.version == protocol.VERSION
    assert USER_AGENT.startswith(f"HostChecker/{protocol.VERSION} ")


def test_the_seeds_container_variables_are_aliases_and_hc_names_win(tmp_path):
    seed = {
        "API_URL": "http://api:8000",
        "REDIS_URL": "redis://redis:6379/0",
        "AGENT_NAME": "Moscow-1",
        "AGENT_LOCATION": "Moscow, Russia",
        "AGENT_TOKEN": "issued-token",
        "HC_STATE_DIR": str(tmp_path),
    }
    cfg = load_config([], seed)
    assert (cfg.api_url, cfg.redis_url, cfg.name, cfg.location, cfg.agent_token) == (
        "http://api:8000",
        "redis://redis:6379/0",
        "Moscow-1",
        "Moscow, Russia",
        "issued-token",
    )
    cfg = load_config([], dict(seed, HC_AGENT_NAME="Frankfurt", HC_AGENT_TOKEN="hc-token"))
    assert (cfg.name, cfg.agent_token) == ("Frankfurt", "hc-token")
