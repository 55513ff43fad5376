"""boto3 clients for a running LocalStack, made by `localstack-client` in one place.

Everything that talks to LocalStack from the host (deploy-local, its tests) takes its clients
from here, so the endpoint, the region and LocalStack's dummy credentials are set once. The
Lambda bundle does not use this: the app's `local` stage sets boto3's `AWS_ENDPOINT_URL`
(chalicelib/config.py), and localstack-client is a dev requirement only.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from localstack_client.session import Session

DEFAULT_REGION = "us-east-1"


def localstack_session(endpoint_url: str, region: str = DEFAULT_REGION) -> Session:
    """A session whose every client goes to `endpoint_url` (http://HOST:PORT, LocalStack's gateway).

    localstack-client takes the gateway as HOST:PORT and http unless USE_SSL is set, so anything
    else in the URL is refused here rather than silently dropped. The access key decides the
    LocalStack account: "test" (the default) is account 000000000000.
    """
    parts = urlsplit(endpoint_url)
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ValueError(f"LocalStack endpoint must look like http://HOST:PORT, not {endpoint_url!r}")
    if ":" in parts.hostname:
        raise ValueError(f"LocalStack endpoint {endpoint_url!r}: localstack-client cannot address IPv6 literals")
    return Session(
        aws_access_key_id=os.environ.get("LOCALSTACK_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("LOCALSTACK_SECRET_ACCESS_KEY", "test"),
        region_name=region,
        localstack_host=f"{parts.hostname}:{parts.port or 4566}",
    )
