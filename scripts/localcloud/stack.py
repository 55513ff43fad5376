"""The whole Host Checker stack on one machine (DESIGN §2): which pieces, in which order.

Composition only: each piece lives in its own module (postgres, redis, localstack,
cloudformation, scheduler, netlab, demosite, ui_server); `STEPS` lists them in start order,
so adding a piece is one entry. `down` stops them in the reverse order of dependence.

Profiles keep stacks apart within a checkout: `run` (make run/up/down) lives in .local/run and
prefers the well-known ports; `e2e` and `lifecycle` are the tests' own. Checkouts are kept apart
by owning everything they start: ports are chosen free at start (recorded in the profile's
ports.json and in stack.env, reused while free), labs carry the checkout's id, and `down` stops
only what the profile's pid files and lab description name.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import sys
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from scripts.localcloud import cloudformation, gateway, localstack, netlab, websocket
from scripts.localcloud.netlab import containment
from scripts.localcloud.packages import ensure_system_packages
from scripts.localcloud.postgres import Postgres
from scripts.localcloud.procs import (
    ROOT,
    PidFile,
    ServiceError,
    checkout_id,
    choose_ports,
    listens,
    spawn,
    stop,
    wait_for,
)
from scripts.localcloud.redis import Redis

PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
CHALICE = str(ROOT / ".venv" / "bin" / "chalice")
HOST = "127.0.0.1"

# rtt_ms: the round-trip time the agent's emulated regional link adds (as root).
AGENTS = [
    {"name": "Frankfurt", "location": "Frankfurt, DE", "region": "eu-central-1", "rtt_ms": 10},
    {"name": "Virginia", "location": "Ashburn, US", "region": "us-east-1", "rtt_ms": 40},
    {"name": "Singapore", "location": "Singapore, SG", "region": "ap-southeast-1", "rtt_ms": 120},
]

# The ports a stack listens on (on loopback), by name; `run` prefers these well-known ones.
WELL_KNOWN_PORTS = {
    "pg": 54320,
    "redis": 63790,
    "api": 8000,
    "ui": 8080,
    "localstack": 4566,
    "demo_http": 8081,
    "demo_https": 8082,
    "demo_dns": 8083,
    "ws": 8001,
    "ws_management": 8002,
}


@dataclass(frozen=True)
class Profile:
    name: str
    state: Path
    env_file: Path
    prefer_well_known: bool = False

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def pids(self) -> Path:
        return self.state / "pids"

    @property
    def ports_file(self) -> Path:
        return self.state / "ports.json"

    @property
    def lab_file(self) -> Path:
        return self.state / "netlab.json"

    @property
    def lab_prefix(self) -> str:
        """Lab names carry the checkout and the profile: another checkout's labs never match."""
        return f"hc{checkout_id()}{self.name[:3]}"

    @property
    def hold_name(self) -> str:
        return f"stack-{checkout_id()}-{self.name}"

    def pid_file(self, name: str) -> PidFile:
        return PidFile(self.pids / f"{name}.pid")

    def recorded_ports(self) -> dict[str, int]:
        try:
            return json.loads(self.ports_file.read_text())
        except (OSError, ValueError):
            return {}


PROFILES = {
    "run": Profile("run", ROOT / ".local" / "run", ROOT / ".local" / "stack.env", prefer_well_known=True),
    "e2e": Profile("e2e", ROOT / ".local" / "e2e", ROOT / ".local" / "e2e" / "stack.env"),
    "lifecycle": Profile("lifecycle", ROOT / ".local" / "lifecycle", ROOT / ".local" / "lifecycle" / "stack.env"),
}
TEST_STATE = ROOT / ".local" / "test"  # the integration tests' servers (tests/conftest.py)


class StepFailed(RuntimeError):
    pass


def say(message: str) -> None:
    """Progress output. A closed terminal or pipe must never stop a shutdown half-way."""
    with suppress(BrokenPipeError, OSError):
        print(message, flush=True)


@contextmanager
def step(title: str):
    say(f"==> {title}")
    try:
        yield
    except (ServiceError, StepFailed, netlab.NetlabError) as exc:
        raise StepFailed(f"{title} failed: {exc}") from None


# --- managed processes -----------------------------------------------------


def managed_pid(profile: Profile, name: str) -> int | None:
    """The pid of a process this stack started, if it still runs (pid and start time match)."""
    return profile.pid_file(name).alive()


def managed_names(profile: Profile) -> list[str]:
    return sorted(p.stem for p in profile.pids.glob("*.pid")) if profile.pids.exists() else []


def start_managed(profile: Profile, name: str, argv: list[str], env: dict[str, str]) -> int:
    """Start `name` unless it already runs; returns its pid."""
    return managed_pid(profile, name) or spawn(argv, env, profile.logs / f"{name}.log", profile.pid_file(name)).pid


def stop_managed(profile: Profile, names: list[str], grace: float) -> list[str]:
    """Stop the named processes together (procs.stop); returns the names that were running."""
    records = {name: profile.pid_file(name).read() for name in names}
    running = [name for name, record in records.items() if record and managed_pid(profile, name)]
    stop(*[records[name] for name in running], grace=grace)
    for name in names:
        profile.pid_file(name).path.unlink(missing_ok=True)
    return sorted(running)


def check_alive(profile: Profile, name: str) -> None:
    """Raise StepFailed, with the tail of its log, when a managed process has exited."""
    if not managed_pid(profile, name):
        log = profile.logs / f"{name}.log"
        tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
        raise StepFailed(f"{name} exited: {' | '.join(tail)} (log: {log})")


def ensure_listening(profile: Profile, name: str, port: int | None = None, timeout: float = 30) -> None:
    """Wait until the process itself listens on `port` (procs.listens); fail with its log tail if it dies."""

    def ready():
        check_alive(profile, name)
        return port is None or listens(managed_pid(profile, name), port)

    wait_for(ready, timeout, f"{name} to listen on port {port}")


# --- configuration handed to the processes ---------------------------------


def load_secrets(profile: Profile) -> dict[str, str]:
    path = profile.state / "secrets.json"
    values = json.loads(path.read_text()) if path.exists() else {}
    wanted = {
        "registration_token": lambda: secrets.token_urlsafe(24),
        "admin_token": lambda: secrets.token_urlsafe(24),
        "redis_password": lambda: secrets.token_hex(16),
    }
    if all(values.get(key) for key in wanted):
        return values
    values.update({key: make() for key, make in wanted.items() if not values.get(key)})
    profile.state.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(values, f)
    return values


def write_env_file(profile: Profile, values: dict[str, str]) -> None:
    profile.env_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = profile.env_file.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# Written by `make up` (python -m scripts.stack); `source` it. Holds secrets: mode 0600.\n")
        for key, value in values.items():
            f.write(f"export {key}={shlex.quote(value)}\n")
    os.chmod(tmp, 0o600)
    tmp.replace(profile.env_file)


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HC_", "PYTEST"))}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def http_json(url: str, timeout: float = 2.0):
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, json.loads(resp.read() or b"null")


def api_healthy(api_url: str) -> bool:
    try:
        status, body = http_json(f"{api_url}/health")
    except (OSError, ValueError):  # urllib's HTTPError is an OSError too
        return False
    return status == 200 and body.get("database") == "up" and body.get("redis") == "up"


# --- the stack: one object the steps fill in --------------------------------


@dataclass
class Stack:
    profile: Profile
    with_localstack: bool = True
    with_agents: bool = True
    with_netns: bool = True
    ports: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    lab: dict | None = None
    env: dict[str, str] = field(default_factory=dict)  # what stack.env exports
    api_env: dict[str, str] = field(default_factory=dict)  # the API's and the scheduler's environment
    localstack_url: str = ""

    @property
    def service_host(self) -> str:
        """The agents' namespaces reach the API and Redis on the lab's root-side address
        (a veth in 198.19.0.0/16), never on a public interface."""
        return self.lab["host_address"] if self.lab else HOST

    @property
    def postgres(self) -> Postgres:
        return Postgres(self.profile.state, self.ports.get("pg", 0), HOST)

    @property
    def redis(self) -> Redis:
        return Redis(
            self.profile.state,
            self.ports.get("redis", 0),
            HOST,
            extra_binds=(self.service_host,) if self.lab else (),
            password=self.tokens.get("redis_password", ""),
        )


def running_pieces(profile: Profile) -> set[str]:
    """The port names whose server of this profile runs now (their recorded ports stay)."""
    pieces = {
        "pg": Postgres(profile.state, 0).running(),
        "redis": Redis(profile.state, 0).running(),
        "localstack": localstack.is_running(profile.state),
        "api": bool(managed_pid(profile, "api")),
        "ui": bool(managed_pid(profile, "ui")),
    }
    demo, ws = bool(managed_pid(profile, "demo")), bool(managed_pid(profile, "websocket"))
    pieces.update(demo_http=demo, demo_https=demo, demo_dns=demo, ws=ws, ws_management=ws)
    return {name for name, running in pieces.items() if running}


def step_ports(s: Stack) -> None:
    preferred = {name: (port if s.profile.prefer_well_known else None) for name, port in WELL_KNOWN_PORTS.items()}
    s.ports = choose_ports(s.profile.ports_file, preferred, keep=running_pieces(s.profile))
    s.tokens = load_secrets(s.profile)
    say("==> ports: " + ", ".join(f"{name} {port}" for name, port in s.ports.items()))


def step_packages(s: Stack) -> None:
    with step("system packages"):
        ensure_system_packages(log=say)


def step_regions(s: Stack) -> None:
    """As root: each agent in its own namespace behind a delay link, plus a demo namespace
    standing in for the internet. Otherwise the agents run on loopback."""
    reason = "--without-netns" if not s.with_netns else netlab.unavailable_reason()
    if reason:
        say(f"==> regional links: skipped ({reason}); agents run on loopback")
        return
    profile, ready = s.profile, s.profile.lab_file
    regions = ",".join(f"{a['name'].lower()}={a['rtt_ms']}" for a in AGENTS)
    with step("regional links: a namespace per agent behind a user-space delay link"):
        # Held for as long as any process of this stack runs: the API's address never leaves the machine.
        containment.hold(profile.hold_name, pid_dir=profile.pids)
        if not managed_pid(profile, "netlab"):
            remove_lab_leftovers(profile)
            start_managed(
                profile,
                "netlab",
                [
                    PYTHON,
                    "-m",
                    "scripts.netlab",
                    "regions",
                    "--prefix",
                    profile.lab_prefix,
                    "--regions",
                    regions,
                    "--ready-file",
                    str(ready),
                ],
                base_env(),
            )
        wait_for(lambda: check_alive(profile, "netlab") or ready.exists(), 60, "the namespaces to be built")
        s.lab = json.loads(ready.read_text())  # netlab also points each region's resolver at the demo DNS
        for agent in AGENTS:
            say(
                f"  {agent['name']:<10} {s.lab['regions'][agent['name'].lower()]['address']:<15} "
                f"+{agent['rtt_ms']} ms round trip"
            )
        say(f"  services reachable from the namespaces on {s.lab['host_address']}")


def step_postgres(s: Stack) -> None:
    with step(f"PostgreSQL on {HOST}:{s.ports['pg']}"):
        s.postgres.start(log=say)
    with step("database migrations"):
        from chalicelib.db import migrate

        applied = migrate(s.postgres.url, log=say)
        say(f"  {len(applied)} applied" if applied else "  up to date")


def step_redis(s: Stack) -> None:
    with step(f"Redis on {HOST}:{s.ports['redis']}"):
        s.redis.start(log=say)
    s.env.update(
        {
            "STAGE": "local",
            "API_URL": f"http://{s.service_host}:{s.ports['api']}",
            "UI_URL": "",
            "DATABASE_URL": s.postgres.url,
            "REDIS_URL": s.redis.url,
            "REGISTRATION_TOKEN": s.tokens["registration_token"],
            "ADMIN_TOKEN": s.tokens["admin_token"],
            "WS_URL": f"ws://{HOST}:{s.ports['ws']}",
            "LOCALSTACK_URL": "",
            "REGIONAL_LINKS": "netns" if s.lab else "loopback",
            "CHECKOUT_ID": checkout_id(),
            "LAB_NAME": s.lab["name"] if s.lab else "",
        }
    )


def step_localstack(s: Stack) -> None:
    """LocalStack on the host; without it (or when it cannot start) the stack runs on the environment."""
    port = s.ports["localstack"]
    if not s.with_localstack:
        say("==> LocalStack: skipped (--without-localstack); config comes from the environment")
        return
    say(f"==> LocalStack on {HOST}:{port} (S3 website, Secrets Manager, SSM, EventBridge, CloudFormation)")
    try:
        localstack.ensure_venv(log=say)
        localstack.start(s.profile.state, port=port, log_path=s.profile.logs / "localstack.log", log=say)
    except Exception as exc:  # noqa: BLE001 - any failure here degrades, never aborts
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        say(
            f"  LocalStack could not start ({message}); the stack runs without it: "
            "config from the environment, UI served locally"
        )
        return
    s.localstack_url = s.env["LOCALSTACK_URL"] = f"http://{HOST}:{port}"


def step_deploy(s: Stack) -> None:
    """The local half of the CloudFormation deploy (secret, SSM, schedule rule, UI bucket) to LocalStack."""
    if not s.localstack_url:
        return
    dist = ROOT / "frontend" / "dist"
    built = (dist / "index.html").exists()
    with step("deploy the local half to LocalStack (CloudFormation)"):
        try:
            result = cloudformation.deploy(
                endpoint_url=s.localstack_url,
                stage="local",
                registration_token=s.env["REGISTRATION_TOKEN"],
                admin_token=s.env["ADMIN_TOKEN"],
                database_url=s.env["DATABASE_URL"],
                redis_url=s.env["REDIS_URL"],
                ui_dir=dist if built else None,
                api_url=s.env["API_URL"],
                ws_url=s.env["WS_URL"],
                log=say,
            )
        except cloudformation.DeployError as exc:
            raise StepFailed(str(exc)) from None
        say(
            "  API Gateway, Lambda, RDS and ElastiCache are stood in for by the local API gateway, the "
            "local scheduler, PostgreSQL and Redis: LocalStack cannot run Lambda without Docker."
        )
    if built:
        s.env["UI_URL"] = result["website_url"]


def step_ui(s: Stack) -> None:
    """The built UI on a local static server, when LocalStack's S3 website does not serve it."""
    dist = ROOT / "frontend" / "dist"
    if s.env.get("UI_URL"):
        return
    if not (dist / "index.html").exists():
        say("==> UI: not built (frontend/dist missing); run `make ui`")
        return
    port, profile = s.ports["ui"], s.profile
    with step(f"UI served locally on {HOST}:{port}"):
        site = profile.state / "ui"
        shutil.rmtree(site, ignore_errors=True)
        shutil.copytree(dist, site)
        (site / "config.json").write_bytes(cloudformation.ui_config(s.env["API_URL"], s.env["WS_URL"]))
        start_managed(
            profile,
            "ui",
            [PYTHON, "-m", "scripts.ui_server", "--host", HOST, "--port", str(port), "--directory", str(site)],
            base_env(),
        )
        ensure_listening(profile, "ui", port)
    s.env["UI_URL"] = f"http://{HOST}:{port}/"


def _api_environment(s: Stack) -> dict[str, str]:
    env = base_env()
    env.update(
        {
            "HC_STAGE": "local",
            "ALLOW_PRIVATE_TARGETS": "true",
            "HC_CORS_ORIGIN": "*",
            # Everything local comes from one address; the tests' stacks must not trip the per-IP limit.
            "HC_CHECKS_PER_HOUR": "1000" if s.profile.name == "run" else "100000",
            "HC_REQUESTS_PER_MINUTE": "6000" if s.profile.name == "run" else "100000",
        }
    )
    if s.localstack_url:
        # As in AWS: the tokens and URLs reach the app only through the stage's secret
        # (HC_SECRET_NAME in .chalice/config.json), here in LocalStack.
        env["AWS_ENDPOINT_URL"] = s.localstack_url
    else:
        env.update(
            {
                "DATABASE_URL": s.env["DATABASE_URL"],
                "REDIS_URL": s.env["REDIS_URL"],
                "HC_SECRET_NAME": "",
                "REGISTRATION_TOKEN": s.env["REGISTRATION_TOKEN"],
                "ADMIN_TOKEN": s.env["ADMIN_TOKEN"],
            }
        )
    return env


def step_api_environment(s: Stack) -> None:
    """What the app's processes (API, WebSocket handlers, scheduler) run with, as the stage's Lambdas do."""
    s.api_env = _api_environment(s)
    s.api_env["HC_WS_MANAGEMENT_URL"] = f"http://{HOST}:{s.ports['ws_management']}"


def step_websocket(s: Stack) -> None:
    """API Gateway's WebSocket API: the app's websocket handlers in the emulator, and @connections."""
    port, management = s.ports["ws"], s.ports["ws_management"]
    with step(f"WebSocket API emulator (live results) on {HOST}:{port}, @connections on {management}"):
        start_managed(
            s.profile, "websocket", websocket.command(port, management, HOST, "local", python=PYTHON), s.api_env
        )
        ensure_listening(s.profile, "websocket", port)
        ensure_listening(s.profile, "websocket", management)
        say(f"  {s.env['WS_URL']}?check_id=<id>")


API_SERVERS = ("gateway", "chalice")


def api_command(host: str, port: int, environ=os.environ) -> tuple[str, list[str]]:
    """What serves the REST API: the local gateway (scripts/localcloud/gateway.py: gunicorn workers,
    each a Lambda instance), or with HC_API_SERVER=chalice `chalice local`, one process.
    HC_API_WORKERS sets the gateway's workers (default 2 x cores + 1). Returns (title, argv)."""
    server = environ.get("HC_API_SERVER") or "gateway"
    if server not in API_SERVERS:
        raise StepFailed(f"HC_API_SERVER={server!r}: use one of {', '.join(API_SERVERS)}")
    if server == "chalice":
        argv = [CHALICE, "local", "--stage", "local", "--host", host, "--port", str(port), "--no-autoreload"]
        return "chalice local --stage local", argv
    workers = environ.get("HC_API_WORKERS") or ""
    if workers and not (workers.isdigit() and int(workers) >= 1):
        raise StepFailed(f"HC_API_WORKERS={workers!r}: a number of worker processes, at least 1")
    count = int(workers) if workers else gateway.default_workers()
    return f"local API gateway, {count} workers", gateway.command(port, host, "local", workers=count, python=PYTHON)


def step_api(s: Stack) -> None:
    port, profile = s.ports["api"], s.profile
    title, argv = api_command(s.service_host, port)
    with step(f"API ({title}) on {s.service_host}:{port}"):
        start_managed(profile, "api", argv, s.api_env)
        ensure_listening(profile, "api", port, timeout=60)
        wait_for(
            lambda: check_alive(profile, "api") or api_healthy(s.env["API_URL"]),
            60,
            "GET /health to report database and redis up",
        )
        say(f"  healthy: {s.env['API_URL']}/health")


def step_demo(s: Stack) -> None:
    """The demo site (HTTP, HTTPS, DNS): in its own namespace as root, else on loopback."""
    if s.lab:
        host, ports, prefix = s.lab["demo_address"], (80, 443, 53), ["ip", "netns", "exec", s.lab["demo"]]
    else:
        host, ports, prefix = HOST, (s.ports["demo_http"], s.ports["demo_https"], s.ports["demo_dns"]), []
    with step(f"demo target site on {host} (HTTP {ports[0]}, HTTPS {ports[1]}, DNS {ports[2]})"):
        start_managed(
            s.profile,
            "demo",
            prefix
            + [
                PYTHON,
                "-m",
                "scripts.demosite",
                "--address",
                host,
                "--http-port",
                str(ports[0]),
                "--https-port",
                str(ports[1]),
                "--dns-port",
                str(ports[2]),
            ],
            base_env(),
        )
        ensure_listening(s.profile, "demo", ports[0])
    suffix = lambda port, default: "" if port == default else f":{port}"  # noqa: E731
    s.env.update(
        {
            "DEMO_HOST": host,
            "DEMO_HTTP_URL": f"http://{host}{suffix(ports[0], 80)}/",
            "DEMO_HTTPS_URL": f"https://{host}{suffix(ports[1], 443)}/",
            "DEMO_DNS_SERVER": host,
            "DEMO_DNS_PORT": str(ports[2]),
            "DEMO_DNS_NAME": "demo.hostchecker.test",
            # By name: the agents' resolver is the demo DNS server (in the regional namespaces).
            "DEMO_NAME_URL": f"http://demo.hostchecker.test{suffix(ports[0], 80)}/" if s.lab else "",
        }
    )


def step_scheduler(s: Stack) -> None:
    with step("local scheduler (stands in for EventBridge)"):
        start_managed(s.profile, "scheduler", [PYTHON, "-m", "scripts.scheduler", "--stage", "local"], s.api_env)
        check_alive(s.profile, "scheduler")
        say("  running the app's @app.schedule handlers at their declared rates")


def _agent_env(s: Stack, agent: dict) -> dict[str, str]:
    env = base_env()
    env.update(
        {
            "HC_API_URL": s.env["API_URL"],
            "HC_REDIS_URL": s.redis.url_for(s.service_host),
            "HC_AGENT_NAME": agent["name"],
            "HC_AGENT_LOCATION": agent["location"],
            "HC_AGENT_REGION": agent["region"],
            "HC_REGISTRATION_TOKEN": s.env["REGISTRATION_TOKEN"],
            "HC_STATE_DIR": str(s.profile.state / "agents" / agent["name"].lower()),
            "HC_ALLOW_PRIVATE_TARGETS": "true",
        }
    )
    return env


def agents_online(api_url: str) -> set[str]:
    """The names of the agents the API reports online."""
    try:
        _, body = http_json(f"{api_url}/api/agents?limit=100")
    except (OSError, ValueError):
        return set()
    return {a["name"] for a in body.get("items", []) if a.get("status") == "online"}


def step_agents(s: Stack) -> None:
    if not s.with_agents:
        return
    with step("three local agents" + (" in their regional namespaces" if s.lab else " on loopback")):
        names = {agent["name"]: f"agent-{agent['name'].lower()}" for agent in AGENTS}
        for agent in AGENTS:
            prefix = ["ip", "netns", "exec", s.lab["regions"][agent["name"].lower()]["namespace"]] if s.lab else []
            start_managed(s.profile, names[agent["name"]], prefix + [PYTHON, "-m", "agent"], _agent_env(s, agent))

        def all_online():
            for name in names.values():
                check_alive(s.profile, name)
            return set(names) <= agents_online(s.env["API_URL"])

        wait_for(all_online, 60, "the three agents to report online")
        say("  " + ", ".join(f"{a['name']} ({a['region']})" for a in AGENTS) + ": online")


# The pieces, in start order. A new stand-in (e.g. the WebSocket emulator) is one more entry.
STEPS = [
    step_ports,
    step_packages,
    step_regions,
    step_postgres,
    step_redis,
    step_localstack,
    step_deploy,
    step_ui,
    step_api_environment,
    step_websocket,
    step_api,
    step_demo,
    step_scheduler,
    step_agents,
]


def up(
    profile: Profile, with_localstack: bool = True, with_agents: bool = True, with_netns: bool = True
) -> dict[str, str]:
    started = time.monotonic()
    s = Stack(profile, with_localstack, with_agents, with_netns)
    for run_step in STEPS:
        run_step(s)
    s.env.update({f"PORT_{name.upper()}": str(port) for name, port in s.ports.items()})
    write_env_file(profile, s.env)
    say(f"==> stack healthy in {time.monotonic() - started:.1f} s; settings in {profile.env_file}")
    return s.env


# --- stopping ---------------------------------------------------------------


def remove_lab_leftovers(profile: Profile) -> list[str]:
    """What this profile's lab left behind when its netlab process was killed, by its recorded names."""
    try:
        description = json.loads(profile.lab_file.read_text())
    except (OSError, ValueError):
        return []
    removed = netlab.remove_recorded(description)
    profile.lab_file.unlink(missing_ok=True)
    return removed


def stop_lab(profile: Profile) -> None:
    """The regional lab: its process tears it down; what a killed one left goes by its description."""
    if netlab.unavailable_reason() is not None:
        return  # no lab without root
    if stop_managed(profile, ["netlab"], grace=20):
        say("  removed the regional namespaces and delay links")
    try:
        for item in remove_lab_leftovers(profile):
            say(f"  removed leftover {item}")
        containment.release(profile.hold_name)
    except (OSError, netlab.NetlabError) as exc:
        say(f"  could not remove the lab's leftovers: {exc}")


def down(profile: Profile) -> None:
    say(f"==> stopping the {profile.name} stack")
    # Agents first (they drain and deliver through the API), then what they talk to.
    agents = [n for n in managed_names(profile) if n.startswith("agent-")]
    for group, grace in ((agents, 30), (["scheduler", "api", "websocket", "ui", "demo"], 10)):
        for name in stop_managed(profile, group, grace):
            say(f"  stopped {name}")
    if localstack.stop(profile.state, quiet=True):
        say("  stopped localstack")
    stop_lab(profile)  # after everything that ran inside its namespaces
    for service in (Redis(profile.state, 0, HOST), Postgres(profile.state, 0, HOST)):
        if service.running():  # stopped by pid file: no password needed
            service.stop()
            say(f"  stopped {type(service).__name__.lower()}")
    for name in stop_managed(profile, managed_names(profile), 10):  # anything left from an older layout
        say(f"  stopped {name}")
    say("  nothing of this stack is running")


def clean() -> None:
    """Stop this checkout's stacks and test servers, and delete their PostgreSQL clusters kept outside .local/."""
    for profile in PROFILES.values():
        if profile.state.exists():
            down(profile)
            Postgres(profile.state, 0, HOST).remove_data()
    if TEST_STATE.exists():
        Redis(TEST_STATE, 0, HOST).stop()
        pg = Postgres(TEST_STATE, 0, HOST)
        pg.stop()
        pg.remove_data()


def status(profile: Profile) -> int:
    rows = [(name, managed_pid(profile, name)) for name in managed_names(profile)]
    rows += [
        ("postgres", Postgres(profile.state, 0, HOST).pid()),
        ("redis", Redis(profile.state, 0, HOST).pid()),
        ("localstack", localstack.pid(profile.state)),
    ]
    for name, pid in rows:
        state = f"running (pid {pid})" if pid else "stopped"
        say(f"  {name:<22} {state}")
    if not any(pid for _, pid in rows):
        say(f"the {profile.name} stack is not running; start it with make run or make up")
    return 0


def print_screen(values: dict[str, str]) -> None:
    api = values["API_URL"]
    target = values["DEMO_HTTP_URL"]
    lines = [
        "",
        "Host Checker is running (stage local).",
        f"  UI          {values['UI_URL'] or '(not built: run make ui)'}",
        f"  API         {api}/api   (health: {api}/health, OpenAPI: {api}/api/openapi.json)",
        f"  Live        {values['WS_URL']}?check_id=<id>   (WebSocket: results as each agent reports)",
        "  Agents      "
        + ", ".join(
            f"{a['name']} ({a['location']}"
            + (f", +{a['rtt_ms']} ms)" if values.get("REGIONAL_LINKS") == "netns" else ")")
            for a in AGENTS
        ),
        f"  LocalStack  {values['LOCALSTACK_URL'] or 'not running (config from the environment)'}",
        f"  Demo target {target}",
        f"  Settings    {PROFILES['run'].env_file} (source it in scripts)",
        "",
        "Run a first check:",
        f"  .venv/bin/hostchecker check {target} --type http,ping",
        f"  curl -s -X POST {api}/api/checks -H 'Content-Type: application/json' \\",
        f'       -d \'{{"target": "{target}", "checks": ["http", "tcp", "ping"]}}\'',
        f"  curl -s {api}/api/checks/<check_id>",
        "",
    ]
    say("\n".join(lines))


def watch(profile: Profile, stopping) -> None:
    """Until `stopping()`: report each managed process that exits unexpectedly, once."""
    reported: set[str] = set()
    while not stopping():
        for name in managed_names(profile):
            if name not in reported and not managed_pid(profile, name):
                reported.add(name)
                say(f"!! {name} stopped unexpectedly; see {profile.logs / (name + '.log')}")
        time.sleep(0.5)  # the foreground loop's pace, not a synchronisation
