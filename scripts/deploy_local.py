"""Deploy infra/local.yaml to a running LocalStack (scripts/localcloud/cloudformation.py)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from scripts.localcloud.cloudformation import (
    DEFAULT_BUCKET,
    DEFAULT_ENDPOINT,
    DEFAULT_REGION,
    DEFAULT_STACK,
    FALLBACK_SCHEDULE,
    STANDINS_NOTE,
    DeployError,
    app_schedule,
    deploy,
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m scripts.deploy_local",
        description="Deploy infra/local.yaml (S3 UI website, secret, sweeper rule) to "
        "LocalStack via CloudFormation. Idempotent. " + STANDINS_NOTE,
    )
    env = os.environ.get
    p.add_argument(
        "--endpoint-url",
        default=env("AWS_ENDPOINT_URL", DEFAULT_ENDPOINT),
        help="LocalStack endpoint (default: $AWS_ENDPOINT_URL or %(default)s)",
    )
    p.add_argument("--stack-name", default=DEFAULT_STACK)
    p.add_argument("--bucket", default=DEFAULT_BUCKET, help="UI bucket name")
    p.add_argument("--stage", default="local")
    p.add_argument("--region", default=env("AWS_DEFAULT_REGION", DEFAULT_REGION))
    p.add_argument("--registration-token", default=env("REGISTRATION_TOKEN"), help="default: $REGISTRATION_TOKEN")
    p.add_argument("--admin-token", default=env("ADMIN_TOKEN"), help="default: $ADMIN_TOKEN")
    p.add_argument("--database-url", default=env("DATABASE_URL"), help="default: $DATABASE_URL")
    p.add_argument("--redis-url", default=env("REDIS_URL"), help="default: $REDIS_URL")
    p.add_argument(
        "--api-url", default=None, help='API base URL; also written to the bucket as config.json {"apiUrl": ...}'
    )
    p.add_argument(
        "--ws-url",
        default=env("WS_URL") or None,
        help="WebSocket URL for live results, written to config.json as wsUrl (default: $WS_URL)",
    )
    p.add_argument("--ui-dir", default=None, help="built UI to upload (e.g. frontend/dist); only changes go up")
    p.add_argument(
        "--sweeper-schedule",
        default=None,
        help="schedule of the sweeper rule (default: what app.py declares with @app.schedule)",
    )
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the stack")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    return p


def _report(res, stage: str, schedule: str) -> None:
    print(f"[deploy-local] stack {res.stack_name}: {res.stack_status} ({'changed' if res.changed else 'no changes'})")
    print(
        f"[deploy-local] secret {res.secret_name}; EventBridge rule hostchecker-{stage}-sweeper ({schedule}, no target)"
    )
    print(f"[deploy-local] UI website (browser/curl): {res.website_url}")
    print(f"[deploy-local] UI path-style (any client): {res.path_url}")
    print(f"[deploy-local] note: {STANDINS_NOTE}")


def main(argv=None) -> int:
    a = _parser().parse_args(argv)
    missing = [n for n in ("registration_token", "admin_token", "database_url", "redis_url") if not getattr(a, n)]
    if missing:
        print(
            "deploy-local: missing "
            + ", ".join("--" + m.replace("_", "-") for m in missing)
            + " (or the same names in UPPER_CASE in the environment; `make deploy-local` reads them from"
            " .local/stack.env, which `make up` writes)",
            file=sys.stderr,
        )
        return 2
    log = (lambda m: print(m, file=sys.stderr)) if a.json else print
    try:
        a.sweeper_schedule = a.sweeper_schedule or app_schedule() or FALLBACK_SCHEDULE
        res = deploy(
            endpoint_url=a.endpoint_url,
            registration_token=a.registration_token,
            admin_token=a.admin_token,
            database_url=a.database_url,
            redis_url=a.redis_url,
            api_url=a.api_url,
            ws_url=a.ws_url,
            ui_dir=a.ui_dir,
            stack_name=a.stack_name,
            bucket=a.bucket,
            stage=a.stage,
            sweeper_schedule=a.sweeper_schedule,
            region=a.region,
            timeout=a.timeout,
            log=log,
        )
    except DeployError as e:
        print(f"deploy-local: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if a.json:
        print(json.dumps(res.as_dict(), indent=2))
    else:
        _report(res, a.stage, a.sweeper_schedule)
    return 0


if __name__ == "__main__":
    sys.exit(main())
