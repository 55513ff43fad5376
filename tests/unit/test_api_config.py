"""Settings read the stage secret through Powertools Parameters (moto Secrets Manager)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from chalicelib import config


@pytest.fixture
def aws_env(monkeypatch):
    for key, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "HC_SECRET_NAME": "hostchecker/dev/app",
        "REGISTRATION_TOKEN": "from-env",
        "HC_STAGE": "dev",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    yield
    monkeypatch.undo()
    config.reset_settings()


def test_settings_take_tokens_from_the_stage_secret(aws_env):
    with mock_aws():
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="hostchecker/dev/app",
            SecretString=json.dumps(
                {"registration_token": "from-secret", "admin_token": "adm", "database_url": "postgresql://db/x"}
            ),
        )
        settings = config.reset_settings()
    assert settings.registration_token == "from-secret" and settings.admin_token == "adm"
    assert settings.database_url == "postgresql://db/x"
    assert settings.config_source == "secretsmanager:hostchecker/dev/app"


def test_a_missing_secret_is_fatal_on_dev(aws_env):
    with mock_aws(), pytest.raises(RuntimeError, match="cannot read secret"):
        config.reset_settings()


def test_a_missing_secret_falls_back_to_the_environment_on_local(aws_env, monkeypatch):
    monkeypatch.setenv("HC_STAGE", "local")
    with mock_aws():
        settings = config.reset_settings()
    assert settings.registration_token == "from-env" and settings.config_source == "environment"


def test_local_stage_falls_back_to_the_environment_when_localstack_is_not_running(aws_env, monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens there once the block ends
    monkeypatch.setenv("HC_STAGE", "local")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed}")
    settings = config.reset_settings()
    assert settings.registration_token == "from-env" and settings.config_source == "environment"


def test_the_public_check_list_is_a_stage_setting_off_on_prod(monkeypatch):
    from pathlib import Path

    monkeypatch.delenv("HC_PUBLIC_LIST", raising=False)
    assert config.reset_settings().public_list is True
    monkeypatch.setenv("HC_PUBLIC_LIST", "false")
    assert config.reset_settings().public_list is False
    monkeypatch.undo()
    config.reset_settings()
    stages = json.loads((Path(__file__).resolve().parents[2] / ".chalice" / "config.json").read_text())["stages"]
    assert stages["prod"]["environment_variables"]["HC_PUBLIC_LIST"] == "false"


class _SlowSecretsManager:
    """A Secrets Manager endpoint (the AWS API, stood in) that holds GetSecretValue until released,
    so the test can look at what other threads see while the settings are being built."""

    def __init__(self, secret: dict):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.asked, self.release = threading.Event(), threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.asked.set()
                outer.release.wait(30)
                body = json.dumps(
                    {
                        "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:hostchecker/dev/app-x",
                        "Name": "hostchecker/dev/app",
                        "VersionId": "v1",
                        "SecretString": json.dumps(secret),
                        "VersionStages": ["AWSCURRENT"],
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_no_thread_sees_the_settings_before_the_secret_is_in_them(aws_env, monkeypatch):
    """Settings are published once, complete: threads that find them set without taking the lock
    never get the environment's half (here: no DATABASE_URL) while the secret is still being read."""
    import sys
    import threading

    from tests.integration.agent_harness import wait_until

    endpoint = _SlowSecretsManager({"database_url": "postgresql://db/from-secret", "admin_token": "adm"})
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.url)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setattr(config, "_settings", None)
    seen = []

    def read():
        seen.append(config.get_settings())

    builder = threading.Thread(target=read)
    readers = [threading.Thread(target=read) for _ in range(4)]
    try:
        builder.start()
        assert endpoint.asked.wait(30), "the secret was never asked for"
        for reader in readers:
            reader.start()

        def settled(thread) -> bool:  # finished, or waiting in get_settings for the builder
            frame = sys._current_frames().get(thread.ident)
            return not thread.is_alive() or (frame is not None and frame.f_code is config.get_settings.__code__)

        wait_until(lambda: all(settled(r) for r in readers), "the readers to finish or wait for the lock", timeout=30)
    finally:
        endpoint.close()
        for thread in (builder, *readers):
            thread.join(30)
    assert len(seen) == 5
    assert {s.database_url for s in seen} == {"postgresql://db/from-secret"}
    assert len({id(s) for s in seen}) == 1  # one object, built once


def test_allow_private_targets_is_refused_on_prod_at_start_up(monkeypatch, caplog):
    monkeypatch.delenv("HC_SECRET_NAME", raising=False)
    monkeypatch.setenv("HC_STAGE", "prod")
    monkeypatch.setenv("ALLOW_PRIVATE_TARGETS", "true")
    try:
        with pytest.raises(RuntimeError, match="ALLOW_PRIVATE_TARGETS"):
            config.reset_settings()
        assert any(r.levelname == "CRITICAL" and "ALLOW_PRIVATE_TARGETS" in r.getMessage() for r in caplog.records)
        monkeypatch.setenv("HC_STAGE", "dev")  # honoured elsewhere (the local and test stages set it)
        assert config.reset_settings().allow_private_targets is True
    finally:
        monkeypatch.undo()
        config.reset_settings()
