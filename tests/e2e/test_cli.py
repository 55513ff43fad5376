"""`hostchecker check $DEMO_HTTP_URL --type http,ping` against the whole local stack (issue 14's
"done when"): rows fill in live on a terminal before the check completes, then the verdict
lines; `--json` is the API's body, valid against its OpenAPI document."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import pexpect
import pytest
import requests
from jsonschema import Draft202012Validator

from scripts.localcloud.stack import AGENTS
from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def cli_argv(*args: str) -> list[str]:
    script = ROOT / ".venv" / "bin" / "hostchecker"
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "cli", *args]


def cli_env(stack: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOSTCHECKER_", "NO_COLOR"))}
    env.update(
        HOSTCHECKER_API_URL=stack["API_URL"],
        HOSTCHECKER_WS_URL=stack.get("WS_URL", ""),
        HOSTCHECKER_UI_URL=stack.get("UI_URL", ""),
        PYTHONUNBUFFERED="1",
    )
    return env


def test_check_json_is_the_apis_body_and_every_agent_succeeds(stack, tmp_path):
    run = subprocess.run(
        cli_argv("check", stack["DEMO_HTTP_URL"], "--type", "http,ping", "--json"),
        cwd=tmp_path,
        env=cli_env(stack),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    check = json.loads(run.stdout)
    doc = requests.get(f"{stack['API_URL']}/api/openapi.json", timeout=10).json()
    schema = {"$ref": "#/components/schemas/Check", "components": doc["components"]}
    assert not list(Draft202012Validator(schema).iter_errors(check))
    assert check["status"] == "completed" and len(check["results"]) == 2 * len(AGENTS)
    assert all(r["success"] for r in check["results"]), check["results"]


def test_rows_fill_in_live_on_a_terminal_then_the_verdicts(stack, tmp_path):
    argv = cli_argv("check", stack["DEMO_HTTP_URL"], "--type", "http,ping")
    child = pexpect.spawn(
        argv[0], argv[1:], cwd=str(tmp_path), env=cli_env(stack), encoding="utf-8", dimensions=(50, 160), timeout=90
    )
    child.logfile_read = seen = io.StringIO()
    child.expect(f"Ping OK from {len(AGENTS)}/{len(AGENTS)} agents")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    screen = ANSI.sub("", seen.getvalue())
    # HTTP answers in well under a second; ping takes count × interval (about 2 s). So one frame
    # shows every HTTP row done while the ping rows are still waiting: rows before completion.
    assert re.search(rf"HTTP OK from {len(AGENTS)}/{len(AGENTS)} agents[^\n]*\r?\n[^\n]*Ping: ", screen), screen[-3000:]
    for agent in AGENTS:
        assert agent["name"] in screen
