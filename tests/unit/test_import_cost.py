"""What `import app` loads (a Lambda cold start): a count of modules, never a timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT


def _modules_after_import_app(**env: str) -> set[str]:
    code = "import json, sys, app; print(json.dumps(sorted(sys.modules)))"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "LAMBDA_", "AWS_SAM"))}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**environ, **env}, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_import_app_with_tracing_off_does_not_load_the_xray_sdk():
    modules = _modules_after_import_app(POWERTOOLS_TRACE_DISABLED="true")
    assert "app" in modules
    assert not {m for m in modules if m.split(".")[0] == "aws_xray_sdk"}


def test_outside_lambda_tracing_is_off_whatever_the_flag_says():
    modules = _modules_after_import_app(POWERTOOLS_TRACE_DISABLED="false")
    assert "aws_xray_sdk" not in modules


def test_tracing_follows_powertools_rule():
    from chalicelib.observability import tracing_enabled

    in_lambda = {"LAMBDA_TASK_ROOT": "/var/task"}
    assert tracing_enabled(in_lambda) is True
    assert tracing_enabled({**in_lambda, "POWERTOOLS_TRACE_DISABLED": "true"}) is False
    assert tracing_enabled({**in_lambda, "AWS_CHALICE_CLI_MODE": "true"}) is False
    assert tracing_enabled({}) is False


def test_in_lambda_with_tracing_on_the_tracer_is_powertools_own():
    code = (
        "import sys, app; from chalicelib import observability as o; "
        "print(type(o.tracer).__name__, 'aws_xray_sdk' in sys.modules)"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_SAM", "AWS_CHALICE"))}
    env = {
        **environ,
        "LAMBDA_TASK_ROOT": str(ROOT),
        "POWERTOOLS_TRACE_DISABLED": "false",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["Tracer", "True"]
