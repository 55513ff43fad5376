"""Redis: per-agent task streams, heartbeats and the per-check pub/sub channel (DESIGN §4).

Everything here can be rebuilt from PostgreSQL. The client is created lazily
and reused across warm invocations; nothing connects at import time.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

from .config import get_settings
from .metrics import Batch
from .protocol import STREAM_GROUP, TaskMessage, check_channel, heartbeat_key, task_stream_key

log = logging.getLogger(__name__)

RedisError = redis.RedisError

_client: redis.Redis | None = None
_client_url: str | None = None
_lock = threading.Lock()


class QueueUnavailable(RuntimeError):
    """Redis cannot be reached."""


def get_redis() -> redis.Redis:
    """The client for the configured URL (a changed URL, in tests, gets a new one)."""
    global _client, _client_url
    url = get_settings().redis_url
    if _client is None or _client_url != url:
        with _lock:
            if _client is None or _client_url != url:
                if not url:
                    raise QueueUnavailable("REDIS_URL is not configured")
                _client = redis.Redis.from_url(
                    url,
                    decode_responses=True,
                    socket_timeout=5,
                    socket_connect_timeout=3,
                    health_check_interval=30,
                    retry_on_timeout=False,
                )
                _client_url = url
    return _client


def ping() -> bool:
    try:
        return bool(get_redis().ping())
    except (RedisError, QueueUnavailable, OSError):
        return False


def _is_busygroup(result: Any) -> bool:
    return isinstance(result, redis.ResponseError) and str(result).startswith("BUSYGROUP")


def ensure_group(agent_id: str) -> None:
    """The agent's stream and its consumer group (created at registration)."""
    try:
        get_redis().xgroup_create(task_stream_key(agent_id), STREAM_GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if not _is_busygroup(exc):
            raise


def enqueue(messages: list[TaskMessage], metrics: Batch | None = None, ensure_groups: bool = False) -> dict[str, str]:
    """Push tasks onto their agents' streams in ONE round trip: an XADD per task, and
    `metrics` (what the caller counts) at the pipeline's end. Returns {task_id: stream entry id}.

    A new check's fan-out sends no XGROUP CREATE (it was one error reply per agent per check,
    a fifth of the pipeline at 100 agents): registration creates each agent's group, and an
    agent that finds its group gone creates it again from id 0, so entries XADDed meanwhile
    are still read (agent/queue.py `_with_group`). The pushes that repair a loss (`redispatch`,
    after Redis came back empty) pass `ensure_groups` and (re)create the groups first in the
    same pipeline (BUSYGROUP is expected and ignored).
    """
    if not messages:
        return {}
    pipe = get_redis().pipeline(transaction=False)
    agents = sorted({m.agent_id for m in messages}) if ensure_groups else []
    for agent_id in agents:
        pipe.xgroup_create(task_stream_key(agent_id), STREAM_GROUP, id="0", mkstream=True)
    for message in messages:
        pipe.xadd(task_stream_key(message.agent_id), message.to_fields())
    if metrics:
        metrics.add_to(pipe)
    results = pipe.execute(raise_on_error=False)
    for result in results[: len(agents)]:
        if isinstance(result, Exception) and not _is_busygroup(result):
            raise result
    ids: dict[str, str] = {}
    for message, result in zip(messages, results[len(agents) : len(agents) + len(messages)], strict=True):
        if isinstance(result, Exception):
            log.warning("enqueue of task %s failed: %s", message.task_id, result)
            continue
        ids[message.task_id] = result
    return ids


def missing_entries(entries: list[tuple[str, str]]) -> set[str]:
    """Of (agent_id, stream_id) pairs, the stream ids no longer in their stream (one round trip)."""
    if not entries:
        return set()
    pipe = get_redis().pipeline(transaction=False)
    for agent_id, stream_id in entries:
        pipe.xrange(task_stream_key(agent_id), min=stream_id, max=stream_id, count=1)
    results = pipe.execute(raise_on_error=False)
    return {
        stream_id
        for (_, stream_id), found in zip(entries, results, strict=True)
        if not isinstance(found, Exception) and not found
    }


def delete_entries(entries: Iterable[tuple[str, str]]) -> None:
    pipe = get_redis().pipeline(transaction=False)
    count = 0
    for agent_id, stream_id in entries:
        pipe.xdel(task_stream_key(agent_id), stream_id)
        count += 1
    if count:
        pipe.execute(raise_on_error=False)


def trim_streams(agent_ids: Iterable[str], older_than_ms: int) -> int:
    """Drop stream entries older than `older_than_ms` (epoch ms): their tasks are long terminal."""
    pipe = get_redis().pipeline(transaction=False)
    n = 0
    for agent_id in agent_ids:
        pipe.xtrim(task_stream_key(agent_id), minid=f"{older_than_ms}-0", approximate=False)
        n += 1
    if not n:
        return 0
    return sum(r for r in pipe.execute(raise_on_error=False) if isinstance(r, int))


def set_heartbeat(agent_id: str, payload: dict[str, Any], ttl_s: int, metrics: Batch | None = None) -> bool:
    """Set the heartbeat key for `ttl_s`. Returns whether the previous one was still there: False
    after a silence past the TTL, or when Redis lost its data (restarted empty, flushed), and with
    it the agent's stream entries (fanout.dispatch_for_agent looks for them then)."""
    pipe = get_redis().pipeline(transaction=False)
    pipe.set(heartbeat_key(agent_id), json.dumps(payload, separators=(",", ":")), ex=ttl_s, get=True)
    if metrics:
        metrics.add_to(pipe)
    return pipe.execute()[0] is not None


# For each agent, KEYS holding its heartbeat key then its task stream: whether the heartbeat is
# there, and how long the stream's oldest entry not yet delivered to the group (ARGV[1]) has waited,
# in ms by Redis's clock (stream ids are Redis ms). That entry is the first after the group's
# last-delivered-id; XINFO's `lag` cannot say, as it is undetermined once entries were XDELed.
# A stream or group that is missing has waited 0.
_AGENT_STATE_LUA = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i = 1, #KEYS, 2 do
  local wait = 0
  local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[i + 1])
  if ok then
    for _, g in ipairs(groups) do
      local name, last
      for j = 1, #g, 2 do
        if g[j] == 'name' then name = g[j + 1] elseif g[j] == 'last-delivered-id' then last = g[j + 1] end
      end
      if name == ARGV[1] and last then
        local first = redis.call('XRANGE', KEYS[i + 1], '(' .. last, '+', 'COUNT', 1)
        if #first > 0 then
          wait = math.max(0, now_ms - tonumber(string.match(first[1][1], '^(%d+)')))
        end
      end
    end
  end
  out[#out + 1] = redis.call('EXISTS', KEYS[i])
  out[#out + 1] = wait
end
return out
"""
_agent_state_script = None


@dataclass(frozen=True)
class AgentState:
    beating: bool  # its heartbeat key is there: a heartbeat within the TTL
    queue_wait_s: float  # how long its oldest unread task has waited; 0 for an agent keeping up


def agent_states(agent_ids: list[str]) -> dict[str, AgentState]:
    """Each agent's heartbeat presence and queue wait, for the fan-out (ONE round trip). An agent
    that keeps up has no wait: it reads new entries as soon as it has a free slot."""
    global _agent_state_script
    if not agent_ids:
        return {}
    r = get_redis()
    if _agent_state_script is None or _agent_state_script.registered_client is not r:
        _agent_state_script = r.register_script(_AGENT_STATE_LUA)
    keys = [key for a in agent_ids for key in (heartbeat_key(a), task_stream_key(a))]
    flat = _agent_state_script(keys=keys, args=[STREAM_GROUP])
    return {a: AgentState(bool(flat[2 * i]), int(flat[2 * i + 1]) / 1000) for i, a in enumerate(agent_ids)}


def queue_waits_s(agent_ids: list[str]) -> dict[str, float]:
    """{agent_id: seconds its oldest unread task has waited} (`agent_states`)."""
    return {a: state.queue_wait_s for a, state in agent_states(agent_ids).items()}


def publish(check_id: str, event: dict[str, Any], metrics: Batch | None = None) -> None:
    """Publish a task/check event on `hc:check:{id}`, with `metrics` in the same round trip.
    Best effort: Redis being down never fails a write."""
    publish_many([(check_id, event, metrics)])


def publish_many(events: list[tuple[str, dict[str, Any], Batch | None]]) -> None:
    """`publish` for several events, in order, in ONE round trip (a batch of 100 results is 200
    events: one pipeline, not 200)."""
    # The WebSocket subscribers that are ready (chalicelib/live.py; imported here, as live imports this
    # module) are read in the same round trip, when live updates are pushed at all.
    from . import live

    if not events:
        return
    pushing = live.enabled()
    ready: list = [None] * len(events)  # each check's ready WebSocket connections (None: not read)
    try:
        pipe = get_redis().pipeline(transaction=False)
        for check_id, event, _ in events:
            pipe.publish(check_channel(check_id), json.dumps(event, separators=(",", ":"), default=str))
            if pushing:
                live.read_ready(pipe, check_id)
        counted = Batch()  # one HINCRBY per field for the lot, however many tasks counted it
        for _, _, metrics in events:
            if metrics is not None:
                counted.merge(metrics)
        counted.add_to(pipe)
        results = pipe.execute()
        if pushing:
            ready = [results[2 * i + 1] for i in range(len(events))]
    except (RedisError, QueueUnavailable, OSError) as exc:
        log.warning("publish of %d event(s) on %s failed: %s", len(events), check_channel(events[0][0]), exc)
    for (check_id, event, _), connections in zip(events, ready, strict=True):
        live.on_event(check_id, event, connections)
