"""HTTP client for the Host Checker API (DESIGN §5), as the agent sees it.

Every failure is classified, because the runner acts on the class, not on
the status code:
- `ApiUnavailable`: connection error, timeout, 5xx or 429. Try again later
  (the result goes to the spool meanwhile).
- `ApiUnauthorized`: 401. The stored token is no longer valid; the client
  asks its `reauthenticate` hook for a new one once and repeats the call.
- `ApiRejected`: any other 4xx. The request will never be accepted as is.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, ProtocolError, ProxyError, SSLError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from agent.encoding import dumps

log = logging.getLogger("agent.api")


CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 15.0
# A heartbeat is small and must not hang on an API that accepts but does not answer:
# the next attempt is the better bet (agent/heartbeat.py).
HEARTBEAT_TIMEOUT_S = (3.0, 5.0)


class ApiError(Exception):
    def __init__(self, status: int | None, code: str, message: str, retry_after: float | None = None):
        super().__init__(f"{message} ({code}, HTTP {status})" if status else f"{message} ({code})")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class ApiUnavailable(ApiError):
    """Retry later: the API did not answer, failed (5xx) or asked us to slow down (429)."""


class ApiRejected(ApiError):
    """A 4xx other than 401/429: repeating the same request will not help."""


class ApiUnauthorized(ApiRejected):
    """401: the token was not accepted."""


def backoff_delays(base: float = 0.5, cap: float = 30.0):
    """Exponential backoff with full jitter: 0.5, 1, 2, 4 ... capped, each randomised.

    Jitter keeps a fleet of agents from retrying in lockstep after an outage.
    """
    delay = base
    while True:
        yield random.uniform(delay / 2, delay)
        delay = min(cap, delay * 2)


def retry_delay(delays, retry_after: float | None, cap: float) -> float:
    """The next backoff delay, or the API's Retry-After if longer, but only up to `cap`: a caller
    that must wait longer spools instead."""
    return min(cap, max(next(delays), retry_after or 0))


def with_retries(
    call: Callable[[], Any],
    attempts: int,
    stop: threading.Event | None = None,
    base: float = 0.25,
    cap: float = 5.0,
    what: str = "request",
):
    """Run `call`, retrying ApiUnavailable up to `attempts` times in all.

    Raises the last ApiUnavailable when attempts run out (or `stop` is set);
    other errors propagate at once.
    """
    delays = backoff_delays(base, cap)
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except ApiUnavailable as exc:
            if attempt == attempts or (stop is not None and stop.is_set()):
                raise
            delay = retry_delay(delays, exc.retry_after, cap)
            log.debug("%s failed (%s); retry %d/%d in %.2f s", what, exc, attempt, attempts - 1, delay)
            if stop is not None:
                stop.wait(delay)
            else:
                time.sleep(delay)


def environ_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (`<scheme>_proxy`, else `all_proxy`), unless
    `no_proxy` exempts its host: what requests' `get_environ_proxies` chose, read the same way."""
    proxies = urllib.request.getproxies_environment()
    parts = urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass_environment(parts.netloc, proxies):
        return None
    return proxies.get(parts.scheme) or proxies.get("all") or None


class ApiClient:
    """Thread-safe: one urllib3 pool of keep-alive connections, shared by the agent's threads.

    urllib3 itself, not requests over it: requests' session machinery (hooks, cookies, environment
    merging, redirect bookkeeping) was 13-17 % of the agent's CPU per task in the bench's profiles,
    and its modules 4 MB of the agent's memory (bench scenario 8). The environment's proxy is read
    once, here; HTTPS verifies against the system's CA store."""

    POOL_SIZE = 8  # keep-alive connections kept: the heartbeat, the delivery batcher, starts, the spool

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        registration_token: str | None = None,
        user_agent: str = "host-checker-agent",
    ):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.registration_token = registration_token
        self.user_agent = user_agent
        # Set by the runner: returns a new agent token (after re-registering) or None.
        self.reauthenticate: Callable[[str | None], str | None] | None = None
        # Set by the heartbeat: called whenever the API answers (any status under 500).
        self.on_answer: Callable[[], None] | None = None
        proxy = environ_proxy(self.base_url)
        # retries=False: this module retries by the error's class (with_retries); redirects are
        # not followed, so a 3xx is an ApiRejected that names its status.
        common = {"maxsize": self.POOL_SIZE, "retries": False}
        self._pool = urllib3.ProxyManager(proxy, **common) if proxy else urllib3.PoolManager(**common)

    def _request(
        self,
        method: str,
        path: str,
        body: dict | None,
        headers: dict[str, str],
        timeout: tuple[float, float] = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
    ) -> dict:
        url = f"{self.base_url}{path}"
        data = None
        headers = {"User-Agent": self.user_agent, **headers}
        if body is not None:  # compact JSON (agent/encoding.py): what agent/delivery.py sizes its batches by
            try:
                data = dumps(body)
            except (TypeError, ValueError) as exc:  # a value JSON has no form for, or a circular reference
                raise ApiUnavailable(None, "request_failed", f"{method} {path}: body is not JSON: {exc}") from None
            headers["Content-Type"] = "application/json"
        try:
            resp = self._pool.request(
                method,
                url,
                body=data,
                headers=headers,
                timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
            )
        # NewConnectionError (refused) is a ConnectTimeoutError in urllib3, so it is caught first.
        except (NewConnectionError, ProtocolError, ProxyError, SSLError, OSError):
            raise ApiUnavailable(None, "unreachable", f"{method} {path}: cannot connect") from None
        except Urllib3Timeout:
            raise ApiUnavailable(None, "timeout", f"{method} {path}: no answer in time") from None
        except HTTPError as exc:
            raise ApiUnavailable(
                None, "request_failed", f"{method} {path}: {type(exc).__name__}: {exc}"[:300]
            ) from None
        status = resp.status
        if status < 500 and self.on_answer is not None:
            self.on_answer()
        try:
            doc = orjson.loads(resp.data) if resp.data else {}
        except orjson.JSONDecodeError:
            doc = {}
        if 200 <= status < 300:
            return doc if isinstance(doc, dict) else {"value": doc}
        err = doc.get("error") if isinstance(doc, dict) and isinstance(doc.get("error"), dict) else {}
        code = str(err.get("code") or f"http_{status}")
        message = str(err.get("message") or resp.reason or "")
        retry_after = None
        if (resp.headers.get("Retry-After") or "").strip().isdigit():
            retry_after = min(300.0, float(resp.headers["Retry-After"]))
        if status >= 500 or status == 429:
            raise ApiUnavailable(status, code, message, retry_after)
        if status == 401:
            raise ApiUnauthorized(status, code, message)
        raise ApiRejected(status, code, message)

    def _agent_call(self, method: str, path: str, body: dict | None = None, **kwargs) -> dict:
        token = self.token
        try:
            return self._request(method, path, body, {"X-Agent-Token": token or ""}, **kwargs)
        except ApiUnauthorized:
            if self.reauthenticate is None:
                raise
            new_token = self.reauthenticate(token)
            if not new_token:
                raise
            return self._request(method, path, body, {"X-Agent-Token": new_token}, **kwargs)

    # -- the agent's endpoints -------------------------------------------------

    def register(
        self, name: str, location: str, region: str | None, version: str, capabilities: list[str], replace: bool = False
    ) -> dict:
        body: dict[str, Any] = {"name": name, "location": location, "version": version, "capabilities": capabilities}
        if region:
            body["region"] = region
        if replace:
            body["replace"] = True
        return self._request(
            "POST", "/api/agents/register", body, {"X-Registration-Token": self.registration_token or ""}
        )

    def heartbeat(
        self, current_tasks: int, version: str, capabilities: list[str], clock_offset_ms: float | None = None
    ) -> dict:
        body: dict[str, Any] = {"current_tasks": current_tasks, "version": version, "capabilities": capabilities}
        if clock_offset_ms is not None:
            body["clock_offset_ms"] = clock_offset_ms
        return self._agent_call("POST", "/api/agents/heartbeat", body, timeout=HEARTBEAT_TIMEOUT_S)

    def start_task(self, task_id: str) -> dict:
        return self._agent_call("POST", f"/api/tasks/{quote(task_id, safe='')}/start", {})

    def post_result(self, task_id: str, result: dict) -> dict:
        return self._agent_call("POST", f"/api/tasks/{quote(task_id, safe='')}/result", result)

    def post_results(self, results: list[dict], started: list[str] | tuple[str, ...] = ()) -> dict:
        """POST /api/tasks/results: `results` are `{task_id, <result fields>}`, at most 100, as are
        `started`; answers `{results: [{task_id, status, body}], started: [...]}` (docs/api.md)."""
        body: dict[str, Any] = {"results": results}
        if started:
            body["started"] = list(started)
        return self._agent_call("POST", "/api/tasks/results", body)
