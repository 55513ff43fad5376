"""The runner: stream entries in, results out, nothing lost in between.

For every entry of `hc:tasks:{agent_id}`:

    run the check (bounded concurrency, per-type timeout), its start reported meanwhile
           ->  post the result (a few quick retries)
           ->  XACK once the API has accepted it

- An entry stays un-acknowledged in the group's pending list until its result
  is stored, so a crash at any point loses nothing: the next start claims the
  pending entries back and handles each one again. Such a reclaimed task is
  started before its check runs: `start` answers 409 `task_finished` for a task
  that was already answered, and the entry is simply acknowledged; the API's
  result endpoint is idempotent besides.
- A task past its deadline is not run late: it gets a `timeout` result.
- When the API cannot take a result, the result goes to the spool (fsync'd
  files in the state folder). A delivery thread retries with backoff and
  acknowledges the entries once the API takes it; the spool is replayed at
  every start. Spooled tasks are never run a second time.
- Redis down: back off and try again; checks in flight carry on, and the
  acknowledgements that could not be sent are retried.
- SIGTERM/SIGINT: stop reading, give running checks the grace period, fail
  the ones still running (`agent_offline`), deliver or spool every result, exit 0.

The engine: no thread per task, no thread per check.
- The reader (the thread that calls `run`) takes entries from the stream while
  fewer than `concurrency` tasks are in flight.
- The blocking steps run on a small pool of TASK_WORKERS threads, whose API
  sessions are reused, and never one request per task: the tasks of one read
  are started together (one `POST /api/tasks/results` with `started`, per 100,
  and only for checks still running 20 ms later: a result stands for its start),
  and the results that are ready are delivered together by as many workers as
  requests may be in flight (one by default), each batch acknowledged in one XACK
  (agent/delivery.py batches what meets in between).
- Its check runs on one event loop thread: the network checks are coroutines
  (`agent.checks.run_check_async`), so 500 checks waiting on slow servers are
  500 sockets and 500 small coroutines, not 500 threads. ping and traceroute,
  which block, run on a bounded pool of their own (agent/checks ICMP_WORKERS).
- Each check is bounded twice: by its own deadline (which closes its sockets),
  and by the runner's hard limit (its timeout plus HARD_TIMEOUT_MARGIN_S),
  past which the runner reports a timeout itself and cancels it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.api import (
    ApiClient,
    ApiError,
    ApiRejected,
    ApiUnauthorized,
    ApiUnavailable,
    backoff_delays,
    retry_delay,
)
from agent.config import AgentConfig
from agent.delivery import MAX_BATCH, SINGLE, ResultBatcher
from agent.heartbeat import Heartbeat
from agent.logs import event
from agent.metrics import AgentMetrics
from agent.queue import QueueUnavailable, TaskQueue
from agent.spool import Spool, SpooledResult
from agent.workers import DaemonPool
from chalicelib.protocol import TaskMessage, check_timeout_s, error, result_envelope

log = logging.getLogger("agent.runner")

# A check must honour its own timeout; past it plus this margin the runner
# reports a timeout itself and abandons the thread.
HARD_TIMEOUT_MARGIN_S = 5.0
# Quick in-line attempts before a result or start gives way to the spool / runs unconfirmed.
RESULT_ATTEMPTS = 3
START_ATTEMPTS = 3
# The longest wait between spool delivery attempts while the API is down (a recovered
# heartbeat wakes the delivery at once anyway).
SPOOL_RETRY_CAP_S = 15.0
# How long, after the grace period, shutdown waits for failed tasks' results to be posted or spooled.
FINAL_DELIVERY_S = 10.0
# Threads for the tasks' blocking steps (start, result, ack), each a batch of tasks: one
# delivers results, the others start what each read brought, and a few keep up with hundreds
# of checks in flight.
TASK_WORKERS = 32
# Threads for a run_check that is a plain function (not a coroutine), e.g. a test's stub.
BLOCKING_CHECK_WORKERS = 16

RunCheck = Callable[..., dict]


def _unavailable(answer) -> bool:
    """An answer to try again: the API could not take it (or an unexpected error in between)."""
    return isinstance(answer, Exception) and not isinstance(answer, ApiRejected)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class TaskRun:
    msg: TaskMessage
    entry_ids: list[str]
    reclaimed: bool = False
    started_mono: float = field(default_factory=time.monotonic)
    launched: bool = False  # its check was handed to the engine loop
    check: asyncio.Task | None = None  # the check's task on the engine loop, while it runs


class Runner:
    def __init__(
        self,
        config: AgentConfig,
        api: ApiClient,
        queue: TaskQueue,
        spool: Spool,
        run_check: RunCheck,
        capabilities: list[str],
        agent_id: str,
        preload: Callable[[], object] | None = None,
        heartbeat: bool = True,
        clock=None,
    ):
        """`heartbeat`: this runner heartbeats for the agent (False for an engine of several, whose
        supervisor does, agent/engines.py); `clock`: whose server-time estimate the deadlines are read
        by (default the heartbeat's own)."""
        self.config = config
        self.preload = preload  # run first in run(), before the engine loop and the first read
        self.api = api
        self.queue = queue
        self.spool = spool
        self.run_check = run_check
        self.capabilities = capabilities
        self.agent_id = agent_id

        self.stop = threading.Event()  # stop taking tasks (first signal)
        self.abort = threading.Event()  # give up on running checks (grace over / second signal)
        self._done = threading.Event()
        self._spool_wake = threading.Event()
        self._lock = threading.Condition()
        self._inflight: dict[str, TaskRun] = {}  # task_id -> run
        self._tasks: set[asyncio.Task] = set()  # the checks running on the engine loop (see _launch)
        self._known_entries: set[str] = set()  # entry ids in flight
        self._extra_entries: dict[str, list[str]] = {}  # task_id in spool -> duplicate entry ids
        self._pending_acks: list[str] = []  # acks Redis could not take yet
        self.metrics = AgentMetrics()
        self.metrics.watch(self.current_tasks, lambda: len(self.spool), config.concurrency)
        self.heartbeat = Heartbeat(
            api,
            config.heartbeat_interval_s,
            config.version,
            capabilities,
            self.current_tasks,
            self._done,
            on_recovery=self._spool_wake.set,
            on_accepted=self.metrics.heartbeat_accepted,
        )
        self._beats = heartbeat
        self.clock = clock if clock is not None else self.heartbeat.clock
        self._spool_thread = threading.Thread(target=self._deliver_spool_loop, name="spool", daemon=True)
        self._workers = DaemonPool(TASK_WORKERS, "hc-task")
        self._blocking_checks = DaemonPool(BLOCKING_CHECK_WORKERS, "hc-check")
        self._check_is_async = inspect.iscoroutinefunction(run_check)
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="hc-engine", daemon=True)
        self._results = ResultBatcher(api)  # results and starts together share one POST (agent/delivery.py)
        self._ready: list[tuple[TaskRun, asyncio.Task]] = []  # checks ended, results not yet delivered
        self._delivering = 0  # task workers delivering _ready (at most the batcher's requests in flight)

    # -- bookkeeping -------------------------------------------------------------

    def current_tasks(self) -> int:
        with self._lock:
            return len(self._inflight)

    def _wait_for_slot(self) -> int:
        with self._lock:
            while len(self._inflight) >= self.config.concurrency and not self.stop.is_set():
                self._lock.wait(0.5)
            return self.config.concurrency - len(self._inflight)

    def _ack(self, entry_ids: list[str]) -> None:
        if not entry_ids:
            return
        try:
            self.queue.ack(*entry_ids)
        except QueueUnavailable as exc:
            # The entries stay pending: retried by the reader loop, or reclaimed at the next
            # start, when `start` answers task_finished and they are acknowledged then.
            log.warning("could not acknowledge %s (%s); will retry", ",".join(entry_ids), exc)
            with self._lock:
                self._pending_acks.extend(entry_ids)

    def _flush_pending_acks(self) -> None:
        with self._lock:
            ids, self._pending_acks = self._pending_acks, []
        if ids:
            self._ack(ids)

    # -- main loop ---------------------------------------------------------------

    def run(self) -> int:
        """Run until stop is set; then drain. Returns the process exit code."""
        if self.preload is not None:
            self.preload()  # the checks' modules, imported before any check runs (agent/checks preload)
        spooled = self.spool.open()
        if spooled:
            event(log, logging.INFO, "replaying spooled results", count=len(spooled))
        self._loop_thread.start()
        if self._beats:
            self.heartbeat.start()
        self._spool_thread.start()
        self._spool_wake.set()
        try:
            self._read_loop()
        finally:
            self._drain()
        return 0

    def _read_loop(self) -> None:
        delays = None
        need_setup = True
        backlog_after: str | None = None  # reading our own pending entries from here
        while not self.stop.is_set():
            try:
                if need_setup:
                    self.queue.ensure_group()
                    moved = self.queue.claim_all_pending()
                    self.metrics.reclaims.inc(moved)
                    backlog_after = "0-0"
                    need_setup = False
                    if moved:
                        event(log, logging.INFO, "reclaimed un-acknowledged tasks", count=moved)
                self._flush_pending_acks()
                if self.clock.refusing():  # logged by the clock; the API stops choosing us
                    self.stop.wait(1.0)
                    continue
                free = self._wait_for_slot()
                if self.stop.is_set():
                    break
                if backlog_after is not None:
                    entries = self.queue.read_pending(backlog_after, count=max(1, free))
                    if not entries:
                        backlog_after = None
                        continue
                    backlog_after = entries[-1][0]
                    reclaimed = True
                else:
                    entries = self.queue.read_new(count=max(1, free))
                    reclaimed = False
                if delays is not None:
                    log.info("redis is reachable again")
                    delays = None
                runs = []
                for entry_id, fields in entries:
                    if self.stop.is_set():
                        break  # read but not started: stays pending, taken back at the next start
                    if run := self._dispatch(entry_id, fields, reclaimed):
                        runs.append(run)
                if runs:  # their starts share requests (agent/delivery.py)
                    self._workers.submit(self._execute_many, runs)
            except QueueUnavailable as exc:
                if self.stop.is_set():
                    break
                if delays is None:
                    log.warning("redis unavailable (%s); reconnecting with backoff", exc)
                    delays = backoff_delays(base=0.5, cap=10.0)
                need_setup = True  # Redis may have restarted empty: group, pending list
                self.stop.wait(next(delays))
            except Exception:  # noqa: BLE001 - e.g. a Redis error reply: log, back off, carry on
                log.exception("reading the task stream failed; retrying")
                delays = delays or backoff_delays(base=0.5, cap=10.0)
                need_setup = True
                self.stop.wait(next(delays))

    def _dispatch(self, entry_id: str, fields: dict | None, reclaimed: bool) -> TaskRun | None:
        """The new run for an entry, or None (nothing new to run: malformed, or already in hand)."""
        if not fields:
            # Taken once, then deleted from the stream (trimmed): nothing to run.
            event(log, logging.WARNING, "stream entry has no content; acknowledging", entry=entry_id)
            self._ack([entry_id])
            return None
        try:
            msg = TaskMessage.from_fields(fields)
            if not msg.task_id or not msg.check_type:
                raise ValueError("task_id and check_type are required")
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            # Nothing to report to: without a task id the API cannot take a result.
            event(
                log,
                logging.ERROR,
                "malformed task message; acknowledging",
                entry=entry_id,
                reason=str(exc)[:200],
                raw=json.dumps(fields, default=str)[:300],
            )
            self._ack([entry_id])
            return None
        with self._lock:
            if entry_id in self._known_entries:
                return None  # re-read after a Redis reconnect while still running
            run = self._inflight.get(msg.task_id)
            if run is not None:  # the same task pushed twice (e.g. re-enqueued): answer both together
                run.entry_ids.append(entry_id)
                self._known_entries.add(entry_id)
                return None
            if msg.task_id in self.spool:  # already ran; its result waits in the spool
                self._extra_entries.setdefault(msg.task_id, []).append(entry_id)
                self._known_entries.add(entry_id)
                return None
            run = TaskRun(msg, [entry_id], reclaimed)
            self._inflight[msg.task_id] = run
            self._known_entries.add(entry_id)
        return run

    # -- tasks -------------------------------------------------------------------
    # _execute_many (a task worker: the starts of one read, together) -> _checked (the engine
    # loop, per task) -> _deliver_ready (a task worker: the results that finished, together)

    def _execute_many(self, runs: list[TaskRun]) -> None:
        """Start the tasks of one read in as few requests as the API's bound allows, and run them.

        A new task's check runs at once, while its start waits in the batcher (where its result,
        if it comes first, takes the start's place): the start only says "under way". A reclaimed
        task (read before a crash or a reconnect) may have been answered already, so its check
        waits for the start's answer, and a 409 means it is not run again. An expired task is
        answered without being run."""
        try:
            expired, fresh, reclaimed = [], [], []
            for run in runs:
                result = self._expired_result(run)
                if result:
                    expired.append((run, result))
                else:
                    (reclaimed if run.reclaimed else fresh).append(run)
            if expired:
                self._deliver_many(expired, "expired")
                for run, _ in expired:
                    self._release(run)
            order = fresh + reclaimed
            launch = [fresh]  # the new tasks' checks, launched once their starts are queued (first send)

            def start(task_ids: list[str]) -> list:
                now = launch.pop() if launch else []
                return self._results.start_many(task_ids, queued=(lambda: self._run_all(now)) if now else None)

            answers = self._with_entry_retries(start, [run.msg.task_id for run in order], START_ATTEMPTS)
        except Exception:  # noqa: BLE001 - a bug must not take the slots with it
            log.exception("task handling crashed", extra={"fields": {"tasks": len(runs)}})
            for run in runs:
                if not run.launched:  # a launched check gives its slot back when its result is delivered
                    self._release(run)
            return
        for run, answer in zip(order, answers, strict=True):
            if not run.reclaimed:
                self._start_answered(run, answer)
            elif self._may_run(run, answer):
                self._run_all([run])
            else:
                self._release(run)

    def _run_all(self, runs: list[TaskRun]) -> None:
        """Their checks on the engine loop, handed over in one wake-up (not a concurrent future and its
        condition per task: 500 in flight held 0.8 MB more that way); each one's result is delivered
        when it ends."""
        now = time.monotonic()
        for run in runs:
            run.started_mono = now
            run.launched = True
        try:
            self._loop.call_soon_threadsafe(self._launch, runs)
        except Exception:  # noqa: BLE001 - a closed loop (shutdown) or a bug must not take the slots with it
            log.exception("task handling crashed", extra={"fields": {"tasks": len(runs)}})
            for run in runs:
                self._release(run)

    def _launch(self, runs: list[TaskRun]) -> None:
        """On the engine loop: a task per check, held in `_tasks` until it ends (the loop itself keeps
        only a weak reference)."""
        for run in runs:
            try:
                task = self._loop.create_task(self._checked(run))
            except Exception:  # noqa: BLE001 - a bug must not take the slot with it
                log.exception("task handling crashed", extra={"fields": {"task": run.msg.task_id}})
                self._release(run)
                continue
            self._tasks.add(task)
            task.add_done_callback(lambda done, run=run: self._ended(run, done))

    def _ended(self, run: TaskRun, done: asyncio.Task) -> None:
        self._tasks.discard(done)
        self._finished(run, done)

    def _finished(self, run: TaskRun, done: asyncio.Task) -> None:
        """A check ended (on the engine loop): queue its result; up to `in_flight` task workers deliver what
        is queued, each taking what is ready when it is free."""
        with self._lock:
            self._ready.append((run, done))
            if self._delivering >= self._results.in_flight:
                return
            self._delivering += 1
        self._workers.submit(self._deliver_ready)

    def _deliver_ready(self) -> None:
        while True:
            with self._lock:
                ready, self._ready = self._ready[:MAX_BATCH], self._ready[MAX_BATCH:]
                if not ready:
                    self._delivering -= 1
                    return
            items = []
            try:
                for run, done in ready:
                    result = done.result()  # _checked never raises
                    self.metrics.probe(run.msg.check_type, result, time.monotonic() - run.started_mono)
                    items.append((run, result))
                self._deliver_many(items, "ran")
            except Exception:  # noqa: BLE001 - a bug must not take the slots with it
                log.exception("task handling crashed", extra={"fields": {"tasks": len(ready)}})
            finally:
                for run, _ in ready:
                    self._release(run)

    def _release(self, run: TaskRun) -> None:
        with self._lock:
            self._inflight.pop(run.msg.task_id, None)
            self._known_entries.difference_update(run.entry_ids)
            self._lock.notify_all()

    @staticmethod
    def _with_entry_retries(send: Callable[[list], list], keys: list, attempts: int) -> list:
        """`send(keys)`'s per-entry answers, the entries the API could not take (ApiUnavailable,
        or an unexpected error) sent again up to `attempts` times in all, as `with_retries` does."""
        answers: list = [None] * len(keys)
        todo = list(range(len(keys)))
        delays = backoff_delays(base=0.25, cap=5.0)
        for attempt in range(1, attempts + 1):
            if not todo:
                break
            retry = []
            for index, answer in zip(todo, send([keys[i] for i in todo]), strict=True):
                answers[index] = answer
                if _unavailable(answer):
                    retry.append(index)
            if not retry or attempt == attempts:
                break
            todo = retry
            time.sleep(retry_delay(delays, max(getattr(answers[i], "retry_after", None) or 0 for i in retry), 5.0))
        return answers

    def _expired_result(self, run: TaskRun) -> dict | None:
        """The timeout result of a task whose deadline passed before it could run; None: it may run."""
        deadline_ms = run.msg.deadline_ms
        server_now = self.clock.server_now_ms()  # deadlines are the API's time, not ours
        if not deadline_ms or server_now < deadline_ms:
            return None
        late_s = (server_now - deadline_ms) / 1000
        return result_envelope(
            False,
            0,
            None,
            {},
            error("timeout", f"task expired {late_s:.1f} s before the agent could run it; not run late"),
        )

    def _start_answered(self, run: TaskRun, answer) -> None:
        """A running task's start was answered: only worth a word when it was not accepted. The
        result is delivered all the same, and the API's answer to it (stored, duplicate, late,
        refused) decides what becomes of it."""
        if isinstance(answer, Exception):
            status = getattr(answer, "status", None)
            event(
                log,
                logging.INFO if status == 409 else logging.WARNING,
                "start not confirmed; the result will tell",
                task=run.msg.task_id,
                type=run.msg.check_type,
                status=status,
                reason=str(answer)[:200],
            )

    def _may_run(self, run: TaskRun, answer) -> bool:
        """After the start's answer: False when the task must not run (answered before, or not ours)."""
        msg = run.msg
        if isinstance(answer, ApiRejected) and not isinstance(answer, ApiUnauthorized):
            if answer.status == 409:
                outcome = "already_finished"  # answered before (e.g. reclaimed after a crash) or overdue
                level = logging.INFO
            else:
                outcome = f"rejected_{answer.status}"  # not ours / unknown: it will never be accepted
                level = logging.ERROR
            self._ack(run.entry_ids)
            event(
                log,
                level,
                "task not run",
                task=msg.task_id,
                type=msg.check_type,
                outcome=outcome,
                reason=answer.message[:200],
                reclaimed=run.reclaimed or None,
            )
            return False
        if isinstance(answer, Exception):
            # Unauthorized (our token is not accepted right now) or unavailable: the task is ours
            # (it is on our stream); run it, and the result waits in the spool if need be.
            event(log, logging.WARNING, "start not confirmed; running anyway", task=msg.task_id, reason=str(answer))
        return True

    def _call_check(self, msg: TaskMessage):
        """The check as an awaitable on the engine loop: the coroutine itself, or a blocking call on a pool."""
        args = (msg.check_type, msg.target, msg.options or {})
        if self._check_is_async:
            return self.run_check(*args, allow_private=self.config.allow_private_targets)
        return self._loop.run_in_executor(
            self._blocking_checks,
            lambda: self.run_check(*args, allow_private=self.config.allow_private_targets),
        )

    async def _checked(self, run: TaskRun) -> dict:
        """Run the task's check on the engine loop, within its hard limit; never raises."""
        msg = run.msg
        try:
            timeout_s = check_timeout_s(msg.check_type, msg.options or {})
        except (KeyError, TypeError, ValueError):
            timeout_s = 30.0  # unknown type or odd options: run_check reports the problem itself
        hard_limit = timeout_s + HARD_TIMEOUT_MARGIN_S
        began = time.monotonic()
        run.check = asyncio.current_task()
        try:
            if self.abort.is_set():
                raise asyncio.CancelledError
            async with asyncio.timeout(hard_limit):
                result = await self._call_check(msg)
            return self._validated(result, (time.monotonic() - began) * 1000)
        except TimeoutError:
            return result_envelope(
                False,
                (time.monotonic() - began) * 1000,
                None,
                {},
                error("timeout", f"check did not finish within {hard_limit:.0f} s"),
            )
        except asyncio.CancelledError:  # _abort_running: the grace period is over
            return result_envelope(
                False,
                (time.monotonic() - began) * 1000,
                None,
                {},
                error("agent_offline", "the agent shut down before the check finished"),
            )
        except Exception as exc:  # noqa: BLE001 - the interface says never raises; be sure
            log.error("check raised", exc_info=exc, extra={"fields": {"task": msg.task_id}})
            return result_envelope(
                False,
                (time.monotonic() - began) * 1000,
                None,
                {},
                error("internal", f"check crashed: {type(exc).__name__}"),
            )
        finally:
            run.check = None

    @staticmethod
    def _validated(result, elapsed_ms: float) -> dict:
        """The check's envelope, reshaped so the API's validation cannot refuse it."""
        if not isinstance(result, dict) or "success" not in result:
            return result_envelope(False, elapsed_ms, None, {}, error("internal", "check returned no result envelope"))
        success = bool(result.get("success"))
        err = result.get("error")
        if isinstance(err, dict):
            err = error(str(err.get("kind") or "internal"), str(err.get("message") or ""))
        elif not success:
            err = error("internal", "check failed without saying why")
        else:
            err = None
        duration = result.get("duration_ms")
        address = result.get("address")
        data = result.get("data")
        return result_envelope(
            success,
            duration if isinstance(duration, (int, float)) and duration >= 0 else elapsed_ms,
            str(address)[:255] if address else None,
            data if isinstance(data, dict) else {},
            err,
        )

    # -- results -----------------------------------------------------------------

    def _log_task(self, run: TaskRun, result: dict, outcome: str, level: int = logging.INFO, **extra) -> None:
        err = result.get("error") or {}
        event(
            log,
            level,
            "task done",
            task=run.msg.task_id,
            type=run.msg.check_type,
            outcome=outcome,
            success=result.get("success"),
            error=err.get("kind"),
            duration_ms=result.get("duration_ms"),
            target=run.msg.target,
            reclaimed=run.reclaimed or None,
            **extra,
        )

    def _deliver_many(self, items: list[tuple[TaskRun, dict]], how: str) -> None:
        """Post the results together (a few quick retries), acknowledge every accepted or refused
        one in one XACK, and spool the ones the API could not take."""
        answers = self._with_entry_retries(
            self._results.post_many, [(run.msg.task_id, result) for run, result in items], RESULT_ATTEMPTS
        )
        acks: list[str] = []
        logs = []  # (run, result, outcome, level, fields), logged once acknowledged
        for (run, result), reply in zip(items, answers, strict=True):
            if isinstance(reply, ApiRejected) and not isinstance(reply, ApiUnauthorized):
                acks += run.entry_ids
                fields = {"status": reply.status, "reason": reply.message[:200]}
                logs.append((run, result, f"{how}_rejected", logging.ERROR, fields))
            elif isinstance(reply, Exception):  # unauthorized now, or unavailable: keep it for later
                self._spool(run, result, how, str(reply))
            else:
                acks += run.entry_ids
                self.metrics.delivered.labels("direct").inc()
                outcome = f"{how}_delivered" + ("_duplicate" if reply.get("duplicate") else "")
                logs.append((run, result, outcome, logging.INFO, {"late": reply.get("late") or None}))
        self._ack(acks)
        for run, result, outcome, level, fields in logs:
            self._log_task(run, result, outcome, level, **fields)

    def _spool(self, run: TaskRun, result: dict, how: str, reason: str) -> None:
        self.spool.put(
            SpooledResult(
                task_id=run.msg.task_id, result=result, entry_ids=list(run.entry_ids), check_type=run.msg.check_type
            )
        )
        self.metrics.retried.inc()
        self._log_task(run, result, f"{how}_spooled", logging.WARNING, reason=reason[:200])
        self._spool_wake.set()

    def _deliver_spool_loop(self) -> None:
        delays = None
        while not self._done.is_set():
            if delays is None:
                self._spool_wake.wait(30.0)
            else:
                self._spool_wake.wait(next(delays))
            self._spool_wake.clear()
            if self._done.is_set():
                return
            delivered_all = self.deliver_spooled()
            if delivered_all:
                if delays is not None:
                    log.info("spool delivered; the API is taking results again")
                delays = None
            elif delays is None:
                delays = backoff_delays(base=0.5, cap=SPOOL_RETRY_CAP_S)

    def deliver_spooled(self, stop: threading.Event | None = None) -> bool:
        """One pass over the spool, up to MAX_BATCH results per request. True when it is empty afterwards."""
        task_ids = self.spool.task_ids()
        for first in range(0, len(task_ids), MAX_BATCH):
            if stop is not None and stop.is_set():
                return False
            entries = []
            for task_id in task_ids[first : first + MAX_BATCH]:
                entry = self.spool.load(task_id)
                if entry is None:
                    self.spool.remove(task_id)
                else:
                    entries.append(entry)
            if entries and not self._deliver_spooled_batch(entries):
                return False
        return len(self.spool) == 0

    def _deliver_spooled_batch(self, entries: list[SpooledResult]) -> bool:
        """Post `entries` in one batch (one by one for an API without the batch route); settle
        each one the API answered. False when the API could not take them (try again later)."""
        answers = self._results.send([(e.task_id, e.result) for e in entries])
        available = True
        for entry, answer in zip(entries, answers, strict=True):
            if answer is SINGLE:
                if not available:
                    continue
                try:
                    answer = self.api.post_result(entry.task_id, entry.result)
                except ApiError as exc:
                    answer = exc
            if isinstance(answer, (ApiUnauthorized, ApiUnavailable)):
                self.metrics.retried.inc()
                available = False
                continue
            if isinstance(answer, ApiRejected):
                outcome, level = f"spool_rejected_{answer.status}", logging.ERROR
            else:
                outcome = "spool_delivered" + ("_duplicate" if answer.get("duplicate") else "")
                level = logging.INFO
                self.metrics.delivered.labels("spool").inc()
            self._settle_spooled(entry, outcome, level)
        return available

    def _settle_spooled(self, entry: SpooledResult, outcome: str, level: int) -> None:
        task_id = entry.task_id
        with self._lock:
            extra = self._extra_entries.pop(task_id, [])
            self._known_entries.difference_update(extra)
        self._ack(entry.entry_ids + extra)
        self.spool.remove(task_id)
        err = entry.result.get("error") or {}
        event(
            log,
            level,
            "task done",
            task=task_id,
            type=entry.check_type,
            outcome=outcome,
            success=entry.result.get("success"),
            error=err.get("kind"),
            duration_ms=entry.result.get("duration_ms"),
            spooled_s=round((now_ms() - entry.spooled_at_ms) / 1000, 1) if entry.spooled_at_ms else None,
        )

    # -- shutdown ----------------------------------------------------------------

    def wake_spool(self) -> None:
        """Try the spool's delivery now (the API answers again). Safe in a signal handler: the engine
        loop sets the event, so the handler never waits for a lock its own thread may hold."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing left to wake
            self._loop.call_soon_threadsafe(self._spool_wake.set)

    def request_stop(self) -> None:
        """First call: stop taking tasks and drain. Second call: stop waiting for running checks."""
        if self.stop.is_set():
            log.warning("second stop request: failing running checks now")
            self._abort_running()
        else:
            self.stop.set()
        with self._lock:
            self._lock.notify_all()

    def _abort_running(self) -> None:
        self.abort.set()
        with self._lock:
            checks = [run.check for run in self._inflight.values() if run.check is not None]
        for check in checks:
            self._loop.call_soon_threadsafe(check.cancel)

    def _wait_idle(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        with self._lock:
            while self._inflight:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.5))
            return True

    def _drain(self) -> None:
        self.stop.set()
        running = self.current_tasks()
        event(log, logging.INFO, "stopping: no new tasks", running=running, grace_s=self.config.grace_period_s)
        if not self._wait_idle(self.config.grace_period_s):
            event(
                log,
                logging.WARNING,
                "grace period over; failing the checks still running",
                running=self.current_tasks(),
            )
            self._abort_running()
            self._wait_idle(FINAL_DELIVERY_S + RESULT_ATTEMPTS * 5)
        self._flush_pending_acks()
        if len(self.spool):
            stop_at = threading.Event()
            timer = threading.Timer(FINAL_DELIVERY_S, stop_at.set)
            timer.daemon = True
            timer.start()
            self.deliver_spooled(stop_at)
            timer.cancel()
        self._done.set()
        self._spool_wake.set()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._workers.shutdown()
        self._blocking_checks.shutdown()
        self._loop_thread.join(2.0)
        if not self._loop.is_running():
            self._loop.close()  # its selector and wake-up sockets; checks still pending are dropped
        event(log, logging.INFO, "stopped", spooled=len(self.spool), still_running=self.current_tasks() or None)
