"""The compose deployment for real (issue 17): images from our own Debian base, the whole stack
as containers, a 5-type check on its three agents, data that survives a new PostgreSQL container,
the agent image with and without NET_RAW, and nothing left behind.

The engine comes from localstack/docker/engine.py (as root: installed and started when missing,
stopped at the end only if this test started it). Without a usable engine the module is skipped
with one line saying why. The stack runs under the profile "e2e" (own compose project, ports,
secrets and volumes), so a `make up-docker` stack of the same checkout is not touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import read_env_file
from tests.integration.agent_harness import wait_until

ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = ROOT / "localstack" / "docker"
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
PROFILE = "e2e"
CHECK_TYPES = ["http", "ping", "dns", "tcp", "traceroute"]
AGENTS = {"Frankfurt", "Virginia", "Singapore"}
DELAYS_MS = {"Frankfurt": 10, "Virginia": 40, "Singapore": 120}  # the compose file's delay-<name> services

sys.path.insert(0, str(DOCKER_DIR))
import engine  # noqa: E402
import images  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]


def run_tool(script: str, *args: str, timeout: float = 2400) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HC_", "PYTEST"))}
    env["HC_DOCKER_PROFILE"] = PROFILE
    return subprocess.run(
        [PYTHON, str(DOCKER_DIR / script), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([images.docker_cli(), *args], capture_output=True, text=True, timeout=300)


def project() -> str:
    env = {**os.environ, "HC_DOCKER_PROFILE": PROFILE}
    out = subprocess.run(
        [PYTHON, "-c", "import stack; print(stack.project_name())"],
        cwd=DOCKER_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def api(method: str, url: str, body: dict | None = None, headers: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, json.loads(resp.read() or b"null")


def get_or_none(url: str):
    try:
        return api("GET", url)[1]
    except OSError:
        return None


def leftovers(name: str) -> list[str]:
    label = f"label=com.docker.compose.project={name}"
    found = []
    for kind, args in (
        ("container", ["ps", "-aq"]),
        ("network", ["network", "ls", "-q"]),
        ("volume", ["volume", "ls", "-q"]),
    ):
        out = docker(*args, "--filter", label).stdout.split()
        found += [f"{kind} {item}" for item in out]
    return found


@pytest.fixture(scope="module")
def docker_engine():
    if os.geteuid() != 0 and not engine.engine_running():
        pytest.skip("no Docker engine runs and starting dockerd needs root")
    try:
        started = engine.start()
    except engine.EngineError as exc:
        pytest.skip(f"dockerd cannot run here: {exc}")
    yield
    if started:
        engine.stop()


@pytest.fixture(scope="module")
def built(docker_engine):
    first = run_tool("images.py")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    again = run_tool("images.py")
    assert again.returncode == 0, again.stdout + again.stderr
    return images.read_images_env(), again.stdout


@pytest.fixture(scope="module")
def compose_stack(built):
    name = project()
    try:
        up = run_tool("stack.py", "up", timeout=900)
        if up.returncode != 0:
            logs = run_tool("stack.py", "compose", "logs", "--tail", "30")
            pytest.fail(f"the compose stack did not come up:\n{up.stdout[-3000:]}\n{logs.stdout[-6000:]}")
        values = read_env_file(ROOT / ".local" / "docker" / PROFILE / "stack.env")
        values["_project"] = name
        yield values
    finally:
        run_tool("stack.py", "down", "--volumes", timeout=600)


def run_check(values: dict, body: dict, timeout: float = 180) -> dict:
    status, created = api("POST", f"{values['API_URL']}/api/checks", body)
    assert status == 202, created
    url = f"{values['API_URL']}/api/checks/{created['check_id']}"
    wait_until(
        lambda: (get_or_none(url) or {}).get("status") in ("completed", "failed"),
        f"check {created['check_id']} to finish",
        timeout=timeout,
        interval=0.5,
    )
    return api("GET", url)[1]


def test_images_are_cached_when_nothing_changed(built):
    tags, second_run = built
    assert {
        "HC_IMAGE_BASE",
        "HC_IMAGE_APP",
        "HC_IMAGE_AGENT",
        "HC_IMAGE_UI",
        "HC_IMAGE_POSTGRES",
        "HC_IMAGE_REDIS",
        "HC_IMAGE_LOCALSTACK",
    } <= set(tags)
    assert "building" not in second_run and second_run.count("(cached)") == len(images.image_specs()) + 1


def test_five_check_types_complete_on_three_agents(compose_stack):
    _, agents = api("GET", f"{compose_stack['API_URL']}/api/agents?limit=100")
    ours = {a["name"]: a for a in agents["items"] if a["name"] in AGENTS and a["status"] == "online"}
    assert set(ours) == AGENTS
    check = run_check(
        compose_stack,
        {"target": compose_stack["DEMO_HTTP_URL"], "checks": CHECK_TYPES, "agents": [a["id"] for a in ours.values()]},
    )
    assert check["status"] == "completed"
    rows = {(r["agent"]["name"], r["check_type"]): r for r in check["results"]}
    assert set(rows) == {(agent, kind) for agent in AGENTS for kind in CHECK_TYPES}
    failed = {key: row.get("error") for key, row in rows.items() if not row["success"]}
    assert not failed
    # every echo waited in its agent's regional delay: a lower bound, whatever the machine's load
    for agent, delay_ms in DELAYS_MS.items():
        assert rows[(agent, "ping")]["data"]["rtt_ms"]["min"] >= delay_ms


def test_ui_answers_deep_links_and_points_at_the_api(compose_stack):
    for path in ("", "checks/some-id", "config.json"):
        with urllib.request.urlopen(compose_stack["UI_URL"] + path, timeout=10) as resp:
            assert resp.status == 200
            body = resp.read()
    assert json.loads(body)["apiUrl"] == compose_stack["API_URL"]


def test_localstack_holds_the_stage_secret_from_the_cloudformation_init(compose_stack):
    import boto3

    client = boto3.client(
        "secretsmanager",
        endpoint_url=compose_stack["LOCALSTACK_URL"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    secret = json.loads(client.get_secret_value(SecretId="hostchecker/local/app")["SecretString"])
    assert secret["registration_token"] == compose_stack["REGISTRATION_TOKEN"]
    assert "@postgres:5432/" in secret["database_url"]


def test_data_survives_a_new_postgres_container(compose_stack):
    check = run_check(compose_stack, {"target": compose_stack["DEMO_HTTP_URL"], "checks": ["tcp"]})
    for args in (["rm", "--stop", "--force", "postgres"], ["up", "-d", "postgres"]):
        proc = run_tool("stack.py", "compose", *args)
        assert proc.returncode == 0, proc.stderr
    url = f"{compose_stack['API_URL']}/api/checks/{check['check_id']}"
    wait_until(
        lambda: get_or_none(url) is not None,
        "the API to read the check from the new container",
        timeout=120,
        interval=0.5,
    )
    assert api("GET", url)[1]["results"][0]["success"] is True


def _run_agent(values: dict, name: str, caps: list[str], env: dict[str, str]) -> str:
    run = docker(
        "run",
        "-d",
        "--rm",
        "--network",
        f"{values['_project']}_default",
        "--label",
        f"com.docker.compose.project={values['_project']}",
        *caps,
        "-e",
        "API_URL=http://api:8000",
        "-e",
        f"REDIS_URL={_redis_url(values)}",
        "-e",
        f"AGENT_NAME={name}",
        "-e",
        "AGENT_LOCATION=Test, XX",
        "-e",
        "HC_ALLOW_PRIVATE_TARGETS=true",
        *[item for key, value in env.items() for item in ("-e", f"{key}={value}")],
        images.read_images_env()["HC_IMAGE_AGENT"],
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def _redis_url(values: dict) -> str:
    password = values["REDIS_URL"].split("://:", 1)[1].split("@", 1)[0]
    return f"redis://:{password}@redis:6379/0"


def _online_agent(values: dict, name: str) -> dict:
    def found():
        body = get_or_none(f"{values['API_URL']}/api/agents?limit=100") or {"items": []}
        return next((a for a in body["items"] if a["name"] == name and a["status"] == "online"), None)

    return wait_until(found, f"agent {name} to report online", timeout=120, interval=0.5)


def test_agent_container_without_net_raw_says_so_and_drops_traceroute(compose_stack):
    name = f"NoRaw-{uuid.uuid4().hex[:6]}"
    container = _run_agent(
        compose_stack, name, ["--cap-drop", "ALL"], {"HC_REGISTRATION_TOKEN": compose_stack["REGISTRATION_TOKEN"]}
    )
    try:
        agent = _online_agent(compose_stack, name)
        assert "traceroute" not in agent["capabilities"] and "http" in agent["capabilities"]
        assert "--cap-add NET_RAW" in docker("logs", container).stderr
    finally:
        docker("rm", "-f", container)


def test_agent_container_with_net_raw_and_an_issued_token_runs_icmp(compose_stack):
    name = f"Issued-{uuid.uuid4().hex[:6]}"
    registration = {"X-Registration-Token": compose_stack["REGISTRATION_TOKEN"]}
    _, issued = api(
        "POST", f"{compose_stack['API_URL']}/api/agents/register", {"name": name, "location": "Test, XX"}, registration
    )
    container = _run_agent(
        compose_stack, name, ["--cap-drop", "ALL", "--cap-add", "NET_RAW"], {"AGENT_TOKEN": issued["api_token"]}
    )  # no registration token: the issued one only
    try:
        agent = _online_agent(compose_stack, name)
        assert agent["id"] == issued["agent_id"]
        assert {"ping", "traceroute"} <= set(agent["capabilities"])
        check = run_check(
            compose_stack,
            {"target": compose_stack["DEMO_HTTP_URL"], "checks": ["ping", "traceroute"], "agents": [agent["id"]]},
        )
        assert all(row["success"] for row in check["results"]), check["results"]
    finally:
        docker("rm", "-f", container)


def _online_ids(values: dict) -> set[str]:
    _, agents = api("GET", f"{values['API_URL']}/api/agents?limit=100")
    return {a["id"] for a in agents["items"] if a["name"] in AGENTS and a["status"] == "online"}


def test_the_compose_stack_and_a_host_mode_stack_run_side_by_side(stack, compose_stack):
    """This checkout's host-mode e2e stack (python -m scripts.stack, as `make up` runs it) and the compose
    stack are up at once: each has its own database, agents and ports, and each completes its own check."""
    host_agents, compose_agents = _online_ids(stack), _online_ids(compose_stack)
    assert len(host_agents) == len(compose_agents) == len(AGENTS)
    assert not host_agents & compose_agents  # two fleets, two databases
    assert stack["API_URL"] != compose_stack["API_URL"]
    for values, agents in ((stack, host_agents), (compose_stack, compose_agents)):
        check = run_check(values, {"target": values["DEMO_HTTP_URL"], "checks": ["tcp"], "agents": sorted(agents)})
        assert check["status"] == "completed" and all(r["success"] for r in check["results"]), check


def test_down_leaves_no_container_network_or_volume(stack, compose_stack):
    down = run_tool("stack.py", "down", "--volumes", timeout=600)
    assert down.returncode == 0, down.stdout + down.stderr
    assert leftovers(compose_stack["_project"]) == []
    # ...and took nothing of the host-mode stack with it
    assert api("GET", f"{stack['API_URL']}/health")[0] == 200
    assert _online_ids(stack)
