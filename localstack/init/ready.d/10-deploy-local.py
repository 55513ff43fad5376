"""LocalStack init hook (READY stage) for the compose stack: deploys infra/local.yaml as the
stack hostchecker-local, the same CloudFormation template scripts/deploy_local.py deploys in
host mode (S3 website bucket for the UI, the secret hostchecker/local/app, the sweeper's
EventBridge rule). Idempotent: an unchanged stack is left as it is.

LocalStack runs it with its own interpreter, which has boto3. The values come from the HC_*
variables the compose file sets on the localstack service; the image carries this file and
the template (localstack/docker/localstack.Dockerfile).
"""

import json
import os

import boto3
from botocore.exceptions import ClientError

TEMPLATE = os.environ.get("HC_LOCAL_TEMPLATE", "/opt/hostchecker/infra/local.yaml")
STACK = "hostchecker-local"


def parameters() -> list[dict]:
    """The template's parameters; the token and URL values are JSON-escaped (they land in JSON)."""
    values = {
        "RegistrationToken": os.environ["HC_REGISTRATION_TOKEN"],
        "AdminToken": os.environ["HC_ADMIN_TOKEN"],
        "DatabaseUrl": os.environ["HC_DATABASE_URL"],
        "RedisUrl": os.environ["HC_REDIS_URL"],
    }
    return [{"ParameterKey": k, "ParameterValue": json.dumps(v)[1:-1]} for k, v in values.items()]


def stack_exists(cfn) -> bool:
    try:
        cfn.describe_stacks(StackName=STACK)
    except ClientError:
        return False
    return True


def deploy() -> None:
    cfn = boto3.client(
        "cloudformation",
        endpoint_url="http://127.0.0.1:4566",
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    with open(TEMPLATE) as f:
        body = f.read()
    try:
        if stack_exists(cfn):
            cfn.update_stack(StackName=STACK, TemplateBody=body, Parameters=parameters())
            cfn.get_waiter("stack_update_complete").wait(StackName=STACK, WaiterConfig={"Delay": 1})
        else:
            cfn.create_stack(StackName=STACK, TemplateBody=body, Parameters=parameters())
            cfn.get_waiter("stack_create_complete").wait(StackName=STACK, WaiterConfig={"Delay": 1})
    except ClientError as exc:
        if "No updates are to be performed" not in str(exc):
            raise
        print(f"hostchecker: stack {STACK} up to date")
        return
    print(f"hostchecker: stack {STACK} deployed")


deploy()
