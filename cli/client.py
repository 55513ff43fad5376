"""The HTTP side: one `requests` session (proxies, CA bundle and TLS verification follow
requests' own conventions: HTTPS_PROXY, REQUESTS_CA_BUNDLE, ...), and the mapping of
every answer that is not a success to an error with its exit code."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from .errors import ApiUnreachable, CliError, RateLimited, UsageError

CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30
USER_AGENT = "hostchecker-cli"


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: Any


def describe_error(body: Any) -> str:
    """The API's error shape as one line: its message, then each field's own message."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ""
    message = str(error.get("message") or error.get("code") or "")
    fields = [
        f"{d['field']}: {d['message']}"
        for d in error.get("details") or []
        if isinstance(d, dict) and d.get("field") and d.get("message") and d["message"] not in message
    ]
    return "; ".join([message, *fields]) if fields else message


def error_for(reply: Reply, what: str) -> CliError:
    """The CliError an unsuccessful reply stands for (exit 2, 3 or 4)."""
    detail = describe_error(reply.body) or f"HTTP {reply.status}"
    if reply.status == 429:
        wait = reply.headers.get("Retry-After") or reply.headers.get("X-RateLimit-Reset")
        wait_s = int(wait) if wait and wait.isdigit() else None
        suffix = "" if wait_s is None or "retry in" in detail else f"; retry in {wait_s} s"
        return RateLimited(f"rate limited: {detail}{suffix}", wait_s)
    if reply.status >= 500:
        wait = reply.headers.get("Retry-After") if reply.status == 503 else None
        suffix = f"; retry in {wait} s" if wait and wait.isdigit() and "retry" not in detail else ""
        return ApiUnreachable(f"the API failed to {what} (HTTP {reply.status}): {detail}{suffix}")
    return UsageError(detail if describe_error(reply.body) else f"cannot {what}: {detail}")


class Api:
    def __init__(self, base_url: str, session: requests.Session | None = None):
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", USER_AGENT)
        self.last_headers: Mapping[str, str] = {}

    def request(self, method: str, path: str, what: str, **kwargs) -> Reply:
        url = f"{self.base_url}{path}"
        try:
            response = self.session.request(method, url, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S), **kwargs)
        except requests.exceptions.SSLError as exc:
            raise ApiUnreachable(f"cannot reach the API at {self.base_url}: TLS failed ({_reason(exc)})") from None
        except requests.RequestException as exc:
            raise ApiUnreachable(f"cannot reach the API at {self.base_url}: {_reason(exc)}") from None
        try:
            body = response.json() if response.content else None
        except ValueError:
            raise ApiUnreachable(
                f"{url} answered HTTP {response.status_code} with something that is not "
                "JSON: is that the Host Checker API?"
            ) from None
        reply = Reply(response.status_code, response.headers, body)  # case-insensitive
        self.last_headers = reply.headers
        if reply.status >= 400:
            raise error_for(reply, what)
        return reply

    def get(self, path: str, what: str, **params) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, what, params=clean or None).body

    def create_check(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/api/checks", "create the check", json=body).body

    def check(self, check_id: str) -> dict[str, Any]:
        return self.get(f"/api/checks/{check_id}", "read the check")

    def agents(self) -> list[dict[str, Any]]:
        return self.get("/api/agents", "list the agents")["items"]


def _reason(exc: Exception) -> str:
    """The innermost cause of a requests error, without urllib3's object reprs."""
    text = str(exc)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "timed out",
        "No route to host",
        "Temporary failure in name resolution",
        "certificate verify failed",
    ):
        if marker in text:
            return marker.lower() if marker != "Connection refused" else "connection refused"
    return text.split(": ", 1)[-1][:200] if text else type(exc).__name__
