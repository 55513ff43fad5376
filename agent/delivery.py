"""Results that finish close together go to the API in one request.

`ResultBatcher.post(task_id, result)` has the contract of `ApiClient.post_result`: it
returns the API's answer for that task or raises the same `ApiError` classes. Behind it,
results travel in `POST /api/tasks/results` (one transaction at the API for the lot), each
caller getting its own entry's answer:

- A result with no request in flight leaves at once: an idle agent adds no latency.
- Results that finish while a request is in flight wait for it and leave together in the
  next one (at most `max_batch`), as Nagle's algorithm does for small writes: the busier
  the agent, the bigger the batches. `linger_s` (default 0) adds an optional wait for company.
- No thread of its own: the caller whose result starts a request sends it and hands the
  answers out, then hands the lead to the first result that came in meanwhile. It works the
  same under one thread per task or a worker pool.

An API without the batch route (an older deployment: 404 or 405 for it) is remembered, and
every result goes by the single endpoint from then on.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from agent.api import ApiClient, ApiError, ApiRejected, ApiUnauthorized, ApiUnavailable

log = logging.getLogger("agent.delivery")

# How long a request waits for more results before it leaves (0: it leaves at once; results
# still batch up behind a request in flight).
LINGER_S = 0.0
# The API's bound (chalicelib/tasks.MAX_BATCH).
MAX_BATCH = 100
# What an API that predates the batch route answers for it.
NO_BATCH_ROUTE = (404, 405)


_PENDING = object()  # no answer yet
SINGLE = object()  # the batch route is missing: post this one alone


@dataclass
class _Waiting:
    task_id: str
    result: dict
    wake: threading.Event = field(default_factory=threading.Event)
    answer: Any = _PENDING  # the body, or an exception (ApiError) to raise, or SINGLE
    lead: bool = False  # woken to send the next request


class ResultBatcher:
    def __init__(self, api: ApiClient, linger_s: float = LINGER_S, max_batch: int = MAX_BATCH):
        self.api = api
        self.linger_s = linger_s
        self.max_batch = max_batch
        self.batches_supported = True
        self._cond = threading.Condition()
        self._waiting: list[_Waiting] = []
        self._sending = False  # a caller is lingering for, or sending, a request

    def post(self, task_id: str, result: dict) -> dict:
        if not self.batches_supported:
            return self.api.post_result(task_id, result)
        me = _Waiting(task_id, result)
        with self._cond:
            self._waiting.append(me)
            if not self._sending:
                self._sending = me.lead = True
            elif len(self._waiting) >= self.max_batch:
                self._cond.notify_all()  # a lingering sender: the batch is full
        while True:
            if me.lead:
                me.lead = False
                self._send_waiting()
            me.wake.wait()
            if me.answer is not _PENDING:
                break
            me.wake.clear()  # woken to lead the next request
        if me.answer is SINGLE:
            return self.api.post_result(task_id, result)
        if isinstance(me.answer, Exception):
            raise me.answer
        return me.answer

    def _send_waiting(self) -> None:
        """Send what is waiting (at most max_batch, after the linger), answer it, and hand the
        lead to the first result that came in meanwhile."""
        with self._cond:
            if self.linger_s:
                end = time.monotonic() + self.linger_s
                while len(self._waiting) < self.max_batch and (left := end - time.monotonic()) > 0:
                    self._cond.wait(left)
            batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
        try:
            answers = self.send(batch)
        except Exception as exc:  # noqa: BLE001 - a bug here must reach every caller, not strand them
            answers = [exc] * len(batch)
        for waiting, answer in zip(batch, answers, strict=True):
            waiting.answer = answer
            waiting.wake.set()
        with self._cond:
            if self._waiting:
                self._waiting[0].lead = True
                self._waiting[0].wake.set()
            else:
                self._sending = False

    def send(self, batch: list[_Waiting] | list[tuple[str, dict]]) -> list[Any]:
        """One POST /api/tasks/results for `batch` (waiting callers, or (task_id, result) pairs: the
        spool); per entry its body, an ApiError, or SINGLE (post it alone: no batch route)."""
        items = [(w.task_id, w.result) if isinstance(w, _Waiting) else w for w in batch]
        try:
            reply = self.api.post_results([{"task_id": t, **r} for t, r in items])
        except ApiRejected as exc:
            if exc.status in NO_BATCH_ROUTE and not isinstance(exc, ApiUnauthorized):
                log.info("the API has no batch route (%s); results go one by one", exc.status)
                self.batches_supported = False
                return [SINGLE] * len(items)
            return [exc] * len(items)
        except ApiError as exc:  # unavailable, unauthorized: the same for every entry
            return [exc] * len(items)
        answers = reply.get("results") if isinstance(reply, dict) else None
        if not isinstance(answers, list) or len(answers) != len(items):
            exc = ApiUnavailable(None, "bad_batch_answer", "the API's batch answer does not match the batch")
            return [exc] * len(items)
        return [_entry_answer(a) for a in answers]


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
