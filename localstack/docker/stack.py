#!/usr/bin/env python3
"""`make up-docker` / `make down-docker`: the compose stack (localstack/docker-compose.yml).

    python localstack/docker/stack.py up | down [--volumes] | status | compose ARGS...

`up` needs the images (`make images`) and a running engine (engine.py). It picks free ports once
and keeps them (.local/docker/ports.json; HC_DOCKER_<NAME>_PORT overrides), makes the secrets once
(.local/docker/secrets.json), runs `up -d` and returns when the API is healthy and the three agents
are online. It writes .local/docker/stack.env in the shape `make up` writes .local/stack.env.

The compose project name is derived from this checkout's path, so two checkouts never share
containers, networks or volumes (HC_DOCKER_PROFILE=NAME gives a test its own project and state
in .local/docker/NAME/). `down` keeps the named volumes (data survives); `--volumes`
removes them too.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import images  # noqa: E402

ROOT = HERE.parents[1]
# HC_DOCKER_PROFILE keeps a test's stack apart from `make up-docker`'s: own project, ports, secrets, data.
PROFILE = os.environ.get("HC_DOCKER_PROFILE", "run")
STATE = ROOT / ".local" / "docker" / ("" if PROFILE == "run" else PROFILE)
COMPOSE_FILE = ROOT / "localstack" / "docker-compose.yml"
ENV_FILE = STATE / "stack.env"
PORTS = ("api", "ui", "pg", "redis", "localstack")
AGENTS = ("Frankfurt", "Virginia", "Singapore")
# round trip each agent's regional delay adds (the delay-<name> services of the compose file)
DELAYS_MS = {"Frankfurt": 10, "Virginia": 40, "Singapore": 120}


class StackError(RuntimeError):
    """The compose stack could not come up (or down); one line saying why."""


def say(message: str) -> None:
    print(message, flush=True)


def project_name(root: Path = ROOT, profile: str = PROFILE) -> str:
    name = "hc" + hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:10]
    return name if profile == "run" else f"{name}{profile}"


def compose_command() -> list[str]:
    """HC_COMPOSE if set ("docker compose" or "docker-compose"), else whichever works here."""
    if os.environ.get("HC_COMPOSE"):
        return shlex.split(os.environ["HC_COMPOSE"])
    for candidate in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(candidate[0]) and subprocess.run([*candidate, "version"], capture_output=True).returncode == 0:
            return candidate
    raise StackError("neither `docker compose` nor `docker-compose` works: apt-get install -y docker-compose")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _load_or_make(path: Path, make) -> dict:
    values = json.loads(path.read_text()) if path.exists() else {}
    fresh = make(values)
    if fresh != values:
        STATE.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(fresh, f)
    return fresh


def ports() -> dict[str, int]:
    """Free ports picked on the first `up` and kept, so a restart keeps the same URLs."""

    def make(values):
        return {
            name: int(os.environ.get(f"HC_DOCKER_{name.upper()}_PORT") or values.get(name) or _free_port())
            for name in PORTS
        }

    return _load_or_make(STATE / "ports.json", make)


def stack_secrets() -> dict[str, str]:
    def make(values):
        wanted = ("registration_token", "admin_token", "postgres_password", "redis_password")
        return {key: values.get(key) or secrets.token_hex(16) for key in wanted}

    return _load_or_make(STATE / "secrets.json", make)


def compose_env() -> dict[str, str]:
    tags = images.read_images_env()
    if not tags:
        raise StackError("no images yet: run `make images`")
    env = {**os.environ, **tags, "COMPOSE_PROJECT_NAME": project_name()}
    env.update({f"HC_DOCKER_{name.upper()}_PORT": str(port) for name, port in ports().items()})
    s = stack_secrets()
    env.update(
        {
            "HC_REGISTRATION_TOKEN": s["registration_token"],
            "HC_ADMIN_TOKEN": s["admin_token"],
            "HC_POSTGRES_PASSWORD": s["postgres_password"],
            "HC_REDIS_PASSWORD": s["redis_password"],
        }
    )
    return env


def compose(*args: str, capture: bool = False, check: bool = True) -> subprocess.CompletedProcess:
    argv = [*compose_command(), "-p", project_name(), "-f", str(COMPOSE_FILE), *args]
    run = subprocess.run(argv, env=compose_env(), capture_output=capture, text=True, cwd=ROOT)
    if check and run.returncode != 0:
        tail = ((run.stderr or "").strip().splitlines() or [f"exit {run.returncode}"])[-1]
        raise StackError(f"`{' '.join(compose_command())} {' '.join(args)}` failed: {tail}")
    return run


def stack_values() -> dict[str, str]:
    """The stack.env of `make up`, for this stack: what the host reaches, and the agents' target."""
    p, s = ports(), stack_secrets()
    return {
        "STAGE": "local",
        "API_URL": f"http://127.0.0.1:{p['api']}",
        "UI_URL": f"http://127.0.0.1:{p['ui']}/",
        "DATABASE_URL": f"postgresql://hostchecker:{s['postgres_password']}@127.0.0.1:{p['pg']}/hostchecker",
        "REDIS_URL": f"redis://:{s['redis_password']}@127.0.0.1:{p['redis']}/0",
        "REGISTRATION_TOKEN": s["registration_token"],
        "ADMIN_TOKEN": s["admin_token"],
        "LOCALSTACK_URL": f"http://127.0.0.1:{p['localstack']}",
        "REGIONAL_LINKS": "container",  # a delay sidecar per agent (infra/agent/regional-delay.py)
        # the demo site as the agents reach it, by its compose service name
        "DEMO_HOST": "demo",
        "DEMO_HTTP_URL": "http://demo/",
        "DEMO_HTTPS_URL": "https://demo/",
        "DEMO_DNS_SERVER": "",
        "DEMO_DNS_PORT": "53",
        "DEMO_DNS_NAME": "demo.hostchecker.test",
        "DEMO_NAME_URL": "http://demo/",
        "COMPOSE_PROJECT_NAME": project_name(),
    }


def write_env_file(values: dict[str, str]) -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    tmp = ENV_FILE.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# Written by `make up-docker` (localstack/docker/stack.py); `source` it. Holds secrets: mode 0600.\n")
        for key, value in values.items():
            f.write(f"export {key}={shlex.quote(value)}\n")
    tmp.replace(ENV_FILE)


def _get_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return json.loads(resp.read() or b"null")
    except (OSError, ValueError, urllib.error.HTTPError):
        return None


def wait_until(condition, timeout: float, what: str) -> None:
    """Bounded poll: the containers' healthchecks gate the start order; this only waits for the end."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:.0f} s waiting for {what}; see `make logs-docker`")
        time.sleep(0.5)


def agents_online(api_url: str) -> bool:
    body = _get_json(f"{api_url}/api/agents?limit=100") or {}
    online = {a["name"] for a in body.get("items", []) if a.get("status") == "online"}
    return all(name in online for name in AGENTS)


def healthy(service: str) -> bool:
    ids = compose("ps", "-q", service, capture=True, check=False).stdout.split()
    if not ids:
        return False
    run = subprocess.run(
        [images.docker_cli(), "inspect", "--format", "{{.State.Health.Status}}", ids[0]], capture_output=True, text=True
    )
    return run.stdout.strip() == "healthy"


def up(timeout: float = 300.0) -> dict[str, str]:
    started = time.monotonic()
    say(f"==> compose stack {project_name()} ({' '.join(compose_command())}, {COMPOSE_FILE.relative_to(ROOT)})")
    compose("up", "-d", "--remove-orphans")
    values = stack_values()
    health = f"{values['API_URL']}/health"
    wait_until(lambda: (_get_json(health) or {}).get("database") == "up", timeout, f"{health}")
    wait_until(lambda: agents_online(values["API_URL"]), timeout, "the three agents to report online")
    delays = [f"delay-{name.lower()}" for name in AGENTS]
    wait_until(lambda: all(healthy(s) for s in delays), timeout, "the regional delays (" + ", ".join(delays) + ")")
    write_env_file(values)
    say(f"==> compose stack healthy in {time.monotonic() - started:.0f} s; settings in {ENV_FILE.relative_to(ROOT)}")
    say(f"  API {values['API_URL']}   UI {values['UI_URL']}   LocalStack {values['LOCALSTACK_URL']}")
    say("  agents: " + ", ".join(f"{name} +{ms} ms" for name, ms in DELAYS_MS.items()))
    say("  API Gateway + Lambda are stood in for by chalice local (LocalStack cannot run Lambda here)")
    return values


def down(volumes: bool = False) -> None:
    if not images.read_images_env():
        say("nothing to stop (no images were built in this checkout)")
        return
    say(f"==> stopping compose stack {project_name()}" + (" and removing its volumes" if volumes else ""))
    compose("down", "--remove-orphans", *(["--volumes"] if volumes else []))
    ENV_FILE.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    try:
        if command == "up":
            up()
        elif command == "down":
            down(volumes="--volumes" in argv[1:])
        elif command == "compose":
            return compose(*argv[1:], check=False).returncode
        else:
            return compose("ps", check=False).returncode
    except (StackError, images.ImageError) as exc:
        say(f"!! {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
