"""The agent's settings: parsed once, from the environment and the command line.

Every setting has an environment variable (for systemd units and containers)
and a matching flag; the flag wins. A bad or missing setting raises
`ConfigError` with one line that names the variable and the flag, and
`python -m agent` turns that into that line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from chalicelib import targets
from chalicelib.protocol import MAX_LOCATION, MAX_NAME, MAX_REGION, VERSION

# Checks in flight at once. They wait on the network without holding a thread (agent/runner.py),
# so this is a bound on sockets and memory (about 1 descriptor and a few KB each), not on threads.
DEFAULT_CONCURRENCY = 512
DEFAULT_GRACE_PERIOD_S = 20.0
# The API's TTL is 30 s. After an outage of the API, the first heartbeat can come as late as
# interval + outage + the 2 s retry cap (agent/heartbeat.py) after the last one: at 5 s, an agent that
# stayed up through a 20 s outage is never past the TTL (at 10 s it could be, by 2 s; issue 16, suite 4).
DEFAULT_HEARTBEAT_INTERVAL_S = 5.0
MAX_ENGINES = 16
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
# Also the stream consumer name; as long as the API allows (chalicelib.protocol).
_NAME = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9 ._-]{{0,{MAX_NAME - 1}}}$")


class ConfigError(ValueError):
    """A setting is missing or invalid; the message is one line for the operator."""


@dataclass(frozen=True)
class AgentConfig:
    api_url: str
    redis_url: str
    name: str
    location: str
    region: str | None
    concurrency: int
    registration_token: str | None
    state_dir: Path
    state_file: Path
    allow_private_targets: bool
    grace_period_s: float
    heartbeat_interval_s: float
    log_format: str
    agent_token: str | None = None
    version: str = VERSION
    metrics_address: tuple[str, int] | None = None  # serve Prometheus /metrics here; None: off
    engines: int = 1  # engine processes sharing the stream and the concurrency (agent/engines.py)

    @property
    def spool_dir(self) -> Path:
        return self.state_dir / "spool"


# (attribute, environment variable, flag, help). One table, so --help, the
# environment and the error messages cannot drift apart.
_SETTINGS = [
    (
        "api_url",
        "HC_API_URL",
        "--api-url",
        "base URL of the Host Checker API (its routes are under /api/), e.g. http://127.0.0.1:8000 (required)",
    ),
    (
        "redis_url",
        "HC_REDIS_URL",
        "--redis-url",
        "Redis URL holding the task streams, redis:// or rediss:// (required)",
    ),
    ("name", "HC_AGENT_NAME", "--name", "unique agent name, also the stream consumer name (required)"),
    ("location", "HC_AGENT_LOCATION", "--location", "human-readable location, e.g. 'Frankfurt, DE' (required)"),
    ("region", "HC_AGENT_REGION", "--region", "region code, e.g. eu-central-1 (optional)"),
    (
        "concurrency",
        "HC_CONCURRENCY",
        "--concurrency",
        f"tasks in flight at once (default {DEFAULT_CONCURRENCY}); network checks wait without holding a "
        "thread, ping and traceroute run at most 16 at a time among them",
    ),
    (
        "engines",
        "HC_ENGINES",
        "--engines",
        f"engine processes, each running its share of the concurrency on a core of its own (default 1, "
        f"at most {MAX_ENGINES}); one per core lets a busy agent use every core",
    ),
    (
        "registration_token",
        "HC_REGISTRATION_TOKEN",
        "--registration-token",
        "token for first registration and for re-registering when the stored token is rejected",
    ),
    (
        "state_dir",
        "HC_STATE_DIR",
        "--state-dir",
        "folder for the state file and the result spool "
        "(default ~/.local/state/hc-agent, /var/lib/hostchecker-agent as root)",
    ),
    ("state_file", "HC_STATE_FILE", "--state-file", "state file (default STATE_DIR/state.json)"),
    (
        "allow_private_targets",
        "HC_ALLOW_PRIVATE_TARGETS",
        "--allow-private-targets",
        "true to allow loopback/private targets (local stacks and tests only; default false)",
    ),
    (
        "grace_period_s",
        "HC_GRACE_PERIOD_S",
        "--grace-period",
        f"seconds to finish running checks on SIGTERM/SIGINT (default {DEFAULT_GRACE_PERIOD_S:g})",
    ),
    (
        "heartbeat_interval_s",
        "HC_HEARTBEAT_INTERVAL_S",
        "--heartbeat-interval",
        f"seconds between heartbeats (default {DEFAULT_HEARTBEAT_INTERVAL_S:g})",
    ),
    ("log_format", "HC_LOG_FORMAT", "--log-format", "text or json (default text)"),
    (
        "agent_token",
        "HC_AGENT_TOKEN",
        "--agent-token",
        "an agent token issued ahead of time (registered once through the API or the CLI); the agent learns "
        "its id from the API. Without it, the first start registers with the registration token",
    ),
    (
        "metrics_address",
        "HC_METRICS_ADDRESS",
        "--metrics-address",
        "host:port to serve Prometheus /metrics on, e.g. 127.0.0.1:9464 (default: off)",
    ),
]

# The seed's container variables (`docker run -e API_URL=... -e AGENT_TOKEN=...`), read when the
# HC_* variable is not set.
_ALIASES = {
    "api_url": "API_URL",
    "redis_url": "REDIS_URL",
    "name": "AGENT_NAME",
    "location": "AGENT_LOCATION",
    "agent_token": "AGENT_TOKEN",
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m agent",
        description="Host Checker agent: takes tasks from its own Redis stream, runs the checks "
        "and reports the results to the API. Every flag has an environment variable; "
        "the flag wins.",
    )
    for attr, env, flag, help_text in _SETTINGS:
        alias = f" or {_ALIASES[attr]}" if attr in _ALIASES else ""
        parser.add_argument(flag, dest=attr, default=None, metavar=env, help=f"{help_text} [env {env}{alias}]")
    return parser


class _Parser(argparse.ArgumentParser):
    """argparse prints usage plus an error; the operator gets one line instead."""

    def error(self, message: str):
        raise ConfigError(f"{message} (see --help)")


def _flag(attr: str) -> str:
    for a, env, flag, _ in _SETTINGS:
        if a == attr:
            return f"{env} / {flag}"
    return attr


def _from_env(env, attr: str, envname: str) -> str | None:
    value = env.get(envname)
    if value is None and attr in _ALIASES:
        value = env.get(_ALIASES[attr])
    return value


def _default_state_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/hostchecker-agent")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hc-agent"


def _url(attr: str, value: str | None, schemes: tuple[str, ...]) -> str:
    if not value:
        raise ConfigError(f"{_flag(attr)} is required")
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(f"{_flag(attr)} must be a {' or '.join(s + '://' for s in schemes)} URL, got {value!r}")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ConfigError(f"{_flag(attr)} has an invalid port: {value!r}") from None
    return value


def _number(attr: str, value: str | None, default, kind, low, high):
    if value is None or value == "":
        return default
    try:
        number = kind(value)
    except ValueError:
        raise ConfigError(
            f"{_flag(attr)} must be a{'n integer' if kind is int else ' number'}, got {value!r}"
        ) from None
    if not low <= number <= high:
        raise ConfigError(f"{_flag(attr)} must be between {low:g} and {high:g}, got {value!r}")
    return number


def _address(attr: str, value: str | None) -> tuple[str, int] | None:
    """host:port ([v6]:port for IPv6), or None when unset."""
    if not value:
        return None
    host, sep, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"{_flag(attr)} must be host:port, e.g. 127.0.0.1:9464, got {value!r}")
    return host, int(port)


def load_config(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> AgentConfig:
    """Settings from `environ` (default os.environ) with `argv` flags overriding.

    `--help` prints the usage and exits 0 through argparse. Anything wrong,
    an unknown flag included, raises ConfigError.
    """
    env = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    raw = {
        attr: getattr(args, attr) if getattr(args, attr) is not None else _from_env(env, attr, envname)
        for attr, envname, _, _ in _SETTINGS
    }
    raw = {k: (v.strip() if isinstance(v, str) else v) for k, v in raw.items()}

    api_url = _url("api_url", raw["api_url"], ("http", "https")).rstrip("/")
    if api_url.endswith("/api"):  # the routes carry /api themselves; accept the prefix given twice
        api_url = api_url[: -len("/api")]
    redis_url = _url("redis_url", raw["redis_url"], ("redis", "rediss", "unix"))
    name = raw["name"]
    if not name:
        raise ConfigError(f"{_flag('name')} is required")
    if not _NAME.match(name):
        raise ConfigError(
            f"{_flag('name')} must be 1-{MAX_NAME} letters, digits, spaces, '.', '_' or '-', "
            f"starting with a letter or digit, got {name!r}"
        )
    location = raw["location"]
    if not location:
        raise ConfigError(f"{_flag('location')} is required")
    if len(location) > MAX_LOCATION:
        raise ConfigError(f"{_flag('location')} must be at most {MAX_LOCATION} characters")
    if raw["region"] and len(raw["region"]) > MAX_REGION:
        raise ConfigError(f"{_flag('region')} must be at most {MAX_REGION} characters")
    concurrency = _number("concurrency", raw["concurrency"], DEFAULT_CONCURRENCY, int, 1, 1024)
    engines = _number("engines", raw["engines"], 1, int, 1, MAX_ENGINES)
    if engines > concurrency:
        raise ConfigError(
            f"{_flag('engines')} ({engines}) must not exceed {_flag('concurrency')} ({concurrency}): "
            "each engine runs at least one task at a time"
        )
    grace = _number("grace_period_s", raw["grace_period_s"], DEFAULT_GRACE_PERIOD_S, float, 0, 3600)
    heartbeat = _number(
        "heartbeat_interval_s", raw["heartbeat_interval_s"], DEFAULT_HEARTBEAT_INTERVAL_S, float, 0.1, 25
    )

    allow = (raw["allow_private_targets"] or "").lower()
    if allow not in _TRUE | _FALSE:
        raise ConfigError(
            f"{_flag('allow_private_targets')} must be true or false, got {raw['allow_private_targets']!r}"
        )
    try:  # the tests' stand-in for the internet: honoured on HC_STAGE=test only (chalicelib/targets.py)
        targets.test_public_networks(env)
    except targets.UnsafePolicy as exc:
        raise ConfigError(str(exc)) from None
    log_format = (raw["log_format"] or "text").lower()
    if log_format not in ("text", "json"):
        raise ConfigError(f"{_flag('log_format')} must be text or json, got {raw['log_format']!r}")

    metrics_address = _address("metrics_address", raw["metrics_address"])
    if metrics_address and engines > 1:
        raise ConfigError(
            f"{_flag('metrics_address')} is served by a single engine only: with {_flag('engines')} {engines}, "
            "leave it unset or run one engine"
        )
    state_dir = Path(raw["state_dir"]).expanduser() if raw["state_dir"] else _default_state_dir()
    state_file = Path(raw["state_file"]).expanduser() if raw["state_file"] else state_dir / "state.json"
    if state_dir.exists() and not state_dir.is_dir():
        raise ConfigError(f"{_flag('state_dir')} is not a directory: {state_dir}")

    return AgentConfig(
        api_url=api_url,
        redis_url=redis_url,
        name=name,
        location=location,
        region=raw["region"] or None,
        concurrency=concurrency,
        registration_token=raw["registration_token"] or None,
        state_dir=state_dir,
        state_file=state_file,
        allow_private_targets=allow in _TRUE,
        grace_period_s=grace,
        heartbeat_interval_s=heartbeat,
        log_format=log_format,
        agent_token=raw["agent_token"] or None,
        metrics_address=metrics_address,
        engines=engines,
    )
