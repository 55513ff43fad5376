"""One typed settings object, read lazily (DESIGN §1 Lambda rules).

Sources, in order of precedence:
1. the stage's secret in Secrets Manager (`HC_SECRET_NAME`, JSON with
   registration_token, admin_token, database_url, redis_url), read through
   Powertools Parameters and cached; on the `local` stage this is LocalStack;
2. the environment (`HC_*`, `DATABASE_URL`, `REDIS_URL`).

On the `local` stage an unreachable LocalStack is not fatal: the environment
is used, and that is logged once. On `dev`/`prod` a missing secret is fatal.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field, fields, replace

from .protocol import HEARTBEAT_TTL_S, VERSION

SERVICE = "host-checker"

log = logging.getLogger(__name__)


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    stage: str = "local"
    database_url: str = ""
    redis_url: str = ""
    registration_token: str = ""
    admin_token: str = ""
    allow_private_targets: bool = False
    checks_per_hour: int = 100  # POST /api/checks per client IP
    requests_per_minute: int = 600  # every other route, per client IP
    retention_days: int = 30
    public_list: bool = True  # GET /api/checks for anyone; off (admin token only) on prod
    heartbeat_ttl_s: int = HEARTBEAT_TTL_S
    max_body_bytes: int = 64 * 1024
    cors_origin: str = "*"
    secret_name: str = ""
    aws_endpoint_url: str = ""  # LocalStack on the local stage; one place only
    ws_management_url: str = ""  # the WebSocket API's @connections endpoint (https://.../stage)
    metrics_cidrs: str = ""  # comma-separated CIDRs that may scrape GET /metrics without a token
    config_source: str = "environment"
    version: str = VERSION
    extra: dict = field(default_factory=dict, compare=False)


_ENV_MAP = {
    "stage": "HC_STAGE",
    "database_url": "DATABASE_URL",
    "redis_url": "REDIS_URL",
    "registration_token": "REGISTRATION_TOKEN",
    "admin_token": "ADMIN_TOKEN",
    "allow_private_targets": "ALLOW_PRIVATE_TARGETS",
    "checks_per_hour": "HC_CHECKS_PER_HOUR",
    "requests_per_minute": "HC_REQUESTS_PER_MINUTE",
    "retention_days": "HC_RETENTION_DAYS",
    "public_list": "HC_PUBLIC_LIST",
    "heartbeat_ttl_s": "HC_HEARTBEAT_TTL_S",
    "max_body_bytes": "HC_MAX_BODY_BYTES",
    "cors_origin": "HC_CORS_ORIGIN",
    "secret_name": "HC_SECRET_NAME",
    "aws_endpoint_url": "AWS_ENDPOINT_URL",
    "ws_management_url": "HC_WS_MANAGEMENT_URL",
    "metrics_cidrs": "HC_METRICS_CIDRS",
}
_SECRET_KEYS = ("registration_token", "admin_token", "database_url", "redis_url")


def _from_environment() -> Settings:
    values = {}
    for f in fields(Settings):
        env = _ENV_MAP.get(f.name)
        if env is None or os.environ.get(env) in (None, ""):
            continue
        raw = os.environ[env]
        if f.type == "bool":
            values[f.name] = _bool(raw)
        elif f.type == "int":
            try:
                values[f.name] = int(raw)
            except ValueError:
                raise RuntimeError(f"configuration error: {env} must be an integer, got {raw!r}") from None
        else:
            values[f.name] = raw
    return Settings(**values)


def boto3_client(service: str, settings: Settings | None = None, *, endpoint_url: str | None = None, config=None):
    """Every AWS client is made here, so the LocalStack endpoint lives in one place.

    `settings` is passed while the settings themselves are being built (the secret is read
    with a client), so nothing half-built is ever published for others to read.
    `endpoint_url` is for services that have their own (the WebSocket API's management API).
    """
    import boto3

    settings = settings or get_settings()
    kwargs = {}
    if endpoint_url or settings.aws_endpoint_url:
        kwargs["endpoint_url"] = endpoint_url or settings.aws_endpoint_url
    if config is not None:
        kwargs["config"] = config
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return boto3.session.Session().client(service, region_name=region, **kwargs)


def _apply_secret(settings: Settings) -> Settings:
    if not settings.secret_name:
        return settings
    try:
        from aws_lambda_powertools.utilities import parameters

        client = boto3_client("secretsmanager", settings)
        provider = parameters.SecretsProvider(boto3_client=client)
        secret = provider.get(settings.secret_name, transform="json", max_age=300)
    except Exception as exc:  # LocalStack down, secret missing, no credentials
        if settings.stage in ("local", "test"):
            log.warning(
                "config: secret %s unavailable (%s); using the environment", settings.secret_name, type(exc).__name__
            )
            return settings
        raise RuntimeError(f"configuration error: cannot read secret {settings.secret_name}: {exc}") from exc
    updates = {k: secret[k] for k in _SECRET_KEYS if isinstance(secret, dict) and secret.get(k)}
    return replace(settings, config_source=f"secretsmanager:{settings.secret_name}", **updates)


_lock = threading.Lock()
_settings: Settings | None = None


def get_settings() -> Settings:
    """The settings, built once and published complete: a thread that finds `_settings`
    set without taking the lock only ever sees the finished object."""
    global _settings
    if _settings is None:
        with _lock:
            if _settings is None:
                _settings = _refuse_unsafe(_apply_secret(_from_environment()))
    return _settings


def reset_settings(**overrides) -> Settings:
    """Forget the cached settings (tests); optional overrides on top of a fresh read."""
    global _settings
    with _lock:
        settings = _apply_secret(_from_environment())
        _settings = _refuse_unsafe(replace(settings, **overrides) if overrides else settings)
    return _settings


# Stages on which the target policy must hold: probing private ranges from production
# agents' API is exactly the SSRF the policy exists to stop.
STRICT_STAGES = ("prod",)


def _refuse_unsafe(settings: Settings) -> Settings:
    """Settings that must never run: refused when they are first read, logged as critical,
    so every request fails (a 500, no traceback) rather than serve with the guard off."""
    if settings.stage in STRICT_STAGES and settings.allow_private_targets:
        message = (
            f"configuration error: ALLOW_PRIVATE_TARGETS is true on the {settings.stage!r} stage, "
            "where private targets are never allowed; unset it"
        )
        log.critical(message)
        raise RuntimeError(message)
    from .targets import UnsafePolicy, test_public_networks

    try:
        test_public_networks(stage=settings.stage)
    except UnsafePolicy as exc:
        message = f"configuration error: {exc}"
        log.critical(message)
        raise RuntimeError(message) from None
    return settings
