"""The runner's decisions, with an in-memory stream, a scripted API and a stub check.

The real Redis, API and checks are exercised in tests/integration/test_agent_*.py;
here each promise is pinned down on its own, fast.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

import pytest

from agent.api import ApiRejected, ApiUnavailable
from agent.config import load_config
from agent.queue import QueueUnavailable
from agent.runner import Runner
from agent.spool import Spool, SpooledResult
from chalicelib.protocol import TaskMessage, result_envelope

ENV = {
    "HC_API_URL": "http://127.0.0.1:8390",
    "HC_REDIS_URL": "redis://127.0.0.1:63800/0",
    "HC_AGENT_NAME": "Frankfurt",
    "HC_AGENT_LOCATION": "Frankfurt, DE",
}
WAIT_S = 10


def wait_until(predicate, what: str, timeout: float = WAIT_S):
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class FakeQueue:
    """The consumer-group semantics the runner relies on: pending until acked."""

    def __init__(self):
        self.lock = threading.Lock()
        self.entries: list[tuple[str, dict]] = []
        self.delivered = 0  # index of the next never-delivered entry
        self.pending: set[str] = set()
        self.acked: list[str] = []
        self.ack_calls = 0  # XACK round trips
        self.down = False
        self.failures = 0
        self.seq = 0

    def add(self, msg: TaskMessage) -> str:
        with self.lock:
            self.seq += 1
            entry_id = f"{self.seq}-0"
            self.entries.append((entry_id, msg.to_fields()))
            return entry_id

    def ensure_group(self):
        self._check()

    def claim_all_pending(self):
        self._check()
        return len(self.pending)

    def _check(self):
        if self.down:
            self.failures += 1
            raise QueueUnavailable("redis: down")

    def read_pending(self, after_id, count):
        self._check()
        after = int(after_id.split("-")[0])
        with self.lock:
            out = [(i, f) for i, f in self.entries if i in self.pending and int(i.split("-")[0]) > after]
        return out[:count]

    def read_new(self, count):
        self._check()
        with self.lock:
            out = self.entries[self.delivered : self.delivered + count]
            self.delivered += len(out)
            self.pending.update(i for i, _ in out)
        if not out:
            time.sleep(0.01)
        return out

    def ack(self, *ids):
        self._check()
        with self.lock:
            self.ack_calls += 1
            self.acked.extend(ids)
            self.pending.difference_update(ids)
        return len(ids)


class FakeApi:
    def __init__(self):
        self.lock = threading.Lock()
        self.results: dict[str, dict] = {}
        self.result_posts = 0
        self.starts: list[str] = []
        self.heartbeats = 0
        self.agent_ahead_s = 0.0  # how far the agent's clock runs ahead of this API's
        self.offsets_reported: list = []  # clock_offset_ms of each heartbeat
        self.down = False
        self.finished: set[str] = set()  # start answers 409 for these
        self.batch_posts = 0
        self.batch_sizes: list[int] = []
        self.batch_route_missing = False  # an older API: POST /api/tasks/results is 404
        self.start_batches = 0  # batch requests that carried starts

    def _check(self):
        if self.down:
            raise ApiUnavailable(None, "unreachable", "connection refused")

    def heartbeat(self, current_tasks, version, capabilities, clock_offset_ms=None):
        self._check()
        self.heartbeats += 1
        self.offsets_reported.append(clock_offset_ms)
        server_time = datetime.fromtimestamp(time.time() - self.agent_ahead_s, UTC).isoformat()
        return {"server_time": server_time}

    def start_task(self, task_id):
        self._check()
        self.starts.append(task_id)
        if task_id in self.finished or task_id in self.results:
            raise ApiRejected(409, "task_finished", "already completed")
        return {"task_id": task_id, "status": "in_progress", "attempts": 1}

    def post_result(self, task_id, result):
        self._check()
        with self.lock:
            self.result_posts += 1
            duplicate = task_id in self.results
            self.results.setdefault(task_id, result)
        return {"task_id": task_id, "status": "completed", "late": False, "duplicate": duplicate}

    def post_results(self, results, started=()):
        """The batch route, answered entry by entry as post_result would (agent/delivery.py uses it)."""
        self._check()
        with self.lock:
            self.batch_posts += 1
            self.batch_sizes.append(len(results))
            self.start_batches += bool(started)
        if self.batch_route_missing:
            raise ApiRejected(404, "route_not_found", "no route for POST /api/tasks/results")
        answers = []
        for item in results:
            task_id = item["task_id"]
            body = self.post_result(task_id, {k: v for k, v in item.items() if k != "task_id"})
            answers.append({"task_id": task_id, "status": 200, "body": body})
        starts = []
        for task_id in started:
            try:
                starts.append({"task_id": task_id, "status": 200, "body": self.start_task(task_id)})
            except ApiRejected as exc:
                body = {"error": {"code": exc.code, "message": exc.message, "details": []}}
                starts.append({"task_id": task_id, "status": exc.status, "body": body})
        return {"results": answers, "started": starts}


class StubChecks:
    """run_check that answers at once, or holds a target until released."""

    def __init__(self):
        self.calls: list[str] = []
        self.gates: dict[str, threading.Event] = {}
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0  # the most checks ever running at once

    def hold(self, target: str) -> threading.Event:
        self.gates[target] = threading.Event()
        return self.gates[target]

    def running(self, target: str) -> bool:
        with self.lock:
            return target in self.calls

    def __call__(self, check_type, target, options, *, allow_private):
        with self.lock:
            self.calls.append(target)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            gate = self.gates.get(target)
            if gate is not None:
                gate.wait()
            return result_envelope(True, 1.5, "127.0.0.1", {"port": 80, "connect_ms": 1.5})
        finally:
            with self.lock:
                self.in_flight -= 1


def task(n: int, *, deadline_ms: int | None = None, check_type="tcp", options=None) -> TaskMessage:
    return TaskMessage(
        task_id=f"task-{n}",
        check_id="check-1",
        agent_id="agent-1",
        check_type=check_type,
        target=f"target-{n}",
        options=options or {"timeout": 5},
        deadline_ms=deadline_ms if deadline_ms is not None else int(time.time() * 1000) + 60_000,
    )


@pytest.fixture
def rig(tmp_path):
    """A runner over fakes, running in a thread; stopped (and joined) at the end."""
    made = []

    def make(preload=None, **env):
        cfg = load_config([], {**ENV, "HC_STATE_DIR": str(tmp_path), "HC_GRACE_PERIOD_S": "5", **env})
        queue, api, checks = FakeQueue(), FakeApi(), StubChecks()
        spool = Spool(cfg.spool_dir)
        runner = Runner(cfg, api, queue, spool, checks, ["tcp"], "agent-1", preload=preload)
        box = {}
        thread = threading.Thread(target=lambda: box.setdefault("code", runner.run()), daemon=True)
        made.append((runner, thread, checks))
        return runner, queue, api, checks, spool, thread, box

    yield make
    for runner, thread, checks in made:
        for gate in checks.gates.values():
            gate.set()
        runner.request_stop()
        thread.join(WAIT_S)


def test_runs_tasks_and_acks_only_after_the_result_is_accepted(rig):
    runner, queue, api, checks, _, thread, _ = rig()
    gate = checks.hold("target-1")
    e1 = queue.add(task(1))
    thread.start()
    wait_until(lambda: checks.running("target-1"), "the check to start")
    wait_until(lambda: api.starts == ["task-1"], "the start, reported while the check runs")
    assert e1 in queue.pending and e1 not in queue.acked  # running: not acknowledged yet
    gate.set()
    wait_until(lambda: e1 in queue.acked, "the ack")
    assert api.results["task-1"]["success"] is True
    assert api.starts == ["task-1"]


def test_one_slow_check_does_not_block_the_others(rig):
    runner, queue, api, checks, _, thread, _ = rig(HC_CONCURRENCY="4")
    gate = checks.hold("target-0")
    queue.add(task(0))
    for n in range(1, 6):
        queue.add(task(n))
    thread.start()
    wait_until(lambda: all(f"task-{n}" in api.results for n in range(1, 6)), "the fast tasks")
    wait_until(lambda: runner.current_tasks() == 1, "only the slow task left running")
    assert "task-0" not in api.results
    gate.set()
    wait_until(lambda: "task-0" in api.results, "the slow task")


def test_the_checks_are_preloaded_before_the_engine_runs_or_a_task_is_read(rig):
    """Importing a check's module (60 to 90 ms for http and dns) on the engine loop would hold up
    the first check of that type and every check beside it: it happens before either runs."""
    seen = {}

    def preload():
        seen["engine_running"] = runner._loop.is_running()
        seen["reads_before"] = queue.delivered + len(queue.pending)

    runner, queue, api, _, _, thread, _ = rig(preload=preload)
    queue.add(task(1))
    thread.start()
    wait_until(lambda: "task-1" in api.results, "the task")
    assert seen == {"engine_running": False, "reads_before": 0}


def test_concurrency_is_bounded(rig):
    runner, queue, api, checks, _, thread, _ = rig(HC_CONCURRENCY="2")
    gates = [checks.hold(f"target-{n}") for n in range(4)]
    for n in range(4):
        queue.add(task(n))
    thread.start()
    wait_until(lambda: len(checks.calls) == 2, "two checks running")
    assert runner.current_tasks() == 2 and queue.delivered == 2  # the rest wait in Redis, not in memory
    for gate in gates:
        gate.set()
    wait_until(lambda: len(api.results) == 4, "all four results")
    # over the whole run, not only at the moment looked at above
    assert checks.max_in_flight == 2 and len(checks.calls) == 4


def test_tasks_read_together_start_in_one_request_per_hundred_and_results_share_requests_and_acks(rig):
    _, queue, api, checks, _, thread, _ = rig()
    gates = [checks.hold(f"target-{n}") for n in range(300)]  # slow checks: their starts are sent
    entries = [queue.add(task(n)) for n in range(300)]
    thread.start()
    wait_until(lambda: len(api.starts) == 300, "all 300 starts")
    assert api.start_batches == 3, "one read of 300: three batches of 100 starts"
    for gate in gates:
        gate.set()
    wait_until(lambda: len(queue.acked) == 300, "all 300 acks")
    assert sorted(queue.acked) == sorted(entries) and len(api.results) == 300
    result_requests = api.batch_posts - api.start_batches
    # Not one request (or one XACK) per task: results that are ready together leave together.
    assert result_requests <= 300 / 4, f"{result_requests} result requests for 300 tasks"
    assert queue.ack_calls <= 300 / 4, f"{queue.ack_calls} XACKs for 300 tasks"


def test_expired_task_is_not_run_but_answered_with_timeout(rig):
    _, queue, api, checks, _, thread, _ = rig()
    entry = queue.add(task(1, deadline_ms=int(time.time() * 1000) - 1000))
    thread.start()
    wait_until(lambda: entry in queue.acked, "the ack")
    assert checks.calls == []
    assert api.starts == []
    assert api.results["task-1"]["success"] is False
    assert api.results["task-1"]["error"]["kind"] == "timeout"


def test_an_expired_task_gives_its_slot_back(rig):
    runner, queue, api, checks, _, thread, _ = rig(HC_CONCURRENCY="1")
    expired = queue.add(task(1, deadline_ms=int(time.time() * 1000) - 1000))
    fresh = queue.add(task(2))
    thread.start()
    wait_until(lambda: fresh in queue.acked, "the task after the expired one")  # one slot: freed by the expired
    assert expired in queue.acked and len(checks.calls) == 1
    assert api.results["task-2"]["success"] is True
    wait_until(lambda: runner.current_tasks() == 0, "no slot held")


def test_quick_checks_send_no_starts_their_results_take_the_starts_place(rig):
    runner, queue, api, checks, _, thread, _ = rig()
    runner._results.start_linger_s = 60  # "quick" without a race: every result is in well within it
    entries = [queue.add(task(n)) for n in range(300)]
    thread.start()
    wait_until(lambda: len(queue.acked) == 300, "all 300 acks")
    assert sorted(queue.acked) == sorted(entries) and len(api.results) == 300
    # The API counts a result for a task never started as its start: one request per batch, not two.
    assert api.starts == [] and api.start_batches == 0
    assert api.batch_posts <= 300 / 4, f"{api.batch_posts} requests for 300 tasks"


def test_a_new_tasks_check_runs_while_its_start_waits_and_a_refused_start_leaves_the_verdict_to_the_result(rig):
    _, queue, api, checks, _, thread, _ = rig()
    api.finished.add("task-1")  # the start answers 409
    gate = checks.hold("target-1")
    entry = queue.add(task(1))
    thread.start()
    wait_until(lambda: checks.running("target-1"), "the check, before the start's answer")
    wait_until(lambda: api.starts == ["task-1"], "the refused start")
    assert entry not in queue.acked  # the start's answer settles nothing: the result's does
    gate.set()
    wait_until(lambda: entry in queue.acked, "the ack")
    assert "task-1" in api.results


def test_reclaimed_task_already_finished_is_acked_without_running(rig):
    _, queue, api, checks, _, thread, _ = rig()
    api.finished.add("task-1")
    entry = queue.add(task(1))
    queue.read_new(10)  # taken by a previous run that died: it may have been answered before
    thread.start()
    wait_until(lambda: entry in queue.acked, "the ack")
    assert checks.calls == [] and "task-1" not in api.results and api.starts == ["task-1"]


def test_check_that_overstays_its_timeout_is_reported_as_timeout(rig, monkeypatch):
    import agent.runner as runner_module

    monkeypatch.setattr(runner_module, "HARD_TIMEOUT_MARGIN_S", 0.0)
    _, queue, api, checks, _, thread, _ = rig()
    checks.hold("target-1")  # never released by the test: the stub hangs
    entry = queue.add(task(1, options={"timeout": 0.2}))
    thread.start()
    wait_until(lambda: entry in queue.acked, "the ack")
    assert api.results["task-1"]["error"]["kind"] == "timeout"


def test_api_down_results_are_spooled_then_delivered_and_acked_once(rig):
    runner, queue, api, checks, spool, thread, _ = rig()
    api.down = True
    entry = queue.add(task(1))
    thread.start()
    wait_until(lambda: "task-1" in spool, "the result in the spool")
    assert entry in queue.pending and entry not in queue.acked
    api.down = False
    runner._spool_wake.set()
    wait_until(lambda: entry in queue.acked and len(spool) == 0, "the ack and the spool file's removal")
    assert api.result_posts == 1 and queue.acked.count(entry) == 1
    assert checks.calls == ["target-1"]


def test_spool_is_replayed_at_start_and_spooled_tasks_are_not_run_again(rig):
    runner, queue, api, checks, spool, thread, _ = rig()
    # A previous run ran task-1, could not deliver it, and died: the entry is pending, the result spooled.
    entry = queue.add(task(1))
    queue.read_new(10)
    spool.open()
    spool.put(SpooledResult("task-1", result_envelope(True, 7, "127.0.0.1"), [entry], "tcp"))
    thread.start()
    wait_until(lambda: entry in queue.acked and len(spool) == 0, "the ack and the spool file's removal")
    assert checks.calls == []  # the result came from the spool, not from a re-run
    assert api.results["task-1"]["duration_ms"] == 7


def test_reclaimed_entry_is_run_again_when_unanswered(rig):
    _, queue, api, checks, _, thread, _ = rig()
    entry = queue.add(task(1))
    queue.read_new(10)  # taken by a previous run that died mid-check
    thread.start()
    wait_until(lambda: entry in queue.acked, "the ack")
    assert checks.calls == ["target-1"] and "task-1" in api.results


def test_redis_outage_is_survived(rig):
    _, queue, api, checks, _, thread, box = rig()
    queue.down = True
    thread.start()
    wait_until(lambda: queue.failures >= 2, "the runner to retry against the down Redis")
    queue.down = False
    entry = queue.add(task(1))
    wait_until(lambda: entry in queue.acked, "the task after Redis returned")
    assert "code" not in box  # still running, no crash


def test_stop_drains_running_checks_and_exits_0(rig):
    runner, queue, api, checks, _, thread, box = rig()
    gate = checks.hold("target-1")
    entry = queue.add(task(1))
    thread.start()
    wait_until(lambda: checks.running("target-1"), "the check to start")
    runner.request_stop()
    queue.add(task(2))  # arrives after the stop: must not be taken
    assert thread.is_alive()  # waiting for the running check
    gate.set()
    thread.join(WAIT_S)
    assert box["code"] == 0
    assert entry in queue.acked and "task-1" in api.results
    assert "task-2" not in api.results and checks.calls == ["target-1"]


def test_checks_still_running_after_the_grace_period_are_failed_and_reported(rig):
    runner, queue, api, checks, _, thread, box = rig(HC_GRACE_PERIOD_S="0")
    checks.hold("target-1")
    entry = queue.add(task(1))
    thread.start()
    wait_until(lambda: checks.running("target-1"), "the check to start")
    runner.request_stop()
    thread.join(WAIT_S)
    assert box["code"] == 0
    assert entry in queue.acked
    assert api.results["task-1"]["error"]["kind"] == "agent_offline"


def test_an_agent_with_a_fast_clock_runs_tasks_by_the_api_clock_and_reports_its_offset(rig):
    runner, queue, api, checks, _, thread, _ = rig(HC_HEARTBEAT_INTERVAL_S="0.2")
    api.agent_ahead_s = 40.0  # an agent 40 s fast saw every task as expired
    thread.start()
    wait_until(lambda: runner.heartbeat.clock.offset_ms is not None, "a clock sample")
    server_now_ms = int((time.time() - api.agent_ahead_s) * 1000)
    entry = queue.add(task(1, deadline_ms=server_now_ms + 20_000))
    wait_until(lambda: entry in queue.acked, "the ack")
    assert checks.calls == ["target-1"] and api.results["task-1"]["success"] is True
    wait_until(lambda: any(o is not None for o in api.offsets_reported), "the offset in a heartbeat")
    reported = next(o for o in api.offsets_reported if o is not None)
    assert abs(reported - 40_000) < 1000


def test_an_agent_whose_clock_is_past_the_bound_refuses_work_loudly(rig, caplog):
    runner, queue, api, checks, _, thread, _ = rig(HC_HEARTBEAT_INTERVAL_S="0.2")
    api.agent_ahead_s = 600.0
    caplog.set_level(logging.WARNING, logger="agent.clock")
    thread.start()
    wait_until(lambda: runner.heartbeat.clock.refusing(), "the clock past the bound")
    queue.add(task(1, deadline_ms=int((time.time() - api.agent_ahead_s) * 1000) + 60_000))
    seen = api.heartbeats
    wait_until(lambda: api.heartbeats >= seen + 3, "three more heartbeats")
    assert queue.delivered == 0 and checks.calls == []  # the task waits in the stream
    assert any(r.levelname == "ERROR" and "refusing work" in r.getMessage() for r in caplog.records)
    api.agent_ahead_s = 0.0  # the clock is fixed (stepped): work resumes
    wait_until(lambda: "task-1" in api.results, "the task, once the clock is fixed")
