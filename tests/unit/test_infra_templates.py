"""infra/ templates lint clean (cfn-lint), and `chalice package` output (merged with
infra/app-merge.yaml) lints clean: for a small fixture app always, for the real app.py once it
exists. No servers, no AWS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
VENV_BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    exe = VENV_BIN / name
    return str(exe) if exe.exists() else name


def _templates():
    """Stand-alone CloudFormation templates under infra/ (app-merge.yaml is a fragment, linted merged)."""
    out = []
    for p in sorted(INFRA.rglob("*")):
        if p.suffix not in (".yaml", ".yml", ".json") or "build" in p.relative_to(INFRA).parts:
            continue
        if "AWSTemplateFormatVersion" in p.read_text():
            out.append(p)
    return out


def _lint(path: Path):
    r = subprocess.run([_tool("cfn-lint"), str(path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"cfn-lint {path}:\n{r.stdout}{r.stderr}"


def test_infra_has_the_expected_templates():
    names = {p.name for p in _templates()}
    assert {"core.yaml", "agent.yaml", "local.yaml"} <= names
    assert (INFRA / "app-merge.yaml").is_file()


@pytest.mark.parametrize("template", _templates(), ids=lambda p: str(p.relative_to(ROOT)))
def test_cfn_lint_passes(template):
    _lint(template)


def _package(project: Path, outdir: Path, stage: str):
    env = dict(os.environ, AWS_DEFAULT_REGION="eu-west-1")
    env.pop("AWS_ENDPOINT_URL", None)
    r = subprocess.run(
        [
            _tool("chalice"),
            "package",
            "--stage",
            stage,
            "--template-format",
            "yaml",
            "--merge-template",
            str(INFRA / "app-merge.yaml"),
            str(outdir),
        ],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert r.returncode == 0, f"chalice package failed:\n{r.stdout}{r.stderr}"
    sam = outdir / "sam.yaml"
    assert sam.is_file()
    return sam


def test_chalice_package_of_fixture_app_merges_and_lints(tmp_path):
    proj = tmp_path / "proj"
    (proj / ".chalice").mkdir(parents=True)
    (proj / "app.py").write_text(
        textwrap.dedent("""
        from chalice import Chalice, Rate
        app = Chalice(app_name="hostchecker")
        app.experimental_feature_flags.update(["WEBSOCKETS"])

        @app.route("/health")
        def health():
            return {"status": "ok"}

        # the merge template names the sweeper (Sweep) and the WebSocket API, as app.py has them
        @app.schedule(Rate(1, unit=Rate.MINUTES))
        def sweep(event):
            return None

        @app.on_ws_connect()
        def ws_connect(event):
            return None

        @app.on_ws_message()
        def ws_message(event):
            return None

        @app.on_ws_disconnect()
        def ws_disconnect(event):
            return None
    """)
    )
    (proj / "requirements.txt").write_text("")
    (proj / ".chalice" / "config.json").write_text(
        json.dumps(
            {
                "version": "2.0",
                "app_name": "hostchecker",
                "stages": {"dev": {"api_gateway_stage": "api"}},
            }
        )
    )
    sam = _package(proj, tmp_path / "out", "dev")
    text = sam.read_text()
    # the merge put every function in the VPC and the sweeper keeps its schedule
    assert "VpcConfig" in text and "hostchecker-${Stage}-PrivateSubnetIds" in text
    assert "rate(1 minute)" in text
    assert "AWSLambdaVPCAccessExecutionRole" in text
    _check_gateway_responses(sam)
    _check_websocket_api(sam)
    _lint(sam)


def _check_gateway_responses(sam: Path):
    """API Gateway's own answers (no route, throttled, other 4xx/5xx) are in the API's error shape.

    They must be on Chalice's RestAPI (AWS::Serverless::Api) itself, so SAM writes them into the
    API definition and they are deployed with it; separate AWS::ApiGateway::GatewayResponse
    resources would only go live after a later redeployment of the stage.
    """
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    doc = yaml.load(sam.read_text(), Loader=_Loader)
    resources = doc["Resources"]
    assert resources["RestAPI"]["Type"] == "AWS::Serverless::Api"
    assert not [k for k, v in resources.items() if v["Type"] == "AWS::ApiGateway::GatewayResponse"]
    responses = resources["RestAPI"]["Properties"]["GatewayResponses"]
    assert {"MISSING_AUTHENTICATION_TOKEN", "THROTTLED", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == "404"
    assert responses["THROTTLED"]["ResponseParameters"]["Headers"]["Retry-After"] == "'1'"
    # simple $context substitution only: what they expand to must be JSON in the error shape
    sample = {"$context.error.messageString": '"Missing Authentication Token"', "$context.httpMethod": "GET"}
    for kind, response in responses.items():
        assert response["ResponseParameters"]["Headers"]["Access-Control-Allow-Origin"] == "'*'"
        body = response["ResponseTemplates"]["application/json"]
        for var, value in sample.items():
            body = body.replace(var, value)
        assert "$" not in body, (kind, body)
        error = json.loads(body)["error"]
        assert set(error) == {"code", "message", "details"} and error["code"], (kind, error)
    assert (
        json.loads(
            responses["MISSING_AUTHENTICATION_TOKEN"]["ResponseTemplates"]["application/json"].replace(
                "$context.httpMethod", "GET"
            )
        )["error"]["code"]
        == "not_found"
    )


@pytest.mark.timeout(900)
def test_chalice_package_of_real_app_lints(tmp_path):
    stages = json.loads((ROOT / ".chalice" / "config.json").read_text()).get("stages", {})
    stage = "prod" if "prod" in stages else ("dev" if "dev" in stages else next(iter(stages), "dev"))
    sam = _package(ROOT, tmp_path / "out", stage)
    text = sam.read_text()
    assert "AWS::Serverless::Function" in text
    assert "VpcConfig" in text
    assert "rate(1 minute)" in text  # the sweeper's EventBridge schedule
    _check_gateway_responses(sam)
    _check_websocket_api(sam)
    _lint(sam)


def _check_websocket_api(sam: Path):
    """Live results: the WebSocket API with its three routes, its endpoint told to the REST
    handler and the sweeper, and ManageConnections on it in their role."""
    text = sam.read_text()
    for resource in (
        "WebsocketAPI:",
        "WebsocketConnectRoute:",
        "WebsocketMessageRoute:",
        "WebsocketDisconnectRoute:",
        "LiveConnectionsPolicy:",
    ):
        assert f"\n  {resource}" in text, resource
    assert text.count("HC_WS_MANAGEMENT_URL") == 2
    assert "execute-api:ManageConnections" in text


def test_the_app_stacks_hold_no_ssm_parameters_and_grant_no_ssm_reads():
    """The app reads its config from the stage's environment and one secret, never from SSM, so
    no stack writes parameters nobody reads (they drifted: 100 checks/hour there, 1000 enforced)
    and the Lambda role may not read any."""
    for name in ("core.yaml", "local.yaml", "app-merge.yaml"):
        text = (INFRA / name).read_text()
        assert "AWS::SSM::Parameter" not in text, name
        assert "ssm:" not in text, name
        assert '.ssm"' not in text, name  # no SSM interface endpoint left to pay for
