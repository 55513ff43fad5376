"""The agent's bounded daemon pool (agent/workers.py): what the runner relies on, with no servers."""

from __future__ import annotations

import threading
import time

from agent.workers import DaemonPool

WAIT_S = 10


def wait_until(predicate, what: str) -> None:
    end = time.monotonic() + WAIT_S
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_never_more_threads_than_its_size_and_every_job_runs():
    pool = DaemonPool(3, "t")
    gate = threading.Event()
    running = []
    lock = threading.Lock()

    def job(n):
        with lock:
            running.append(n)
        gate.wait(WAIT_S)
        return n

    futures = [pool.submit(job, n) for n in range(10)]
    wait_until(lambda: len(running) == 3, "three jobs running")
    assert pool.threads() == 3 and len(running) == 3  # the other seven wait for a thread
    gate.set()
    assert sorted(f.result(WAIT_S) for f in futures) == list(range(10))
    assert pool.threads() <= 3
    pool.shutdown()


def test_an_idle_thread_ends_and_a_new_job_still_runs():
    pool = DaemonPool(4, "t", idle_s=0.1)
    assert pool.submit(lambda: "first").result(WAIT_S) == "first"
    wait_until(lambda: pool.threads() == 0, "the idle thread to end")
    assert pool.submit(lambda: "again").result(WAIT_S) == "again"
    pool.shutdown()


def test_a_job_cancelled_before_it_started_never_runs():
    pool = DaemonPool(1, "t")
    gate = threading.Event()
    ran = []
    busy = pool.submit(gate.wait, WAIT_S)
    queued = pool.submit(ran.append, "queued")
    assert queued.cancel()
    gate.set()
    busy.result(WAIT_S)
    assert pool.submit(lambda: "after").result(WAIT_S) == "after"
    assert ran == []
    pool.shutdown()


def test_its_threads_are_daemons_so_a_stuck_job_cannot_hold_the_process():
    pool = DaemonPool(1, "t")
    gate = threading.Event()
    pool.submit(gate.wait, WAIT_S)
    threads = [t for t in threading.enumerate() if t.name.startswith("t-")]
    assert threads and all(t.daemon for t in threads)
    gate.set()
    pool.shutdown(wait=True)
