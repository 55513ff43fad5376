"""Settings read the stage secret through Powertools Parameters (moto Secrets Manager)."""
from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from chalicelib import config


@pytest.fixture
def aws_env(monkeypatch):
    for key, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test",
                       "AWS_SECRET_ACCESS_KEY": "test", "HC_SECRET_NAME": "hostchecker/dev/app",
                       "REGISTRATION_TOKEN": "from-env", "HC_STAGE": "dev"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    yield
    monkeypatch.undo()
    config.reset_settings()


def test_settings_take_tokens_from_the_stage_secret(aws_env):
    with mock_aws():
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="hostchecker/dev/app",
            SecretString=json.dumps({"registration_token": "from-secret", "admin_token": "adm",
                                     "database_url": "postgresql://db/x"}))
        settings = config.reset_settings()
    assert settings.registration_token == "from-secret" and settings.admin_token == "adm"
    assert settings.database_url == "postgresql://db/x"
    assert settings.config_source == "secretsmanager:hostchecker/dev/app"


def test_a_missing_secret_is_fatal_on_dev(aws_env):
    with mock_aws():
        with pytest.raises(RuntimeError, match="cannot read secret"):
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
