"""Per-client-IP rate limits in Redis: fixed windows, counted atomically by one Lua call.

The window key carries the window's number (`hc:rl:{bucket}:{ip}:{n}`), so a new
window is a new key; `clock` can be replaced in tests to move between windows
without sleeping.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from . import metrics
from .queue import QueueUnavailable, RedisError, get_redis

log = logging.getLogger(__name__)

clock = time.time  # replaced in tests

# INCR and set the expiry in one atomic step; returns the count after this hit. A refused
# hit is counted in the metrics hash (KEYS[2]) by the same call (chalicelib/metrics.py).
_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if n > tonumber(ARGV[2]) then redis.call('HINCRBY', KEYS[2], ARGV[3], 1) end
return n
"""
_script = None
# DECR only a window still there: a DECR of an expired key would make one with no expiry.
_GIVE_BACK_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('DECR', KEYS[1])
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # seconds until the window resets
    key: str | None = None  # the window's counter; None when Redis was not reached

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_s)
        return headers


def hit(bucket: str, client: str, limit: int, window_s: int) -> Decision:
    """Count one request by `client` in `bucket`. Fails open (allowed) when Redis is down."""
    global _script
    now = clock()
    window = int(now // window_s)
    reset_s = max(1, math.ceil((window + 1) * window_s - now))
    key = f"hc:rl:{bucket}:{client}:{window}"
    try:
        r = get_redis()
        if _script is None or _script.registered_client is not r:
            _script = r.register_script(_LUA)
        count = int(
            _script(
                keys=[key, metrics.KEY],
                args=[window_s + 1, limit, metrics.counter_field("rate_limited_total", (bucket,))],
            )
        )
    except (RedisError, QueueUnavailable, OSError) as exc:
        log.warning("rate limit %s not enforced, Redis unavailable: %s", bucket, exc)
        return Decision(True, limit, limit, reset_s)
    if count > limit:
        metrics.Batch().inc("rate_limited_total", (bucket,)).emit()
    return Decision(count <= limit, limit, max(0, limit - count), reset_s, key)


def give_back(decision: Decision) -> Decision:
    """Undo an allowed `hit` whose request was then refused for a cause not the client's (503
    `agents_busy`): the quota counts only what was served. Returns the decision as it now stands,
    for its headers. Best effort: Redis down leaves the hit counted."""
    if not decision.allowed or decision.key is None:
        return decision
    try:
        count = int(get_redis().eval(_GIVE_BACK_LUA, 1, decision.key))
    except (RedisError, QueueUnavailable, OSError) as exc:
        log.warning("rate limit hit not given back, Redis unavailable: %s", exc)
        return decision
    return Decision(True, decision.limit, max(0, decision.limit - count), decision.reset_s, decision.key)


def client_ip(source_ip: str | None, forwarded_for: str | None) -> str:
    """The client's address: API Gateway's `sourceIp`, unless that is a proxy on a private
    address (chalice local, a local reverse proxy); then the first X-Forwarded-For hop.

    Under API Gateway `sourceIp` is the real peer, and the first X-Forwarded-For hop
    is whatever the client wrote, so it is only trusted behind a private hop.
    """
    import ipaddress

    def parse(value: str | None):
        try:
            return ipaddress.ip_address((value or "").strip())
        except ValueError:
            return None

    source = parse(source_ip)
    if source is not None and source.is_global:
        return str(source)
    if forwarded_for:
        first = parse(forwarded_for.split(",")[0])
        if first is not None:
            return str(first)
    return str(source) if source is not None else "unknown"
