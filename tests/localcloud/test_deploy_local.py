"""scripts/localcloud/cloudformation.py against a real LocalStack (host mode, started by
scripts/localcloud/localstack.py on its own port and state folder for this session, stopped afterwards).

Deploying twice with the same inputs changes nothing; the stack ends in CREATE_COMPLETE /
UPDATE_COMPLETE; the secret, the sweeper rule and the website exist (and no SSM parameters).
Also covers the LocalStack module: reuse, port in use, stop by pid file.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.localcloud import cloudformation as dl
from scripts.localcloud import localstack as ls
from scripts.localcloud.localstack_session import localstack_session
from scripts.localcloud.procs import pid_alive

ROOT = Path(__file__).resolve().parents[2]


OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
SECRETS = dict(
    registration_token="reg-token-1",
    admin_token="admin-token-1",
    database_url='postgresql://hc:p"w@127.0.0.1:55432/hostchecker',
    redis_url="redis://127.0.0.1:56379/0",
)
API_URL = "http://127.0.0.1:58000"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def localstack_instance(tmp_path_factory):
    state = tmp_path_factory.mktemp("localstack-state")
    venv = ls.venv_path()  # the machine-wide cache: shared by checkouts, like the stack's
    try:
        ls.ensure_venv()
    except ls.PythonNotFound as e:
        pytest.skip(f"LocalStack cannot run here: {e}")
    port = _free_port()
    inst = ls.start(state, port=port, venv_dir=venv, timeout=120)
    yield inst, state, venv
    ls.stop(state)
    assert not ls.is_running(state)


@pytest.fixture(scope="session")
def endpoint(localstack_instance):
    return localstack_instance[0].endpoint


def _clients(endpoint):
    session = localstack_session(endpoint)
    return {n: session.client(n) for n in ("cloudformation", "s3", "secretsmanager", "ssm", "events")}


@pytest.fixture(scope="session")
def ui_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("ui")
    (d / "index.html").write_text(
        "<!doctype html><html><head><title>Host Checker</title></head>"
        "<body><h1>Host Checker UI fixture</h1></body></html>"
    )
    (d / "assets").mkdir()
    (d / "assets" / "app.js").write_text("console.log('hc');\n")
    return d


@pytest.fixture(scope="session")
def first_two_deploys(endpoint, ui_dir):
    first = dl.deploy(endpoint_url=endpoint, api_url=API_URL, ui_dir=ui_dir, log=lambda m: None, **SECRETS)
    second = dl.deploy(endpoint_url=endpoint, api_url=API_URL, ui_dir=ui_dir, log=lambda m: None, **SECRETS)
    return first, second


def test_first_deploy_creates_the_stack(first_two_deploys):
    first, _ = first_two_deploys
    assert first.changed is True
    assert first.stack_status == "CREATE_COMPLETE"
    assert set(first.uploaded) == {"index.html", "assets/app.js", "config.json"}


def test_second_deploy_changes_nothing(first_two_deploys, endpoint):
    first, second = first_two_deploys
    assert second.changed is False
    assert second.stack_status in OK
    assert second.uploaded == [] and second.deleted == []
    cfn = _clients(endpoint)["cloudformation"]
    stacks = [
        s
        for s in cfn.list_stacks()["StackSummaries"]
        if s["StackName"] == dl.DEFAULT_STACK and s["StackStatus"] != "DELETE_COMPLETE"
    ]
    assert len(stacks) == 1 and stacks[0]["StackStatus"] in OK


def test_secret_and_rule_exist(first_two_deploys, endpoint):
    c = _clients(endpoint)
    secret = json.loads(c["secretsmanager"].get_secret_value(SecretId="hostchecker/local/app")["SecretString"])
    assert secret == SECRETS  # JSON-escaping kept the quote in the URL intact
    # the app reads no SSM parameters, so the stack writes none (infra/README.md)
    assert c["ssm"].get_parameters_by_path(Path="/hostchecker/local/", Recursive=True)["Parameters"] == []
    rule = c["events"].describe_rule(Name="hostchecker-local-sweeper")
    # the rule declares the rate app.py declares for its sweeper (not a second, hand-kept value)
    assert rule["ScheduleExpression"] == dl.app_schedule() == "rate(1 minute)"


def test_bucket_website_serves_the_ui(first_two_deploys, endpoint):
    import requests

    first, _ = first_two_deploys
    s3 = _clients(endpoint)["s3"]
    site = s3.get_bucket_website(Bucket=first.bucket)
    assert site["IndexDocument"]["Suffix"] == "index.html"
    assert site["ErrorDocument"]["Key"] == "index.html"
    policy = json.loads(s3.get_bucket_policy(Bucket=first.bucket)["Policy"])
    assert any(st.get("Action") == "s3:GetObject" and st.get("Principal") == "*" for st in policy["Statement"])

    # path-style URL: any client, no DNS
    r = requests.get(first.path_url, timeout=10)
    assert r.status_code == 200 and "Host Checker UI fixture" in r.text
    assert r.headers["Content-Type"].startswith("text/html")

    # website endpoint, as a browser sends it: Host: <bucket>.s3-website.localhost:<port>
    # (Python's resolver does not map *.localhost to loopback; browsers and curl do)
    host = first.website_url.split("//", 1)[1].rstrip("/")
    assert host == f"{first.bucket}.s3-website.localhost:{endpoint.rsplit(':', 1)[1]}"
    r = requests.get(f"{endpoint}/", headers={"Host": host}, timeout=10)
    assert r.status_code == 200 and "Host Checker UI fixture" in r.text
    r = requests.get(f"{endpoint}/config.json", headers={"Host": host}, timeout=10)
    assert r.json() == {"apiUrl": API_URL}
    r = requests.get(f"{endpoint}/checks/some-id", headers={"Host": host}, timeout=10)
    assert "Host Checker UI fixture" in r.text  # error document = index.html (single-page app)


def test_changed_input_updates_then_settles(first_two_deploys, endpoint, ui_dir, tmp_path):
    changed = dict(SECRETS, admin_token="admin-token-2")
    api2 = "http://127.0.0.1:58001"
    try:
        res = dl.deploy(endpoint_url=endpoint, api_url=api2, ui_dir=ui_dir, log=lambda m: None, **changed)
        assert res.changed is True and res.stack_status == "UPDATE_COMPLETE"
        assert res.uploaded == ["config.json"]
        c = _clients(endpoint)
        assert (
            json.loads(c["secretsmanager"].get_secret_value(SecretId="hostchecker/local/app")["SecretString"])
            == changed
        )
        again = dl.deploy(endpoint_url=endpoint, api_url=api2, ui_dir=ui_dir, log=lambda m: None, **changed)
        assert again.changed is False and again.stack_status in OK and again.uploaded == []
    finally:
        # back to the session's inputs for any later test, even when an assertion above failed
        dl.deploy(endpoint_url=endpoint, api_url=API_URL, ui_dir=ui_dir, log=lambda m: None, **SECRETS)


def test_cli_is_idempotent_and_says_what_stands_in(first_two_deploys, endpoint, ui_dir):
    env = dict(
        os.environ,
        REGISTRATION_TOKEN=SECRETS["registration_token"],
        ADMIN_TOKEN=SECRETS["admin_token"],
        DATABASE_URL=SECRETS["database_url"],
        REDIS_URL=SECRETS["redis_url"],
    )
    cmd = [
        sys.executable,
        "-m",
        "scripts.deploy_local",
        "--endpoint-url",
        endpoint,
        "--ui-dir",
        str(ui_dir),
        "--api-url",
        API_URL,
    ]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no changes" in r.stdout and "UI: unchanged" in r.stdout
    assert "s3-website.localhost" in r.stdout and "/hostchecker-local-ui/index.html" in r.stdout
    assert "chalice local" in r.stdout and "Docker" in r.stdout
    r = subprocess.run(cmd + ["--json"], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["changed"] is False


def _makefile_recipe(target: str) -> str:
    """The shell line of a Makefile target, with make's variables and $$ expanded."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = lines[start + 1].strip().lstrip("@")
    return recipe.replace("$(PY)", sys.executable).replace("$(UI_DIR)", "frontend").replace("$$", "$")


def test_make_deploy_local_recipe_is_idempotent(first_two_deploys, endpoint, ui_dir, tmp_path):
    """`make deploy-local` as written in the Makefile: it sources the `export KEY=value` lines of
    .local/stack.env (here a copy pointing at this session's LocalStack) and deploys; a second run
    changes nothing and the stack stays CREATE_COMPLETE/UPDATE_COMPLETE."""
    import shlex

    recipe = _makefile_recipe("deploy-local")
    assert "source .local/stack.env" in recipe and "scripts.deploy_local" in recipe
    env_file = tmp_path / "stack.env"
    values = dict(
        STAGE="local",
        API_URL=API_URL,
        LOCALSTACK_URL=endpoint,
        REGISTRATION_TOKEN=SECRETS["registration_token"],
        ADMIN_TOKEN=SECRETS["admin_token"],
        DATABASE_URL=SECRETS["database_url"],
        REDIS_URL=SECRETS["redis_url"],
    )
    env_file.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in values.items()))
    # the session's fixture UI stands in for frontend/dist (the Makefile builds it first)
    recipe = recipe.replace("source .local/stack.env", f"source {shlex.quote(str(env_file))}")
    recipe = recipe.replace("--ui-dir frontend/dist", f"--ui-dir {shlex.quote(str(ui_dir))}")
    env = {k: v for k, v in os.environ.items() if k not in values}
    runs = [
        subprocess.run(["bash", "-c", recipe], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
        for _ in range(2)
    ]
    for r in runs:
        assert r.returncode == 0, r.stdout + r.stderr
    assert "no changes" in runs[1].stdout and "UI: unchanged" in runs[1].stdout, runs[1].stdout
    assert "chalice local" in runs[1].stdout  # says what stands in for Lambda & co.
    cfn = _clients(endpoint)["cloudformation"]
    assert cfn.describe_stacks(StackName=dl.DEFAULT_STACK)["Stacks"][0]["StackStatus"] in OK


def test_app_schedule_matches_what_the_scheduler_discovers():
    """The deploy reads the sweeper's rate through the scheduler's own reader of the loaded app."""
    r = subprocess.run(
        [sys.executable, "-m", "scripts.scheduler", "--list", "--stage", "test"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    rows = [line.split("\t") for line in r.stdout.splitlines() if line.strip()]
    sweepers = [row[1] for row in rows if "sweep" in row[0]]
    assert sweepers and dl.app_schedule() == sweepers[0]


def test_cli_errors_are_one_line(endpoint):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REGISTRATION_TOKEN", "ADMIN_TOKEN", "DATABASE_URL", "REDIS_URL")
    }
    script = "scripts.deploy_local"
    r = subprocess.run(
        [sys.executable, "-m", script, "--endpoint-url", endpoint],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "missing --registration-token" in r.stderr
    dead = f"http://127.0.0.1:{_free_port()}"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            script,
            "--endpoint-url",
            dead,
            "--registration-token",
            "a",
            "--admin-token",
            "b",
            "--database-url",
            "c",
            "--redis-url",
            "d",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "cannot reach LocalStack" in r.stderr
    assert "Traceback" not in r.stderr


# ----------------------------------------------------------------------------- the LocalStack module
def test_start_again_reuses_the_running_instance(localstack_instance):
    inst, state, venv = localstack_instance
    again = ls.start(state, port=inst.port, venv_dir=venv, quiet=True)
    assert again.reused and again.pid == inst.pid
    assert ls.is_running(state)


def test_port_in_use_is_a_clear_error(localstack_instance, tmp_path):
    inst, _, venv = localstack_instance
    with pytest.raises(ls.PortInUse) as ei:
        ls.start(tmp_path / "other", port=inst.port, venv_dir=venv, quiet=True)
    msg = str(ei.value)
    assert "\n" not in msg and str(inst.port) in msg and "in use" in msg
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.localstack",
            "--state-dir",
            str(tmp_path / "other"),
            "--venv-dir",
            str(venv),
            "start",
            "--no-venv",
            "--port",
            str(inst.port),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1 and "in use" in r.stderr and "Traceback" not in r.stderr


def test_missing_python_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("LOCALSTACK_PYTHON", str(tmp_path / "no-python"))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    monkeypatch.setattr(ls.shutil, "which", lambda name: None)
    monkeypatch.setattr(
        ls.os.path, "exists", lambda p, _real=os.path.exists: False if str(p).startswith("/usr") else _real(p)
    )
    with pytest.raises(ls.PythonNotFound) as ei:
        ls.find_python()
    assert "\n" not in str(ei.value) and "3.13" in str(ei.value)


def test_stop_ends_only_its_own_process(localstack_instance, tmp_path):
    _, _, venv = localstack_instance
    state = tmp_path / "second"
    inst = ls.start(state, port=_free_port(), venv_dir=venv, quiet=True, timeout=120)
    try:
        assert ls.is_running(state)
        assert ls.stop(state, quiet=True) is True
    finally:
        ls.stop(state, quiet=True)  # never leave this second LocalStack behind, even on failure
    assert not ls.is_running(state)
    assert not pid_alive(inst.pid)
    assert ls.stop(state, quiet=True) is False  # nothing left to stop; no other process touched
    assert ls.health(inst.port) is None
