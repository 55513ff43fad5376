"""The local stand-in for a CloudFormation deploy: infra/local.yaml to LocalStack.

What LocalStack runs here without Docker, deployed as one stack (default ``hostchecker-local``):

* an S3 website bucket for the UI (index and error document ``index.html``, public-read policy);
* the Secrets Manager secret ``hostchecker/<stage>/app`` with SecretString
  ``{"registration_token", "admin_token", "database_url", "redis_url"}``;
* the EventBridge rule ``hostchecker-<stage>-sweeper`` declaring the sweeper schedule (no target),
  with the rate the app declares (scheduler.declared(): the one reader of ``@app.schedule``).

API Gateway + Lambda, RDS and ElastiCache are NOT deployed: LocalStack cannot invoke Lambda
functions without a Docker engine, so the local API gateway (gunicorn workers around chalice
local's ``LocalGateway``), the local scheduler, a private PostgreSQL and a private redis-server
stand in for them.

Idempotent: the same inputs a second time change nothing (CloudFormation answers "No updates are
to be performed"), and UI files are uploaded only when their content differs (MD5 vs ETag).

``deploy(...)`` returns a ``DeployResult``; errors the caller should report in one line are
``DeployError``. CLI: ``python -m scripts.deploy_local --help``.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from scripts.localcloud import scheduler
from scripts.localcloud.localstack_session import localstack_session
from scripts.localcloud.procs import ROOT, ServiceError, wait_for

TEMPLATE = ROOT / "infra" / "local.yaml"
DEFAULT_ENDPOINT = "http://127.0.0.1:4566"
DEFAULT_STACK = "hostchecker-local"
DEFAULT_BUCKET = "hostchecker-local-ui"
DEFAULT_REGION = "us-east-1"

STANDINS_NOTE = (
    "API Gateway + Lambda, EventBridge targets, RDS and ElastiCache are not in LocalStack here: "
    "LocalStack cannot run Lambda functions without a Docker engine, so the local API gateway "
    "(gunicorn workers around chalice local's LocalGateway; or `chalice local` itself), "
    "the local scheduler (EventBridge -> Lambda), a private PostgreSQL (RDS) and a private "
    "redis-server (ElastiCache) stand in for them."
)

_OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE"}
_RECREATE = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED"}


class DeployError(RuntimeError):
    """Deployment failed; ``str()`` is a one-line, user-facing message."""


@dataclass
class DeployResult:
    stack_name: str
    stack_status: str
    changed: bool  # CloudFormation changed something
    bucket: str
    website_url: str  # S3 website endpoint (browsers, curl): index/error documents
    path_url: str  # path-style object URL (any HTTP client, no DNS needed)
    reported_website_url: str  # what LocalStack reports (needs public DNS: not offline)
    secret_name: str
    secret_arn: str
    sweeper_rule_arn: str
    uploaded: list[str] = field(default_factory=list)  # UI keys uploaded this run
    deleted: list[str] = field(default_factory=list)  # stale UI keys removed this run

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def __getitem__(self, key: str):
        """result["website_url"] works as well as result.website_url."""
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None


# --------------------------------------------------------------------------- helpers
def _port_of(endpoint_url: str) -> int:
    p = urlsplit(endpoint_url)
    return p.port or (443 if p.scheme == "https" else 80)


def website_url(bucket: str = DEFAULT_BUCKET, endpoint_url: str = DEFAULT_ENDPOINT) -> str:
    """S3 website endpoint that works offline from a browser (Chromium) and curl.

    LocalStack serves websites for any ``Host: <bucket>.s3-website.<anything>``. Browsers and curl
    resolve ``*.localhost`` to loopback themselves; ``*.localhost.localstack.cloud`` would need
    public DNS. Python's resolver does not resolve ``*.localhost``: use path_url() there.
    """
    return f"http://{bucket}.s3-website.localhost:{_port_of(endpoint_url)}/"


def path_url(bucket: str = DEFAULT_BUCKET, endpoint_url: str = DEFAULT_ENDPOINT) -> str:
    """Path-style URL of index.html: works from any client (no DNS), without website semantics."""
    p = urlsplit(endpoint_url)
    return f"{p.scheme}://{p.hostname}:{_port_of(endpoint_url)}/{bucket}/index.html"


def _json_escape(value: str) -> str:
    """Escape for embedding inside a JSON string literal (the template builds the SecretString)."""
    return json.dumps(str(value))[1:-1]


def _session(endpoint_url: str, region: str):
    """The boto3 session for LocalStack (localstack-client), or a DeployError naming the endpoint."""
    try:
        return localstack_session(endpoint_url, region)
    except ValueError as exc:
        raise DeployError(str(exc)) from None


def _clients(endpoint_url: str, region: str):
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        s3={"addressing_style": "path"},
    )
    session = _session(endpoint_url, region)
    return session.client("cloudformation", config=config), session.client("s3", config=config)


def _err(e: Exception) -> str:
    resp = getattr(e, "response", None)
    if resp:
        return resp.get("Error", {}).get("Message") or str(e)
    return str(e).splitlines()[0] if str(e) else e.__class__.__name__


def _describe(cfn, stack: str) -> dict | None:
    from botocore.exceptions import ClientError

    try:
        return cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as e:
        if "does not exist" in _err(e):
            return None
        raise


def _wait_settled(cfn, stack: str, timeout: float) -> dict | None:
    """The stack once no operation is in progress (None: it does not exist)."""

    def settled():
        s = _describe(cfn, stack)
        return {"stack": s} if s is None or not s["StackStatus"].endswith("_IN_PROGRESS") else None

    try:
        return wait_for(settled, timeout, f"stack {stack}", interval=0.2, max_interval=1.0)["stack"]
    except ServiceError:
        raise DeployError(f"stack {stack} still in progress after {timeout:.0f}s") from None


def _failure_reason(cfn, stack: str) -> str:
    try:
        for ev in cfn.describe_stack_events(StackName=stack)["StackEvents"]:
            if ev.get("ResourceStatus", "").endswith("FAILED") and ev.get("ResourceStatusReason"):
                return f"{ev['LogicalResourceId']}: {ev['ResourceStatusReason']}"
    except Exception:  # noqa: BLE001 - best effort only
        pass
    return "see the LocalStack log"


def _reconcile_secret(endpoint_url: str, region: str, name: str, wanted: dict, log) -> None:
    """LocalStack 4.14 reports UPDATE_COMPLETE for a changed SecretString but keeps the old value.

    The stack stays the source of the secret's existence; its value is checked after every deploy
    and written directly only when it differs (so a no-change run stays a no-change run).
    """
    sm = _session(endpoint_url, region).client("secretsmanager")
    current = sm.get_secret_value(SecretId=name)["SecretString"]
    try:
        same = json.loads(current) == wanted
    except ValueError:
        same = False
    if not same:
        sm.put_secret_value(SecretId=name, SecretString=json.dumps(wanted))
        log(f"[deploy-local] secret {name}: value updated (LocalStack does not apply SecretString updates)")


# --------------------------------------------------------------------------- UI upload
def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _content_type(name: str) -> str:
    ctype, _ = mimetypes.guess_type(name)
    if name.endswith(".js") or name.endswith(".mjs"):
        ctype = "text/javascript"
    ctype = ctype or "application/octet-stream"
    if ctype.startswith("text/") or ctype in ("application/json", "image/svg+xml"):
        ctype += "; charset=utf-8"
    return ctype


def _existing_etags(s3, bucket: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = obj["ETag"].strip('"')
    return out


PLACEHOLDER_HTML = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Host Checker</title></head>
<body><h1>Host Checker</h1>
<p>The web UI has not been built yet (frontend/dist is missing). The API is up; build the UI and
run <code>make deploy-local</code> again.</p></body></html>
"""


def ui_config(api_url: str, ws_url: str | None = None) -> bytes:
    """The UI's config.json: where the API is, and the WebSocket for live results when there is one."""
    config = {"apiUrl": api_url, **({"wsUrl": ws_url} if ws_url else {})}
    return (json.dumps(config, indent=2) + "\n").encode()


def sync_ui(s3, bucket: str, ui_dir: Path | None, api_url: str | None, ws_url: str | None = None):
    """Upload changed files, delete stale ones, write config.json. Returns (uploaded, deleted)."""
    existing = _existing_etags(s3, bucket)
    wanted: dict[str, tuple] = {}  # key -> (md5, bytes-or-path, content type)
    if ui_dir is not None:
        for p in sorted(ui_dir.rglob("*")):
            if p.is_file():
                key = p.relative_to(ui_dir).as_posix()
                wanted[key] = (_md5(p), p, _content_type(key))
    if api_url is not None:
        body = ui_config(api_url, ws_url)
        wanted["config.json"] = (hashlib.md5(body).hexdigest(), body, "application/json; charset=utf-8")
    if ui_dir is None and "index.html" not in existing:
        wanted["index.html"] = (hashlib.md5(PLACEHOLDER_HTML).hexdigest(), PLACEHOLDER_HTML, "text/html; charset=utf-8")
    uploaded, deleted = [], []
    for key, (md5, src, ctype) in wanted.items():
        if existing.get(key) == md5:
            continue
        body = src.read_bytes() if isinstance(src, Path) else src
        cache = "no-cache" if key in ("index.html", "config.json") else "public, max-age=300"
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=ctype, CacheControl=cache)
        uploaded.append(key)
    if ui_dir is not None:
        stale = [k for k in existing if k not in wanted and k != "config.json"]
        for i in range(0, len(stale), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in stale[i : i + 1000]]})
        deleted = stale
    return uploaded, deleted


# --------------------------------------------------------------------------- the app's schedule
FALLBACK_SCHEDULE = "rate(1 minute)"


def app_schedule(prefer: str = "sweep", stage: str = "local") -> str | None:
    """The sweeper's schedule expression as the app declares it, read by the scheduler's own reader.

    The first schedule whose name contains ``prefer`` wins, else the first; None when there is none.
    """
    try:
        found = scheduler.declared(stage=stage)
    except scheduler.SchedulerError as e:
        raise DeployError(f"cannot read the app's schedules: {e}") from None
    for name, expression in found:
        if prefer in name:
            return expression
    return found[0][1] if found else None


# --------------------------------------------------------------------------- deploy
_TAGS = [{"Key": "project", "Value": "hostchecker"}]


def _check_inputs(secrets: dict, ui_dir) -> Path | None:
    for name, val in secrets.items():
        if not val:
            raise DeployError(f"{name} is empty; pass it (or set {name.upper()} in the environment)")
    if ui_dir is None:
        return None
    if not (Path(ui_dir) / "index.html").is_file():
        raise DeployError(f"--ui-dir {ui_dir} has no index.html (build the UI first)")
    return Path(ui_dir)


def _parameters(secrets: dict, *, stage, bucket, sweeper_schedule) -> list:
    params = {
        "Stage": stage,
        "UiBucketName": bucket,
        "RegistrationToken": _json_escape(secrets["registration_token"]),
        "AdminToken": _json_escape(secrets["admin_token"]),
        "DatabaseUrl": _json_escape(secrets["database_url"]),
        "RedisUrl": _json_escape(secrets["redis_url"]),
        "SweeperSchedule": sweeper_schedule,
    }
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()]


def _clear_failed(cfn, stack_name: str, timeout: float, log) -> dict | None:
    """The current stack; one that failed (and cannot be updated) is deleted first, then None."""
    stack = _wait_settled(cfn, stack_name, timeout)
    if stack is None or stack["StackStatus"] not in _RECREATE:
        return None if stack is None or stack["StackStatus"] == "DELETE_COMPLETE" else stack
    log(f"[deploy-local] stack {stack_name} is {stack['StackStatus']}; deleting and recreating")
    for _attempt in range(3):
        cfn.delete_stack(StackName=stack_name)
        stack = _wait_settled(cfn, stack_name, timeout)
        if stack is None or stack["StackStatus"] == "DELETE_COMPLETE":
            return None
    raise DeployError(
        f"could not delete the failed stack {stack_name} ({stack['StackStatus']}); "
        f"restart LocalStack (make down && make up)"
    )


def _create_or_update(cfn, stack_name: str, exists: bool, body: str, params: list, log) -> bool:
    """Create the stack, or update it; True when CloudFormation changed something."""
    from botocore.exceptions import ClientError

    if not exists:
        log(f"[deploy-local] creating CloudFormation stack {stack_name} from infra/local.yaml")
        cfn.create_stack(StackName=stack_name, TemplateBody=body, Parameters=params, Tags=_TAGS)
        return True
    try:
        cfn.update_stack(StackName=stack_name, TemplateBody=body, Parameters=params, Tags=_TAGS)
    except ClientError as e:
        if "No updates are to be performed" not in _err(e):
            raise
        log(f"[deploy-local] stack {stack_name} is up to date (no changes)")
        return False
    log(f"[deploy-local] updating CloudFormation stack {stack_name}")
    return True


def _settled_outputs(cfn, stack_name: str, changed: bool, timeout: float) -> tuple[str, dict]:
    stack = _wait_settled(cfn, stack_name, timeout)
    status = stack["StackStatus"] if stack else "MISSING"
    if status not in _OK or (changed and status == "UPDATE_ROLLBACK_COMPLETE"):
        raise DeployError(f"stack {stack_name} ended in {status}: {_failure_reason(cfn, stack_name)}")
    return status, {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def deploy(
    *,
    endpoint_url: str = DEFAULT_ENDPOINT,
    registration_token: str,
    admin_token: str,
    database_url: str,
    redis_url: str,
    api_url: str | None = None,
    ws_url: str | None = None,
    ui_dir=None,
    stack_name: str = DEFAULT_STACK,
    bucket: str = DEFAULT_BUCKET,
    stage: str = "local",
    sweeper_schedule: str | None = None,
    region: str = DEFAULT_REGION,
    timeout: float = 180.0,
    template=TEMPLATE,
    log=print,
) -> DeployResult:
    """Create or update the local stack; upload the UI when given. Raises DeployError.

    ``sweeper_schedule`` defaults to the schedule the app declares for its sweeper (app_schedule()).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    secrets = {
        "registration_token": registration_token,
        "admin_token": admin_token,
        "database_url": database_url,
        "redis_url": redis_url,
    }
    ui_path = _check_inputs(secrets, ui_dir)
    params = _parameters(
        secrets, stage=stage, bucket=bucket, sweeper_schedule=sweeper_schedule or app_schedule() or FALLBACK_SCHEDULE
    )
    cfn, s3 = _clients(endpoint_url, region)
    try:
        existing = _clear_failed(cfn, stack_name, timeout, log)
        changed = _create_or_update(cfn, stack_name, existing is not None, Path(template).read_text(), params, log)
        status, outputs = _settled_outputs(cfn, stack_name, changed, timeout)
        secret_name = outputs.get("AppSecretName", f"hostchecker/{stage}/app")
        _reconcile_secret(endpoint_url, region, secret_name, secrets, log)
        uploaded, deleted = sync_ui(s3, bucket, ui_path, api_url, ws_url)
    except ClientError as e:
        raise DeployError(f"LocalStack refused the deployment: {_err(e)}") from None
    except BotoCoreError as e:
        raise DeployError(f"cannot reach LocalStack at {endpoint_url}: {_err(e)} (start it: make up)") from None
    if uploaded or deleted:
        log(f"[deploy-local] UI: uploaded {len(uploaded)} file(s), removed {len(deleted)} stale")
    elif ui_path is not None or api_url is not None:
        log("[deploy-local] UI: unchanged")
    return DeployResult(
        stack_name=stack_name,
        stack_status=status,
        changed=changed,
        bucket=bucket,
        website_url=website_url(bucket, endpoint_url),
        path_url=path_url(bucket, endpoint_url),
        reported_website_url=outputs.get("UiWebsiteUrl", ""),
        secret_name=secret_name,
        secret_arn=outputs.get("AppSecretArn", ""),
        sweeper_rule_arn=outputs.get("SweeperRuleArn", ""),
        uploaded=uploaded,
        deleted=deleted,
    )
