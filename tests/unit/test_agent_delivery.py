"""The agent's result batching (agent/delivery.py): results that finish together share one
request, each caller gets its own entry's answer, and an older API without the batch route
gets single posts."""

from __future__ import annotations

import threading

import pytest

from agent.api import ApiRejected
from agent.delivery import ResultBatcher
from tests.unit.test_agent_runner import FakeApi, wait_until

RESULT = {"success": True, "duration_ms": 1.0, "address": None, "data": {}, "error": None}


def _post_together(batcher: ResultBatcher, task_ids: list[str]) -> dict[str, object]:
    """Post each task's result from a thread of its own; returns each one's answer or exception."""
    answers: dict[str, object] = {}

    def post(task_id):
        try:
            answers[task_id] = batcher.post(task_id, RESULT)
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            answers[task_id] = exc

    threads = [threading.Thread(target=post, args=(t,)) for t in task_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(answers) == len(task_ids), "a caller was stranded"
    return answers


def test_results_posted_together_share_one_request():
    api = FakeApi()
    # A linger no test waits out: the batch leaves when it is full.
    batcher = ResultBatcher(api, linger_s=60, max_batch=3)
    answers = _post_together(batcher, ["task-1", "task-2", "task-3"])
    assert api.batch_sizes == [3] and api.result_posts == 3
    assert {t: a["task_id"] for t, a in answers.items()} == {t: t for t in answers}


def test_a_lone_result_leaves_after_the_linger():
    api = FakeApi()
    batcher = ResultBatcher(api, linger_s=0.001, max_batch=100)
    assert batcher.post("task-1", RESULT)["status"] == "completed"
    assert api.batch_sizes == [1]


def test_with_no_linger_a_lone_result_leaves_at_once_and_results_behind_a_request_share_the_next():
    class Held(FakeApi):
        """The first batch request waits until the test lets it answer."""

        def __init__(self):
            super().__init__()
            self.release = threading.Event()

        def post_results(self, results, started=()):
            if self.batch_posts == 0:
                self.batch_posts += 1
                self.batch_sizes.append(len(results))
                self.release.wait(10)
                self.batch_posts -= 1
                self.batch_sizes.pop()
            return super().post_results(results, started)

    api = Held()
    batcher = ResultBatcher(api, in_flight=1)  # linger 0, the default; one request on its way at a time
    answers: dict[str, object] = {}
    threads = [
        threading.Thread(target=lambda t=t: answers.setdefault(t, batcher.post(t, RESULT))) for t in ("a", "b", "c")
    ]
    threads[0].start()
    wait_until(lambda: api.batch_posts == 1, "the first request, sent without waiting")
    threads[1].start()
    threads[2].start()
    wait_until(lambda: len(batcher._waiting) == 2, "two results queued behind it")
    api.release.set()
    for thread in threads:
        thread.join(10)
    assert sorted(answers) == ["a", "b", "c"]
    assert api.batch_sizes == [1, 2]


def test_an_entry_the_api_refuses_fails_only_its_own_caller():
    class OneForbidden(FakeApi):
        def post_results(self, results, started=()):
            reply = super().post_results(results, started)
            reply["results"][1] = {
                "task_id": results[1]["task_id"],
                "status": 403,
                "body": {"error": {"code": "forbidden", "message": "this task belongs to another agent"}},
            }
            return reply

    api = OneForbidden()
    batcher = ResultBatcher(api, linger_s=60, max_batch=2)
    answers = _post_together(batcher, ["task-1", "task-2"])
    errors = [a for a in answers.values() if isinstance(a, ApiRejected)]
    assert len(errors) == 1 and errors[0].status == 403 and errors[0].code == "forbidden"
    assert sum(isinstance(a, dict) for a in answers.values()) == 1


def test_an_api_without_the_batch_route_gets_single_posts_from_then_on():
    api = FakeApi()
    api.batch_route_missing = True
    batcher = ResultBatcher(api, linger_s=60, max_batch=2)
    answers = _post_together(batcher, ["task-1", "task-2"])
    assert all(a["status"] == "completed" for a in answers.values())
    assert batcher.post("task-3", RESULT)["task_id"] == "task-3"
    assert api.batch_posts == 1 and api.result_posts == 3


def test_an_unexpected_error_reaches_every_caller():
    class Broken(FakeApi):
        def post_results(self, results, started=()):
            raise RuntimeError("bug")

    batcher = ResultBatcher(Broken(), linger_s=60, max_batch=2)
    answers = _post_together(batcher, ["task-1", "task-2"])
    assert all(isinstance(a, RuntimeError) for a in answers.values())


@pytest.mark.parametrize("route_missing", [False, True])
def test_the_spool_is_delivered_in_batches_or_one_by_one_to_an_older_api(tmp_path, route_missing):
    from agent.config import load_config
    from agent.runner import Runner
    from agent.spool import Spool, SpooledResult
    from tests.unit.test_agent_runner import ENV, FakeQueue, StubChecks

    cfg = load_config([], {**ENV, "HC_STATE_DIR": str(tmp_path)})
    queue, api = FakeQueue(), FakeApi()
    api.batch_route_missing = route_missing
    spool = Spool(cfg.spool_dir)
    spool.open()
    for n in range(5):
        spool.put(SpooledResult(task_id=f"task-{n}", result=RESULT, entry_ids=[f"{n}-0"], check_type="tcp"))
    runner = Runner(cfg, api, queue, spool, StubChecks(), ["tcp"], "agent-1")
    assert runner.deliver_spooled() is True
    assert sorted(api.results) == [f"task-{n}" for n in range(5)] and len(spool) == 0
    wait_until(lambda: sorted(queue.acked) == [f"{n}-0" for n in range(5)], "the acks")
    assert api.batch_sizes == [5]
    assert api.result_posts == 5


def test_starts_ride_in_the_batch_with_results_and_each_caller_gets_its_own_answer():
    api = FakeApi()
    api.finished.add("done-task")
    batcher = ResultBatcher(api, linger_s=60, max_batch=4)  # leaves when full: all four in one request
    answers: dict[str, object] = {}

    def call(task_id, fn):
        try:
            answers[task_id] = fn()
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            answers[task_id] = exc

    calls = [
        ("s1", lambda: batcher.start("s1")),
        ("s2", lambda: batcher.start("s2")),
        ("done-task", lambda: batcher.start("done-task")),
        ("r1", lambda: batcher.post("r1", RESULT)),
    ]
    threads = [threading.Thread(target=call, args=c) for c in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert api.batch_posts == 1, "the three starts and the result went in one request"
    assert sorted(api.starts) == ["done-task", "s1", "s2"]
    assert answers["s1"]["status"] == "in_progress" and answers["s2"]["status"] == "in_progress"
    assert isinstance(answers["done-task"], ApiRejected) and answers["done-task"].status == 409
    assert answers["r1"]["status"] == "completed"


def test_a_waiting_start_is_answered_by_its_tasks_result_and_never_sent():
    api = FakeApi()
    batcher = ResultBatcher(api, start_linger_s=60)  # a linger no test waits out
    queued, answers = threading.Event(), {}
    starter = threading.Thread(target=lambda: answers.update(starts=batcher.start_many(["t1", "t2"], queued.set)))
    starter.start()
    assert queued.wait(10)
    assert batcher.post("t1", RESULT)["status"] == "completed"
    assert batcher.post("t2", RESULT)["status"] == "completed"
    starter.join(10)
    assert [a["implied_by_result"] for a in answers["starts"]] == [True, True]
    assert api.starts == [] and api.batch_posts == 2 and sorted(api.results) == ["t1", "t2"]


def test_a_start_no_result_overtakes_leaves_after_its_linger():
    api = FakeApi()
    batcher = ResultBatcher(api, start_linger_s=0.01)
    assert batcher.start("s1")["status"] == "in_progress"
    assert api.starts == ["s1"] and api.start_batches == 1


def test_an_api_without_the_batch_route_gets_single_starts():
    api = FakeApi()
    api.batch_route_missing = True
    batcher = ResultBatcher(api)
    assert batcher.start("s1")["status"] == "in_progress"
    assert batcher.start("s2")["status"] == "in_progress"
    assert api.batch_posts == 1 and api.starts == ["s1", "s2"]


def test_a_batch_stays_under_the_apis_body_limit():
    api = FakeApi()
    big = {**RESULT, "data": {"body": "x" * 1000}}  # ~1 KB each: 100 of them are over 64 KiB
    batcher = ResultBatcher(api, max_bytes=10 * 1024)
    answers = batcher.post_many([(f"task-{i}", big) for i in range(40)])
    assert all(a["status"] == "completed" for a in answers)
    assert api.result_posts == 40 and len(api.batch_sizes) >= 4, "cut into requests under 10 KiB"
    assert max(api.batch_sizes) <= 10


def test_a_batch_the_api_refuses_as_a_whole_goes_entry_by_entry_and_nothing_is_lost():
    class SmallLimit(FakeApi):
        def post_results(self, results, started=()):
            if len(results) > 1:
                self.batch_posts += 1
                raise ApiRejected(400, "body_too_large", "body is 105185 bytes; the limit is 65536")
            return super().post_results(results, started)

    api = SmallLimit()
    batcher = ResultBatcher(api)
    answers = batcher.post_many([(f"task-{i}", RESULT) for i in range(5)])
    assert [a["status"] for a in answers] == ["completed"] * 5
    assert sorted(api.results) == [f"task-{i}" for i in range(5)]


def test_a_second_request_leaves_while_the_first_is_on_its_way_and_a_third_waits_for_either():
    class Held(FakeApi):
        """Each batch request waits until the test lets it answer."""

        def __init__(self):
            super().__init__()
            self.release = threading.Event()
            self.arrived = 0

        def post_results(self, results, started=()):
            with self.lock:
                self.arrived += 1
            self.release.wait(10)
            return super().post_results(results, started)

    api = Held()
    batcher = ResultBatcher(api, in_flight=2)
    answers: dict[str, object] = {}
    threads = [threading.Thread(target=lambda t=t: answers.setdefault(t, batcher.post(t, RESULT))) for t in "abcd"]
    threads[0].start()
    threads[1].start()
    wait_until(lambda: api.arrived == 2, "two requests on their way at once")
    threads[2].start()
    threads[3].start()
    wait_until(lambda: len(batcher._waiting) == 2, "two results queued behind them")
    api.release.set()
    for thread in threads:
        thread.join(10)
    assert sorted(answers) == ["a", "b", "c", "d"]
    assert sorted(api.batch_sizes) == [1, 1, 2] and batcher._leads == 0
