"""The whole Host Checker stack on one machine (DESIGN §2).

  up      start everything in the background; return when it is healthy
  run     like up, then stay in the foreground; Ctrl-C stops everything
  down    stop everything this stack started (by its pid files), nothing else
  status  show what is running
  logs    follow the logs
  clean   stop every profile's stack and delete its PostgreSQL data (make clean)

Profiles keep stacks apart: `run` (make run/up/down) lives in .local/run with
the well-known ports; `e2e` and `lifecycle` are the tests' own, with their own
ports and data. Every step prints progress; a failed step says what failed and
how to fix it, and exits non-zero.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.services import (  # noqa: E402
    Postgres, Redis, ServiceError, ensure_system_packages, pid_alive, port_in_use,
    require_free_port, stop_pid, wait_for,
)

PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
CHALICE = str(ROOT / ".venv" / "bin" / "chalice")
HOST = "127.0.0.1"

# rtt_ms: the round-trip time the agent's emulated regional link adds (as root).
AGENTS = [
    {"name": "Frankfurt", "location": "Frankfurt, DE", "region": "eu-central-1", "rtt_ms": 10},
    {"name": "Virginia", "location": "Ashburn, US", "region": "us-east-1", "rtt_ms": 40},
    {"name": "Singapore", "location": "Singapore, SG", "region": "ap-southeast-1", "rtt_ms": 120},
]


@dataclass(frozen=True)
class Profile:
    name: str
    state: Path
    pg: int
    redis: int
    api: int
    ui: int
    localstack: int
    demo: int
    env_file: Path

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def pids(self) -> Path:
        return self.state / "pids"


PROFILES = {
    "run": Profile("run", ROOT / ".local" / "run", 54320, 63790, 8000, 8080, 4566, 8081,
                   ROOT / ".local" / "stack.env"),
    "e2e": Profile("e2e", ROOT / ".local" / "e2e", 54340, 63810, 8400, 8410, 4567, 8411,
                   ROOT / ".local" / "e2e" / "stack.env"),
    "lifecycle": Profile("lifecycle", ROOT / ".local" / "lifecycle", 54350, 63820, 8500, 8510, 4568, 8511,
                         ROOT / ".local" / "lifecycle" / "stack.env"),
}


class StepFailed(RuntimeError):
    pass


def say(message: str) -> None:
    """Progress output. A closed terminal or pipe must never stop a shutdown half-way."""
    try:
        print(message, flush=True)
    except (BrokenPipeError, OSError):
        pass


@contextmanager
def step(title: str):
    say(f"==> {title}")
    try:
        yield
    except (ServiceError, StepFailed) as exc:
        raise StepFailed(f"{title} failed: {exc}") from None


# --- managed processes -----------------------------------------------------

def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def managed_pid(profile: Profile, name: str) -> int | None:
    """The pid of a process this stack started, if it still runs.

    The pid file holds the pid and the process start time, so a recycled pid
    belonging to somebody else is never taken for ours.
    """
    path = profile.pids / f"{name}.pid"
    try:
        pid_text, started = path.read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    if pid_alive(pid) and _start_time(pid) == started:
        return pid
    return None


def spawn(profile: Profile, name: str, argv: list[str], env: dict[str, str]) -> int:
    existing = managed_pid(profile, name)
    if existing:
        return existing
    profile.logs.mkdir(parents=True, exist_ok=True)
    profile.pids.mkdir(parents=True, exist_ok=True)
    with open(profile.logs / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    (profile.pids / f"{name}.pid").write_text(f"{proc.pid} {_start_time(proc.pid)}\n")
    return proc.pid


def stop_managed(profile: Profile, name: str, grace: float = 15.0) -> bool:
    return bool(stop_managed_together(profile, [name], grace))


def stop_managed_together(profile: Profile, names: list[str], grace: float) -> list[str]:
    """SIGTERM every named process at once, then wait for each (SIGKILL after `grace`).

    Returns the names that were running."""
    pids = {name: managed_pid(profile, name) for name in names}
    running = {name: pid for name, pid in pids.items() if pid}
    for pid in running.values():
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for pid in running.values():
        stop_pid(pid, timeout=grace, sig=None)  # a second SIGTERM would cut an agent's drain short
    for name in names:
        (profile.pids / f"{name}.pid").unlink(missing_ok=True)
    return sorted(running)


def managed_names(profile: Profile) -> list[str]:
    if not profile.pids.exists():
        return []
    return sorted(p.stem for p in profile.pids.glob("*.pid"))


def check_alive(profile: Profile, name: str) -> None:
    """Raise StepFailed, with the tail of its log, when a managed process has exited."""
    if not managed_pid(profile, name):
        log = profile.logs / f"{name}.log"
        tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
        raise StepFailed(f"{name} exited: {' | '.join(tail)} (log: {log})")


def ensure_alive(profile: Profile, name: str, port: int | None = None, timeout: float = 30,
                 host: str = HOST) -> None:
    """Wait until the process listens on `port`; fail with its log tail if it dies."""
    def ready():
        check_alive(profile, name)
        return port is None or port_in_use(port, host)
    wait_for(ready, timeout, f"{name} on {host}:{port}")


# --- configuration handed to the processes ---------------------------------

def load_secrets(profile: Profile) -> dict[str, str]:
    path = profile.state / "secrets.json"
    values = json.loads(path.read_text()) if path.exists() else {}
    wanted = {"registration_token": lambda: secrets.token_urlsafe(24),
              "admin_token": lambda: secrets.token_urlsafe(24), "redis_password": lambda: secrets.token_hex(16)}
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
        f.write("# Written by `make up` (scripts/stack.py); `source` it. Holds secrets: mode 0600.\n")
        for key, value in values.items():
            f.write(f"export {key}={shlex.quote(value)}\n")
    os.chmod(tmp, 0o600)
    tmp.replace(profile.env_file)


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HC_", "PYTEST"))}
    env.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_DEFAULT_REGION": "us-east-1", "PYTHONUNBUFFERED": "1"})
    return env


def http_json(url: str, timeout: float = 2.0):
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, json.loads(resp.read() or b"null")


def api_healthy(api_url: str) -> bool:
    import urllib.error

    try:
        status, body = http_json(f"{api_url}/health")
    except urllib.error.HTTPError:
        return False
    except (OSError, ValueError):
        return False
    return status == 200 and body.get("database") == "up" and body.get("redis") == "up"


# --- the stack --------------------------------------------------------------

def up(profile: Profile, with_localstack: bool = True, with_agents: bool = True,
       with_netns: bool = True) -> dict[str, str]:
    started = time.monotonic()
    with step("system packages"):
        ensure_system_packages(log=say)
    tokens = load_secrets(profile)
    lab = start_regions(profile) if with_netns else None
    if not with_netns:
        say("==> regional links: skipped (--without-netns); agents run on loopback")
    # The agents' namespaces reach the API and Redis on the lab's root-side
    # address (a veth in 198.19.0.0/16), never on a public interface.
    service_host = lab["host_address"] if lab else HOST
    pg = Postgres(profile.state, profile.pg, HOST)
    redis = Redis(profile.state, profile.redis, HOST, extra_binds=(service_host,) if lab else (),
                  password=tokens.get("redis_password", ""))

    with step(f"PostgreSQL on {HOST}:{profile.pg}"):
        pg.start(log=say)
    with step("database migrations"):
        from chalicelib.db import migrate

        applied = migrate(pg.url, log=say)
        say(f"  {len(applied)} applied" if applied else "  up to date")
    with step(f"Redis on {HOST}:{profile.redis}"):
        redis.start(log=say)

    env_values = {
        "STAGE": "local",
        "API_URL": f"http://{service_host}:{profile.api}",
        "UI_URL": "",
        "DATABASE_URL": pg.url,
        "REDIS_URL": redis.url,
        "REGISTRATION_TOKEN": tokens["registration_token"],
        "ADMIN_TOKEN": tokens["admin_token"],
        "LOCALSTACK_URL": "",
        "REGIONAL_LINKS": "netns" if lab else "loopback",
    }

    localstack_url = start_localstack(profile) if with_localstack else None
    if not with_localstack:
        say("==> LocalStack: skipped (--without-localstack); config comes from the environment")
    env_values["LOCALSTACK_URL"] = localstack_url or ""

    ui_url = publish_ui(profile, env_values, localstack_url)
    env_values["UI_URL"] = ui_url

    api_env = base_env()
    api_env.update({
        "HC_STAGE": "local", "ALLOW_PRIVATE_TARGETS": "true", "HC_CORS_ORIGIN": "*",
        # Everything local comes from one address; the tests' stacks must not trip the per-IP limit.
        "HC_CHECKS_PER_HOUR": "1000" if profile.name == "run" else "100000",
        "HC_REQUESTS_PER_MINUTE": "6000" if profile.name == "run" else "100000",
    })
    if localstack_url:
        # As in AWS: the tokens and URLs reach the app only through the stage's secret
        # (HC_SECRET_NAME in .chalice/config.json), here in LocalStack.
        api_env["AWS_ENDPOINT_URL"] = localstack_url
    else:
        api_env.update({"DATABASE_URL": pg.url, "REDIS_URL": redis.url, "HC_SECRET_NAME": "",
                        "REGISTRATION_TOKEN": tokens["registration_token"], "ADMIN_TOKEN": tokens["admin_token"]})

    with step(f"API (chalice local --stage local) on {service_host}:{profile.api}"):
        if not managed_pid(profile, "api"):
            require_free_port(profile.api, "the API", service_host)
        spawn(profile, "api", [CHALICE, "local", "--stage", "local", "--host", service_host,
                               "--port", str(profile.api), "--no-autoreload"], api_env)
        ensure_alive(profile, "api", profile.api, timeout=60, host=service_host)
        wait_for(lambda: check_alive(profile, "api") or api_healthy(env_values["API_URL"]), 60,
                 "GET /health to report database and redis up")
        say(f"  healthy: {env_values['API_URL']}/health")

    env_values.update(start_demo(profile, lab))

    with step("local scheduler (stands in for EventBridge)"):
        if (ROOT / "scripts" / "scheduler.py").exists():
            spawn(profile, "scheduler", [PYTHON, "scripts/scheduler.py", "--stage", "local"], api_env)
            ensure_alive(profile, "scheduler", None)
            say("  running the app's @app.schedule handlers at their declared rates")
        else:
            say("  skipped: scripts/scheduler.py is not there yet")

    if with_agents:
        start_agents(profile, env_values, lab, redis)
    write_env_file(profile, env_values)
    say(f"==> stack healthy in {time.monotonic() - started:.1f} s; settings in {profile.env_file}")
    return env_values


def netlab_prefix(profile: Profile) -> str:
    return f"hc{profile.name[:3]}"


def start_regions(profile: Profile) -> dict | None:
    """As root: each agent in its own namespace behind a delay link (scripts/netlab.py),
    plus a demo namespace standing in for the internet. Otherwise None (loopback)."""
    from scripts import netlab

    reason = netlab.unavailable_reason()
    if reason:
        say(f"==> regional links: not available ({reason}); agents run on loopback")
        return None
    ready = profile.state / "netlab.json"
    regions = ",".join(f"{a['name'].lower()}={a['rtt_ms']}" for a in AGENTS)
    with step("regional links: a namespace per agent behind a user-space delay link"):
        if not managed_pid(profile, "netlab"):
            ready.unlink(missing_ok=True)
            netlab.cleanup(netlab_prefix(profile))  # whatever a killed run left behind
            spawn(profile, "netlab", [PYTHON, "scripts/netlab.py", "regions", "--prefix", netlab_prefix(profile),
                                      "--regions", regions, "--ready-file", str(ready)], base_env())
        ensure_alive(profile, "netlab", None)
        wait_for(lambda: check_alive(profile, "netlab") or ready.exists(), 60, "the namespaces to be built")
        lab = json.loads(ready.read_text())  # netlab also points each region's resolver at the demo DNS
        for agent in AGENTS:
            say(f"  {agent['name']:<10} {lab['regions'][agent['name'].lower()]['address']:<15} "
                f"+{agent['rtt_ms']} ms round trip")
        say(f"  services reachable from the namespaces on {lab['host_address']}")
    return lab


def start_demo(profile: Profile, lab: dict | None) -> dict[str, str]:
    """The demo site (HTTP, HTTPS, DNS): in its own namespace as root, else on loopback."""
    if lab:
        host, ports = lab["demo_address"], (80, 443, 53)
        argv = ["ip", "netns", "exec", lab["demo"]]
    else:
        host, ports = HOST, (profile.demo, profile.demo + 1, profile.demo + 2)
        argv = []
    with step(f"demo target site on {host} (HTTP {ports[0]}, HTTPS {ports[1]}, DNS {ports[2]})"):
        if not managed_pid(profile, "demo") and not lab:
            for port in ports:
                require_free_port(port, "the demo site")
        spawn(profile, "demo", argv + [PYTHON, "scripts/demosite.py", "--address", host, "--http-port",
                                       str(ports[0]), "--https-port", str(ports[1]), "--dns-port", str(ports[2])],
              base_env())
        ensure_alive(profile, "demo", ports[0], host=host)
    suffix = lambda port, default: "" if port == default else f":{port}"  # noqa: E731
    return {
        "DEMO_HOST": host,
        "DEMO_HTTP_URL": f"http://{host}{suffix(ports[0], 80)}/",
        "DEMO_HTTPS_URL": f"https://{host}{suffix(ports[1], 443)}/",
        "DEMO_DNS_SERVER": host,
        "DEMO_DNS_PORT": str(ports[2]),
        "DEMO_DNS_NAME": "demo.hostchecker.test",
        # By name: the agents' resolver is the demo DNS server (in the regional namespaces).
        "DEMO_NAME_URL": f"http://demo.hostchecker.test{suffix(ports[0], 80)}/" if lab else "",
    }


def start_localstack(profile: Profile) -> str | None:
    """LocalStack on the host, or None (the stack then runs without it)."""
    say(f"==> LocalStack on {HOST}:{profile.localstack} (S3 website, Secrets Manager, SSM, EventBridge, CloudFormation)")
    try:
        from scripts import localstack
    except ImportError:
        say("  LocalStack unavailable (scripts/localstack.py missing): config from the environment, UI served locally")
        return None
    try:
        localstack.ensure_venv(profile.state.parent / "localstack-venv", log=say)
        localstack.start(profile.state / "localstack", port=profile.localstack,
                         log_path=profile.logs / "localstack.log", log=say)
    except Exception as exc:  # noqa: BLE001 - any failure here degrades, never aborts
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        say(f"  LocalStack could not start ({message}); the stack runs without it: "
            "config from the environment, UI served locally")
        return None
    return f"http://{HOST}:{profile.localstack}"


def publish_ui(profile: Profile, env_values: dict[str, str], localstack_url: str | None) -> str:
    dist = ROOT / "frontend" / "dist"
    if localstack_url:
        with step("deploy the local half to LocalStack (CloudFormation)"):
            from scripts import deploy_local

            result = deploy_local.deploy(
                endpoint_url=localstack_url, stage="local",
                registration_token=env_values["REGISTRATION_TOKEN"], admin_token=env_values["ADMIN_TOKEN"],
                database_url=env_values["DATABASE_URL"], redis_url=env_values["REDIS_URL"],
                ui_dir=dist if (dist / "index.html").exists() else None, api_url=env_values["API_URL"],
                log=say,
            )
            say("  API Gateway, Lambda, RDS and ElastiCache are stood in for by chalice local, the local "
                "scheduler, PostgreSQL and Redis: LocalStack cannot run Lambda without Docker.")
            if (dist / "index.html").exists():
                return result["website_url"]
    if not (dist / "index.html").exists():
        say("==> UI: not built (frontend/dist missing); run `make ui`")
        return ""
    with step(f"UI served locally on {HOST}:{profile.ui}"):
        site = profile.state / "ui"
        if site.exists():
            shutil.rmtree(site)
        shutil.copytree(dist, site)
        (site / "config.json").write_text(json.dumps({"apiUrl": env_values["API_URL"]}))
        if not managed_pid(profile, "ui"):
            require_free_port(profile.ui, "the UI server")
        spawn(profile, "ui", [PYTHON, "scripts/ui_server.py", "--host", HOST, "--port", str(profile.ui),
                              "--directory", str(site)], base_env())
        ensure_alive(profile, "ui", profile.ui)
    return f"http://{HOST}:{profile.ui}/"


def start_agents(profile: Profile, env_values: dict[str, str], lab: dict | None, redis: Redis) -> None:
    with step("three local agents" + (" in their regional namespaces" if lab else " on loopback")):
        if not (ROOT / "agent" / "__main__.py").exists():
            say("  skipped: the agent (agent/__main__.py) is not there yet")
            return
        for agent in AGENTS:
            env = base_env()
            env.update({
                "HC_API_URL": env_values["API_URL"],
                "HC_REDIS_URL": redis.url_for(lab["host_address"]) if lab else redis.url,
                "HC_AGENT_NAME": agent["name"], "HC_AGENT_LOCATION": agent["location"],
                "HC_AGENT_REGION": agent["region"], "HC_REGISTRATION_TOKEN": env_values["REGISTRATION_TOKEN"],
                "HC_STATE_DIR": str(profile.state / "agents" / agent["name"].lower()),
                "HC_ALLOW_PRIVATE_TARGETS": "true",
            })
            prefix = ["ip", "netns", "exec", lab["regions"][agent["name"].lower()]["namespace"]] if lab else []
            spawn(profile, f"agent-{agent['name'].lower()}", prefix + [PYTHON, "-m", "agent"], env)

        def all_online():
            for agent in AGENTS:
                check_alive(profile, f"agent-{agent['name'].lower()}")
            try:
                _, body = http_json(f"{env_values['API_URL']}/api/agents?limit=100")
            except (OSError, ValueError):
                return False
            online = {a["name"] for a in body.get("items", []) if a.get("status") == "online"}
            return all(a["name"] in online for a in AGENTS)

        wait_for(all_online, 60, "the three agents to report online")
        say("  " + ", ".join(f"{a['name']} ({a['region']})" for a in AGENTS) + ": online")


def down(profile: Profile) -> None:
    say(f"==> stopping the {profile.name} stack")
    # Agents first (they drain and deliver through the API), then what they talk to.
    agents = [n for n in managed_names(profile) if n.startswith("agent-")]
    for group, grace in ((agents, 30), (["scheduler", "api", "ui", "demo"], 10)):
        for name in stop_managed_together(profile, group, grace):
            say(f"  stopped {name}")
    try:
        from scripts import localstack

        if localstack.stop(profile.state / "localstack"):
            say("  stopped localstack")
    except ImportError:
        pass
    if stop_managed(profile, "netlab", grace=20):  # after everything that ran inside its namespaces
        say("  removed the regional namespaces and delay links")
    try:
        from scripts import netlab

        for item in netlab.cleanup(netlab_prefix(profile)):
            say(f"  removed leftover {item}")
    except Exception as exc:  # noqa: BLE001 - cleanup is best effort; say what is left
        say(f"  could not check for leftover namespaces: {exc}")
    for service in (Redis(profile.state, profile.redis, HOST), Postgres(profile.state, profile.pg, HOST)):
        # stopped by pid file: no password needed
        if service.running():
            service.stop()
            say(f"  stopped {type(service).__name__.lower()}")
    for name in managed_names(profile):  # anything left from an older layout
        stop_managed(profile, name)
    say("  nothing of this stack is running")


def clean() -> None:
    """Stop every profile's stack and delete the PostgreSQL clusters kept outside .local/."""
    for profile in PROFILES.values():
        if profile.state.exists():
            down(profile)
            Postgres(profile.state, profile.pg, HOST).remove_data()
    test_state = ROOT / ".local" / "test"  # the integration tests' servers (tests/conftest.py)
    if test_state.exists():
        Redis(test_state, 0, HOST).stop()
        pg = Postgres(test_state, 0, HOST)
        pg.stop()
        pg.remove_data()


def status(profile: Profile) -> int:
    rows = []
    for name in managed_names(profile):
        rows.append((name, managed_pid(profile, name)))
    pg = Postgres(profile.state, profile.pg, HOST)
    redis = Redis(profile.state, profile.redis, HOST)
    rows += [("postgres", pg.pid()), ("redis", redis.pid())]
    try:
        from scripts import localstack

        rows.append(("localstack", localstack.pid(profile.state / "localstack")))
    except (ImportError, AttributeError):
        pass
    for name, pid in rows:
        say(f"  {name:<22} {'running (pid %d)' % pid if pid else 'stopped'}")
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
        "  Agents      " + ", ".join(f"{a['name']} ({a['location']}"
                                   + (f", +{a['rtt_ms']} ms)" if values.get("REGIONAL_LINKS") == "netns" else ")")
                                   for a in AGENTS),
        f"  LocalStack  {values['LOCALSTACK_URL'] or 'not running (config from the environment)'}",
        f"  Demo target {target}",
        f"  Settings    {PROFILES['run'].env_file} (source it in scripts)",
        "",
        "Run a first check:",
        f"  .venv/bin/hostchecker check {target} --type http,ping",
        f"  curl -s -X POST {api}/api/checks -H 'Content-Type: application/json' \\",
        f"       -d '{{\"target\": \"{target}\", \"checks\": [\"http\", \"tcp\", \"ping\"]}}'",
        f"  curl -s {api}/api/checks/<check_id>",
        "",
    ]
    say("\n".join(lines))


def run_foreground(profile: Profile, **kwargs) -> int:
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    try:
        values = up(profile, **kwargs)
    except StepFailed:
        down(profile)
        raise
    print_screen(values)
    say("Press Ctrl-C to stop everything. Logs: make logs")
    reported: set[str] = set()
    try:
        while not stopping:
            for name in managed_names(profile):
                if name not in reported and not managed_pid(profile, name):
                    reported.add(name)
                    say(f"!! {name} stopped unexpectedly; see {profile.logs / (name + '.log')}")
            time.sleep(0.5)
        say("")
    finally:
        down(profile)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("command", choices=["up", "run", "down", "status", "logs", "clean"])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="run")
    parser.add_argument("--without-localstack", action="store_true", help="do not start LocalStack")
    parser.add_argument("--without-agents", action="store_true", help="do not start the three agents")
    parser.add_argument("--without-netns", action="store_true",
                        help="run the agents and the demo site on loopback, without regional delay links")
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    kwargs = {"with_localstack": not args.without_localstack, "with_agents": not args.without_agents,
              "with_netns": not args.without_netns}
    try:
        if args.command == "up":
            values = up(profile, **kwargs)
            if profile.name == "run":
                print_screen(values)
            return 0
        if args.command == "run":
            return run_foreground(profile, **kwargs)
        if args.command == "down":
            down(profile)
            return 0
        if args.command == "clean":
            clean()
            return 0
        if args.command == "status":
            return status(profile)
        if args.command == "logs":
            logs = sorted(profile.logs.glob("*.log")) if profile.logs.exists() else []
            if not logs:
                say(f"no logs yet in {profile.logs}; start the stack with make run or make up")
                return 1
            os.execvp("tail", ["tail", "-n", "20", "-F", *map(str, logs)])
    except StepFailed as exc:
        say(f"!! {exc}")
        return 1
    except KeyboardInterrupt:
        say("interrupted; stopping what was started")
        down(profile)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
