"""Logs, metrics and traces with aws-lambda-powertools.

- Logger: JSON lines; every line of a request carries `correlation_id`, the
  API Gateway request id (a fresh id under `chalice local`, which has none).
- Metrics: CloudWatch EMF, flushed at the end of each request and each sweep. The
  events GET /metrics counts (chalicelib/metrics.py) go out under the same names
  (hostchecker_checks_total, hostchecker_tasks_total, ...); `with_cold_start` adds
  Powertools' ColdStart metric; a few operational ones (AgentsOnline, LivePush*) too.
- Tracer: X-Ray, only when tracing is on (in Lambda, unless POWERTOOLS_TRACE_DISABLED). With it
  off, `tracer` is a stand-in whose decorators return the function as it is, and the X-Ray SDK
  (more than half of `import app`, botocore included) is never imported.

Nothing here connects anywhere; EMF is just structured stdout.
"""

from __future__ import annotations

import logging
import os
import uuid
import warnings

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from .config import SERVICE

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "HostChecker")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def tracing_enabled(environ=os.environ) -> bool:
    """Powertools' own rule (Tracer._is_tracer_disabled): on inside Lambda only, and not under
    SAM or chalice local, unless POWERTOOLS_TRACE_DISABLED says otherwise."""
    if environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in ("1", "true", "yes", "on", "y", "t"):
        return False
    in_lambda = bool(environ.get("LAMBDA_TASK_ROOT"))
    return in_lambda and not (environ.get("AWS_SAM_LOCAL") or environ.get("AWS_CHALICE_CLI_MODE"))


class NoTracer:
    """What `tracer` is with tracing off: its decorators hand the function back untouched."""

    def capture_method(self, method=None, **_options):
        return method if method is not None else (lambda fn: fn)

    def capture_lambda_handler(self, handler=None, **_options):
        return handler if handler is not None else (lambda fn: fn)


def _tracer():
    if not tracing_enabled():
        return NoTracer()
    from aws_lambda_powertools import Tracer  # imports the X-Ray SDK

    return Tracer(service=SERVICE)


tracer = _tracer()

# chalicelib modules log through the standard library; route them into the
# Powertools handler so they share the JSON format and the correlation id.
_std = logging.getLogger("chalicelib")
_std.setLevel(logger.log_level)
_std.propagate = False
for _handler in logger.handlers:
    _std.addHandler(_handler)


def count(name: str, value: float = 1, unit=MetricUnit.Count) -> None:
    metrics.add_metric(name=name, unit=unit, value=value)


def gauge(name: str, value: float) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def flush() -> None:
    """Emit the metrics gathered so far (nothing when there are none)."""
    if metrics.metric_set:
        try:
            metrics.flush_metrics()
        except Exception:  # a metrics problem must never fail a request
            logger.exception("metrics flush failed")


# with_cold_start flushes after every handler; most requests count nothing, which is no news.
warnings.filterwarnings("ignore", message="No application metrics to publish")


def with_cold_start(handler, event, context):
    """Run `handler(event)` under Powertools' own handler decorator, which emits its
    `ColdStart` metric (dimension function_name) on an instance's first invocation and
    flushes the metrics gathered when the handler returns."""
    if context is None:  # a handler called directly (tests): no Lambda instance to speak of
        return handler(event)
    decorated = metrics.log_metrics(capture_cold_start_metric=True)(lambda e, _ctx: handler(e))
    return decorated(event, context)


def request_id(context: dict | None, headers) -> str:
    """The API Gateway request id, else a caller's X-Request-Id, else a new one."""
    rid = (context or {}).get("requestId")
    if not rid and headers is not None:
        rid = headers.get("x-request-id")
    if not rid or len(rid) > 128:
        rid = str(uuid.uuid4())
    return rid


def start_request(rid: str) -> None:
    logger.set_correlation_id(rid)


def end_request() -> None:
    flush()
    logger.set_correlation_id(None)
