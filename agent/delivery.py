"""Results and starts that happen close together go to the API in one request.

`ResultBatcher.post(task_id, result)` has the contract of `ApiClient.post_result`, and
`ResultBatcher.start(task_id)` that of `ApiClient.start_task`: each returns the API's answer
for that task or raises the same `ApiError` classes. Behind them, results and starts travel
together in `POST /api/tasks/results` (`{results: [...], started: [...]}`, one transaction at
the API for the lot), each caller getting its own entry's answer:

- A result leaves at once while fewer than `in_flight` requests (default 2) are on their way:
  an idle agent adds no latency.
- Results that finish while `in_flight` requests are on their way wait for one of them and
  leave together in the next (at most `max_batch`), as Nagle's algorithm does for small
  writes: the busier the agent, the bigger the batches. `linger_s` (default 0) adds an
  optional wait for company.
- No thread of its own: the caller whose result starts a request sends it and hands the
  answers out, then hands the lead to the first entry that came in meanwhile and leads none.
  It works the same under one thread per task or a worker pool.

Starts wait for their results. A start only says "under way" (the check runs while it waits),
so it waits `start_linger_s` (default 20 ms) before it may leave, and a result for its task
that arrives meanwhile takes its place: the API counts a result for a task never started as its
start. A quick check (a TCP connect on a near host) then costs one request, not two; a slow one
(a 1 s HTTP answer, a traceroute) is shown started 20 ms late. Starts that wait ride along in
any request that leaves meanwhile only once they are due; 500 tasks read at once cost a few
requests, not 500.

An API without the batch route (an older deployment: 404 or 405 for it) is remembered, and
every result and start goes by its single endpoint from then on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.api import ApiClient, ApiError, ApiRejected, ApiUnauthorized, ApiUnavailable
from agent.encoding import dumps

log = logging.getLogger("agent.delivery")

# How long a request waits for more results before it leaves (0: it leaves at once; results
# still batch up behind a request in flight).
LINGER_S = 0.0
# How long a start waits for its task's result to take its place (see the module docstring).
START_LINGER_S = 0.02
# Requests on their way at once (each one transaction at the API); the batcher and the runner's
# delivery take any number. Two once seemed to make bench scenario 2 lose tasks to their deadlines:
# that was the local gateway leaving a new connection unaccepted while keep-alive clients kept its
# workers busy (scripts/localcloud/gateway.py STARVED_S), which stalled the agents; fixed there.
# With it fixed, two gave scenario 4 no gain (2.03 and 2.20 s after the last POST, against 2.51 and
# 2.11 s with one, in the same session) on a slow moment. On a quiet one (yardstick 34 ms), three
# interleaved runs each: one 1.46/1.42/1.44 s, two 1.37/1.36/1.37 s, three 1.33/1.33/1.39 s; the last
# result batches, 64 then 36 HTTP results under the body limit, left 250 ms after the last check ended
# with one and 125 ms with two. Two, not three: the local gateway has 2 x cores + 1 workers, and two
# agents at three each would hold six.
IN_FLIGHT = 2
# The API's bounds: entries per batch (chalicelib/tasks.MAX_BATCH), and bytes per body
# (chalicelib/config max_body_bytes, 64 KiB), kept under with room for the JSON's spacing.
MAX_BATCH = 100
MAX_BATCH_BYTES = 60 * 1024
# What an API that predates the batch route answers for it.
NO_BATCH_ROUTE = (404, 405)


_PENDING = object()  # no answer yet
SINGLE = object()  # the batch route is missing: post this one alone
# A start's answer when its task's result took its place (the result's answer is the result's caller's).
IMPLIED = {"status": "in_progress", "implied_by_result": True}


@dataclass
class _Waiting:
    task_id: str
    result: dict | None  # None: a start
    # Set when its answer or the lead is handed to it; one Event per caller (_answers), shared by the
    # entries it queued together, not one per entry (a lock and a condition each, two per task).
    wake: threading.Event | None = None
    answer: Any = _PENDING  # the body, or an exception (ApiError) to raise, or SINGLE
    lead: bool = False  # woken to send the next request
    due: float = 0.0  # a start: when it may leave (monotonic)
    implied: bool = False  # a start whose task's result came in behind it: answered IMPLIED, never sent

    def sendable(self, now: float) -> bool:
        return self.result is not None or self.implied or self.due <= now


class ResultBatcher:
    def __init__(
        self,
        api: ApiClient,
        linger_s: float = LINGER_S,
        max_batch: int = MAX_BATCH,
        max_bytes: int = MAX_BATCH_BYTES,
        start_linger_s: float = START_LINGER_S,
        in_flight: int = IN_FLIGHT,
    ):
        self.api = api
        self.max_bytes = max_bytes
        self.linger_s = linger_s
        self.start_linger_s = start_linger_s
        self.in_flight = max(1, in_flight)
        self.max_batch = max_batch
        self.batches_supported = True
        self._cond = threading.Condition()
        self._waiting: list[_Waiting] = []
        self._leads = 0  # callers lingering for, or sending, a request (at most in_flight)

    def post(self, task_id: str, result: dict) -> dict:
        """The result's answer, as ApiClient.post_result gives it."""
        return _body_or_raise(self._answers([_Waiting(task_id, result)])[0])

    def start(self, task_id: str) -> dict:
        """The start's answer, as ApiClient.start_task gives it."""
        return _body_or_raise(self._answers([_Waiting(task_id, None)])[0])

    def post_many(self, items: list[tuple[str, dict]]) -> list[Any]:
        """Each (task_id, result)'s answer, in order: the body or the ApiError (never raised)."""
        return self._answers([_Waiting(task_id, result) for task_id, result in items])

    def start_many(self, task_ids: list[str], queued: Callable[[], None] | None = None) -> list[Any]:
        """Each start's answer, in order: the body, IMPLIED (its result took its place), or the
        ApiError (never raised). `queued` is called once the starts wait in the queue, before
        their answers: a result posted from then on can take its start's place."""
        due = time.monotonic() + self.start_linger_s
        return self._answers([_Waiting(task_id, None, due=due) for task_id in task_ids], queued)

    def _answers(self, items: list[_Waiting], queued: Callable[[], None] | None = None) -> list[Any]:
        """Queue `items` together and wait for every answer. They stay in order in the queue and a
        batch takes its entries from the front, so when one of ours is handed the lead, all of ours
        before it are answered: waiting for each in turn leads every request that falls to us."""
        if not items:
            return []
        wake = threading.Event()
        for me in items:
            me.wake = wake
        if self.batches_supported:
            with self._cond:
                finished = {me.task_id for me in items if me.result is not None}
                if finished:  # their starts, still waiting, need not leave at all
                    for waiting in self._waiting:
                        if waiting.result is None and waiting.task_id in finished:
                            waiting.implied = True
                self._waiting.extend(items)
                if self._leads < self.in_flight:
                    self._leads += 1
                    items[0].lead = True
                # Lingering leads look again: results to send, a full batch, or nothing left to take.
                self._cond.notify_all()
            if queued is not None:
                queued()
            for me in items:
                self._await(me)
        else:
            if queued is not None:
                queued()
            for me in items:
                me.answer = SINGLE
        answers = []
        for me in items:
            if me.answer is SINGLE:
                try:
                    if me.result is None:
                        me.answer = self.api.start_task(me.task_id)
                    else:
                        me.answer = self.api.post_result(me.task_id, me.result)
                except ApiError as exc:
                    me.answer = exc
            answers.append(me.answer)
        return answers

    def _await(self, me: _Waiting) -> None:
        while True:
            if me.lead:
                me.lead = False
                self._send_waiting()
            if me.answer is not _PENDING and not me.lead:
                return  # answered, possibly by the request just led
            me.wake.wait()
            # Handed the lead and then answered by another lead's request: lead all the same, or the
            # lead is lost (it is set before the answer, both under the lock).
            if me.answer is not _PENDING and not me.lead:
                return
            # Woken to lead the next request, or for another of the caller's entries (the Event is
            # shared): look again. What a set() announces is written before it, so clearing here
            # loses nothing: the loop reads the answer and the lead before it waits again.
            me.wake.clear()

    def _send_waiting(self) -> None:
        """Send what is waiting (at most max_batch, after the linger), answer it, and hand the
        lead on."""
        with self._cond:
            batch = self._take()
        implied = [w for w in batch if w.implied]  # only starts are ever implied
        batch = [w for w in batch if not w.implied]
        try:
            answers = self.send(batch) if batch else []
        except Exception as exc:  # noqa: BLE001 - a bug here must reach every caller, not strand them
            answers = [exc] * len(batch)
        for waiting, answer in [*zip(batch, answers, strict=True), *((w, IMPLIED) for w in implied)]:
            waiting.answer = answer
            waiting.wake.set()
        with self._cond:
            # The lead passes to the first entry that came in meanwhile and leads none yet. Its caller
            # takes it up once its own earlier entries are answered (they are in flight, or next).
            successor = next((w for w in self._waiting if not w.lead), None)
            if successor is not None:
                successor.lead = True
                successor.wake.set()
            else:
                self._leads -= 1

    def _take(self) -> list[_Waiting]:
        """(Holding the lock.) The next request's entries, taken out of the queue: what may leave
        (results, implied starts, due starts), at once when that fills a batch, else after the
        linger; waiting as long as nothing may."""
        end = time.monotonic() + self.linger_s
        while True:
            now = time.monotonic()
            ready = [w for w in self._waiting if w.sendable(now)]
            if (ready and now >= end) or len(ready) >= self.max_batch or not self._waiting:
                batch = ready[: self.max_batch]
                break
            # Results waiting for company wait out the linger; else the first start to fall due.
            wake_at = end if ready else min(w.due for w in self._waiting)
            self._cond.wait(max(0.0, wake_at - now))
        taken = {id(w) for w in batch}
        self._waiting = [w for w in self._waiting if id(w) not in taken]
        return batch

    def send(self, batch: list[_Waiting] | list[tuple[str, dict]]) -> list[Any]:
        """POST /api/tasks/results for `batch` (waiting callers, or (task_id, result) pairs: the
        spool), in as few requests as the API's body limit allows; per entry its body, an
        ApiError, or SINGLE (post it alone: no batch route)."""
        items = [(w.task_id, w.result) if isinstance(w, _Waiting) else w for w in batch]
        answers: list[Any] = []
        for chunk in _within_body_limit(items, self.max_bytes):
            answers += self._send_chunk(chunk)
        return answers

    def _send_chunk(self, items: list[tuple[str, dict | None]]) -> list[Any]:
        results = [(i, t, r) for i, (t, r) in enumerate(items) if r is not None]
        started = [(i, t) for i, (t, r) in enumerate(items) if r is None]
        try:
            reply = self.api.post_results([{"task_id": t, **r} for _, t, r in results], [t for _, t in started])
        except ApiRejected as exc:
            if exc.status in NO_BATCH_ROUTE and not isinstance(exc, ApiUnauthorized):
                log.info("the API has no batch route (%s); results go one by one", exc.status)
                self.batches_supported = False
                return [SINGLE] * len(items)
            if len(items) > 1 and not isinstance(exc, ApiUnauthorized):
                # The request as a whole was refused (say, over a body limit smaller than ours), not
                # its entries: each goes alone, so no entry is lost for the company it kept.
                log.warning("the API refused a batch of %d (%s); sending its entries one by one", len(items), exc)
                return [SINGLE] * len(items)
            return [exc] * len(items)
        except ApiError as exc:  # unavailable, unauthorized: the same for every entry
            return [exc] * len(items)
        reply = reply if isinstance(reply, dict) else {}
        answers: list[Any] = [None] * len(items)
        for name, entries in (("results", results), ("started", started)):
            got = reply.get(name) if entries else []
            if not isinstance(got, list) or len(got) != len(entries):
                exc = ApiUnavailable(None, "bad_batch_answer", "the API's batch answer does not match the batch")
                return [exc] * len(items)
            for entry, answer in zip(entries, got, strict=True):
                answers[entry[0]] = _entry_answer(answer)
        return answers


def _within_body_limit(items: list[tuple[str, dict | None]], max_bytes: int) -> list[list[tuple[str, dict | None]]]:
    """`items` cut into runs whose JSON stays under `max_bytes` (an entry over it on its own goes
    alone, and gets the API's own answer for its size)."""
    chunks: list[list[tuple[str, dict | None]]] = []
    size = max_bytes
    for task_id, result in items:
        entry = len(task_id) + 16 + (len(dumps(result)) if result is not None else 0)
        if size + entry > max_bytes:
            chunks.append([])
            size = 64  # the envelope: {"results":[...],"started":[...]}
        chunks[-1].append((task_id, result))
        size += entry
    return chunks


def _body_or_raise(answer: Any) -> dict:
    if isinstance(answer, Exception):
        raise answer
    return answer


def _entry_answer(answer: Any) -> Any:
    """One entry of the batch's answer as post_result would give it: the body, or the error."""
    if not isinstance(answer, dict):
        return ApiUnavailable(None, "bad_batch_answer", "an entry of the batch answer is not an object")
    status = answer.get("status")
    body = answer.get("body") if isinstance(answer.get("body"), dict) else {}
    if status == 200:
        return body
    err = body.get("error") if isinstance(body.get("error"), dict) else {}
    code = str(err.get("code") or f"http_{status}")
    message = str(err.get("message") or "")
    if not isinstance(status, int) or status >= 500 or status == 429:
        return ApiUnavailable(status if isinstance(status, int) else None, code, message)
    if status == 401:
        return ApiUnauthorized(status, code, message)
    return ApiRejected(status, code, message)
