"""The agent's own task stream, `hc:tasks:{agent_id}` (DESIGN §4).

Read with a consumer group so that an entry taken but not acknowledged stays
in the group's pending list: a crash between "taken" and "result stored"
loses nothing, the next start takes the entry back. The consumer name is the
agent name, stable across restarts. An agent of several engine processes
(agent/engines.py) reads the one stream with one consumer per engine: engine 0
is the agent name, engine i is `name#i`, so each engine finds its own pending
entries again after a restart, and none takes a live sibling's.

Redis failures surface as `QueueUnavailable`; the runner backs off and calls
again (redis-py reconnects on the next command).
"""

from __future__ import annotations

import logging

import redis

from chalicelib.protocol import STREAM_GROUP, task_stream_key

log = logging.getLogger("agent.queue")

BLOCK_MS = 1000  # short, so a stop request is noticed within a second
MAX_CONNECTIONS = 2
POOL_WAIT_S = BLOCK_MS / 1000 + 10  # longest a command can hold a connection (the blocking read)
_REDIS_DOWN = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ReadOnlyError,
    OSError,
)


def engine_consumer(name: str, index: int) -> str:
    """The consumer name of engine `index`: engine 0 keeps the agent's name (what one engine always used)."""
    return name if index == 0 else f"{name}#{index}"


class QueueUnavailable(RuntimeError):
    """Redis did not answer; try again later."""


class TaskQueue:
    def __init__(
        self,
        redis_url: str,
        agent_id: str,
        consumer: str,
        block_ms: int = BLOCK_MS,
        siblings: frozenset[str] | None = None,
        claim_foreign: bool = True,
    ):
        self.key = task_stream_key(agent_id)
        self.group = STREAM_GROUP
        self.consumer = consumer
        # None: this consumer claims every pending entry (one engine). A set: the consumers of this
        # agent's other live engines, whose entries are theirs (agent/engines.py).
        self.siblings = siblings
        # False: take back only this consumer's own entries (an engine but the first, agent/engines.py).
        self.claim_foreign = claim_foreign
        self.block_ms = block_ms
        # Two connections at most, whatever the concurrency: one for the blocking read, one
        # that the task threads share for their acks (a few ms each; a thread waits its
        # turn). redis-py's default pool opens one per thread that ever overlapped another
        # and keeps them all, so the agent's sockets grew with how its acks happened to
        # coincide.
        pool = redis.BlockingConnectionPool.from_url(
            redis_url,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_WAIT_S,
            decode_responses=True,
            socket_connect_timeout=5,
            socket_timeout=block_ms / 1000 + 10,
            health_check_interval=30,
        )
        self._redis = redis.Redis(connection_pool=pool)

    def close(self) -> None:
        self._redis.close()
        self._redis.connection_pool.disconnect()

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _REDIS_DOWN as exc:
            raise QueueUnavailable(f"redis: {type(exc).__name__}: {exc}") from None

    def ensure_group(self) -> None:
        """Create the stream and group if missing (the API does too, at registration)."""
        try:
            self._call(self._redis.xgroup_create, self.key, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _with_group(self, fn, *args, **kwargs):
        """Run a group command; if Redis lost the stream or group (restart, flush), recreate it once."""
        try:
            return self._call(fn, *args, **kwargs)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            log.warning("stream %s or group %s is missing; creating it", self.key, self.group)
            self.ensure_group()
            return self._call(fn, *args, **kwargs)

    def claim_all_pending(self) -> int:
        """Move every un-acknowledged entry of the group to this consumer, but a live sibling engine's.

        The stream belongs to this agent alone, so any pending entry is ours,
        even one taken under an earlier consumer name (or by an engine that an
        earlier start had and this one has not). Returns how many moved.
        """
        if not self.claim_foreign:
            return 0
        if self.siblings is not None:
            return self._claim_all_but_siblings()
        moved, start = 0, "0-0"
        while True:
            # Not justid: with it, redis-py drops the cursor. The reply is [cursor, entries, ...].
            reply = self._with_group(
                self._redis.xautoclaim, self.key, self.group, self.consumer, min_idle_time=0, start_id=start, count=100
            )
            start, claimed = reply[0], reply[1]
            moved += len(claimed)  # (Redis 7 drops entries deleted from the stream by itself)
            if start in ("0-0", b"0-0"):
                return moved

    def _claim_all_but_siblings(self) -> int:
        """claim_all_pending beside sibling engines: the pending list page by page (XPENDING's extended
        form names each entry's consumer), and XCLAIM of the entries no engine of ours owns."""
        keep = self.siblings | {self.consumer}
        moved, start = 0, "-"
        while True:
            page = self._with_group(self._redis.xpending_range, self.key, self.group, min=start, max="+", count=100)
            if not page:
                return moved
            foreign = [p["message_id"] for p in page if p["consumer"] not in keep]
            if foreign:
                moved += len(self._with_group(self._redis.xclaim, self.key, self.group, self.consumer, 0, foreign))
            if len(page) < 100:
                return moved
            start = "(" + page[-1]["message_id"]

    def read_pending(self, after_id: str, count: int) -> list[tuple[str, dict | None]]:
        """This consumer's un-acknowledged entries after `after_id`.

        Fields are None for an entry deleted from the stream since it was taken.
        """
        reply = self._with_group(self._redis.xreadgroup, self.group, self.consumer, {self.key: after_id}, count=count)
        return list(reply[0][1]) if reply else []

    def read_new(self, count: int) -> list[tuple[str, dict | None]]:
        """Entries never delivered to anyone, waiting up to block_ms for one."""
        reply = self._with_group(
            self._redis.xreadgroup, self.group, self.consumer, {self.key: ">"}, count=count, block=self.block_ms
        )
        return list(reply[0][1]) if reply else []

    def ack(self, *entry_ids: str) -> int:
        if not entry_ids:
            return 0
        return self._with_group(self._redis.xack, self.key, self.group, *entry_ids)

    def pending_count(self) -> int:
        info = self._with_group(self._redis.xpending, self.key, self.group)
        return int(info["pending"]) if isinstance(info, dict) else int(info[0])
