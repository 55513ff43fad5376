"""The runner: stream entries in, results out, nothing lost in between.

For every entry of `hc:tasks:{agent_id}`:

    start  ->  run the check (bounded concurrency, per-type timeout)
           ->  post the result (a few quick retries)
           ->  XACK once the API has accepted it

- An entry stays un-acknowledged in the group's pending list until its result
  is stored, so a crash at any point loses nothing: the next start claims the
  pending entries back and handles each one again. `start` answers 409
  `task_finished` for a task that was already answered, and the entry is
  simply acknowledged; the API's result endpoint is idempotent besides.
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
- A task's blocking steps (`start`, then delivering the result and the ack) run
  on a small pool of TASK_WORKERS threads, whose API sessions are reused.
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
import inspect
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from agent.api import ApiClient, ApiRejected, ApiUnauthorized, ApiUnavailable, backoff_delays, with_retries
from agent.config import AgentConfig
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
# Threads for the tasks' blocking steps (start, result, ack). A few ms each against a healthy
# API, so a few threads keep up with hundreds of checks in flight; more against a slow one
# (these bound how many API calls wait at once: 16 behind a 1 s API made 16 calls/s).
TASK_WORKERS = 32
# Threads for a run_check that is a plain function (not a coroutine), e.g. a test's stub.
BLOCKING_CHECK_WORKERS = 16

RunCheck = Callable[..., dict]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class TaskRun:
    msg: TaskMessage
    entry_ids: list[str]
    reclaimed: bool = False
    started_mono: float = field(default_factory=time.monotonic)
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
    ):
        self.config = config
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
        self._spool_thread = threading.Thread(target=self._deliver_spool_loop, name="spool", daemon=True)
        self._workers = DaemonPool(TASK_WORKERS, "hc-task")
        self._blocking_checks = DaemonPool(BLOCKING_CHECK_WORKERS, "hc-check")
        self._check_is_async = inspect.iscoroutinefunction(run_check)
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="hc-engine", daemon=True)

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
        spooled = self.spool.open()
        if spooled:
            event(log, logging.INFO, "replaying spooled results", count=len(spooled))
        self._loop_thread.start()
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
                if self.heartbeat.clock.refusing():  # logged by the clock; the API stops choosing us
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
                for entry_id, fields in entries:
                    if self.stop.is_set():
                        break  # read but not started: stays pending, taken back at the next start
                    self._dispatch(entry_id, fields, reclaimed)
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

    def _dispatch(self, entry_id: str, fields: dict | None, reclaimed: bool) -> None:
        if not fields:
            # Taken once, then deleted from the stream (trimmed): nothing to run.
            event(log, logging.WARNING, "stream entry has no content; acknowledging", entry=entry_id)
            self._ack([entry_id])
            return
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
            return
        with self._lock:
            if entry_id in self._known_entries:
                return  # re-read after a Redis reconnect while still running
            run = self._inflight.get(msg.task_id)
            if run is not None:  # the same task pushed twice (e.g. re-enqueued): answer both together
                run.entry_ids.append(entry_id)
                self._known_entries.add(entry_id)
                return
            if msg.task_id in self.spool:  # already ran; its result waits in the spool
                self._extra_entries.setdefault(msg.task_id, []).append(entry_id)
                self._known_entries.add(entry_id)
                return
            run = TaskRun(msg, [entry_id], reclaimed)
            self._inflight[msg.task_id] = run
            self._known_entries.add(entry_id)
        self._workers.submit(self._execute, run)

    # -- one task ----------------------------------------------------------------
    # _execute (a task worker) -> _checked (the engine loop) -> _finish (a task worker)

    def _execute(self, run: TaskRun) -> None:
        try:
            if not self._begin(run):
                self._release(run)
                return
            future = asyncio.run_coroutine_threadsafe(self._checked(run), self._loop)
        except Exception:  # noqa: BLE001 - a bug must not take the slot with it
            log.exception("task handling crashed", extra={"fields": {"task": run.msg.task_id}})
            self._release(run)
            return
        future.add_done_callback(lambda done: self._workers.submit(self._finish, run, done))

    def _finish(self, run: TaskRun, done: Future) -> None:
        try:
            result = done.result()  # _checked never raises
            self.metrics.probe(run.msg.check_type, result, time.monotonic() - run.started_mono)
            self._deliver(run, result, "ran")
        except Exception:  # noqa: BLE001 - a bug must not take the slot with it
            log.exception("task handling crashed", extra={"fields": {"task": run.msg.task_id}})
        finally:
            self._release(run)

    def _release(self, run: TaskRun) -> None:
        with self._lock:
            self._inflight.pop(run.msg.task_id, None)
            self._known_entries.difference_update(run.entry_ids)
            self._lock.notify_all()

    def _begin(self, run: TaskRun) -> bool:
        """Before the check: answer an expired task, and tell the API it starts. False: do not run it."""
        msg = run.msg
        deadline_ms = msg.deadline_ms
        server_now = self.heartbeat.clock.server_now_ms()  # deadlines are the API's time, not ours
        if deadline_ms and server_now >= deadline_ms:
            late_s = (server_now - deadline_ms) / 1000
            result = result_envelope(
                False,
                0,
                None,
                {},
                error("timeout", f"task expired {late_s:.1f} s before the agent could run it; not run late"),
            )
            self._deliver(run, result, "expired")
            return False

        try:
            with_retries(lambda: self.api.start_task(msg.task_id), START_ATTEMPTS, what=f"start {msg.task_id}")
        except ApiUnauthorized as exc:
            # Our token is not accepted right now; run anyway, the result waits in the spool.
            event(log, logging.WARNING, "start not confirmed; running anyway", task=msg.task_id, reason=str(exc))
        except ApiRejected as exc:
            if exc.status == 409:
                outcome = "already_finished"  # answered before (e.g. reclaimed after a crash) or overdue
                level = logging.INFO
            else:
                outcome = f"rejected_{exc.status}"  # not ours / unknown: it will never be accepted
                level = logging.ERROR
            self._ack(run.entry_ids)
            event(
                log,
                level,
                "task not run",
                task=msg.task_id,
                type=msg.check_type,
                outcome=outcome,
                reason=exc.message[:200],
                reclaimed=run.reclaimed or None,
            )
            return False
        except ApiUnavailable as exc:
            # The task is ours (it is on our stream); run it and spool the result if need be.
            event(log, logging.WARNING, "start not confirmed; running anyway", task=msg.task_id, reason=str(exc))
        run.started_mono = time.monotonic()
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

    def _deliver(self, run: TaskRun, result: dict, how: str) -> None:
        task_id = run.msg.task_id
        try:
            reply = with_retries(
                lambda: self.api.post_result(task_id, result), RESULT_ATTEMPTS, what=f"result {task_id}"
            )
        except ApiUnauthorized as exc:
            self._spool(run, result, how, str(exc))
        except ApiRejected as exc:
            self._ack(run.entry_ids)
            self._log_task(run, result, f"{how}_rejected", logging.ERROR, status=exc.status, reason=exc.message[:200])
        except ApiUnavailable as exc:
            self._spool(run, result, how, str(exc))
        else:
            self._ack(run.entry_ids)
            self.metrics.delivered.labels("direct").inc()
            outcome = f"{how}_delivered"
            if reply.get("duplicate"):
                outcome += "_duplicate"
            self._log_task(run, result, outcome, late=reply.get("late") or None)

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
        """One pass over the spool. True when it is empty afterwards."""
        for task_id in self.spool.task_ids():
            if stop is not None and stop.is_set():
                return False
            entry = self.spool.load(task_id)
            if entry is None:
                self.spool.remove(task_id)
                continue
            try:
                reply = self.api.post_result(task_id, entry.result)
                outcome = "spool_delivered" + ("_duplicate" if reply.get("duplicate") else "")
                level = logging.INFO
                self.metrics.delivered.labels("spool").inc()
            except ApiUnauthorized:
                self.metrics.retried.inc()
                return False
            except ApiRejected as exc:
                outcome, level = f"spool_rejected_{exc.status}", logging.ERROR
            except ApiUnavailable:
                self.metrics.retried.inc()
                return False
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
        return len(self.spool) == 0

    # -- shutdown ----------------------------------------------------------------

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
