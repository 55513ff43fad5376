"""scripts.localstack_session: clients for LocalStack, built with localstack-client (no server needed)."""

from __future__ import annotations

import pytest
from botocore.config import Config

from scripts.localcloud.localstack_session import localstack_session


@pytest.mark.parametrize("service", ["cloudformation", "s3", "secretsmanager", "ssm", "events"])
def test_every_client_goes_to_the_given_gateway(service, monkeypatch):
    monkeypatch.delenv("USE_SSL", raising=False)
    client = localstack_session("http://127.0.0.1:45123", region="eu-central-1").client(service)
    assert client.meta.endpoint_url == "http://127.0.0.1:45123"
    assert client.meta.region_name == "eu-central-1"


def test_credentials_default_to_localstacks_test_account_and_follow_the_environment(monkeypatch):
    monkeypatch.delenv("LOCALSTACK_ACCESS_KEY_ID", raising=False)
    assert localstack_session("http://127.0.0.1:4566").get_credentials().access_key == "test"
    monkeypatch.setenv("LOCALSTACK_ACCESS_KEY_ID", "111111111111")
    assert localstack_session("http://127.0.0.1:4566").get_credentials().access_key == "111111111111"


def test_client_options_pass_through_but_the_endpoint_does_not():
    session = localstack_session("http://localhost:4566/")
    s3 = session.client("s3", config=Config(s3={"addressing_style": "path"}), endpoint_url="http://elsewhere:1")
    assert s3.meta.endpoint_url == "http://localhost:4566"
    assert s3.meta.config.s3 == {"addressing_style": "path"}


@pytest.mark.parametrize(
    "url", ["https://127.0.0.1:4566", "127.0.0.1:4566", "http://127.0.0.1:4566/prefix", "http://[::1]:4566"]
)
def test_an_endpoint_it_cannot_express_is_refused_by_name(url):
    with pytest.raises(ValueError, match="LocalStack endpoint"):
        localstack_session(url)
