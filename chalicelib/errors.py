"""Typed API errors and the one error shape (DESIGN §5).

Every error the API returns is `{"error": {"code", "message", "details": [{"field", "message"}]}}`.
Services raise these; app.py turns them into responses. Anything else is our
fault: it is logged with the correlation id and becomes a bare 500.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        details: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        code: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.details = list(details or [])
        if field is not None:
            self.details.insert(0, {"field": field, "message": message})
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})  # extra top-level keys next to "error"
        if code:
            self.code = code

    def body(self) -> dict[str, Any]:
        body = {"error": {"code": self.code, "message": self.message, "details": self.details}}
        body.update(self.extra)
        return body


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class ValidationFailed(BadRequest):
    code = "validation_error"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class RateLimited(ApiError):
    status = 429
    code = "rate_limited"


class AgentsBusy(ApiError):
    """Every agent that fits is too far behind on its queue; nothing was stored (Retry-After)."""

    status = 503
    code = "agents_busy"


def error_body(code: str, message: str, details: list | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": list(details or [])}}
