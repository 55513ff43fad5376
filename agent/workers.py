"""A small, bounded pool of daemon threads that an event loop can hand blocking work to.

Why not concurrent.futures.ThreadPoolExecutor: its threads are joined at interpreter
exit, so one blocking call that never returns (a check that ignores its deadline) would
keep a stopping agent alive. These threads are daemons; the agent's drain decides how
long to wait for work, not the interpreter. Like ThreadPoolExecutor, threads are made on
demand (an idle one is reused first), never more than `size`, and a job cancelled before
it started never runs (`loop.run_in_executor` cancels it when its awaiter gives up).
Unlike it, a thread idle for IDLE_S ends: an idle agent holds only the threads it needs.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Executor, Future

log = logging.getLogger("agent.workers")

IDLE_S = 2.0
_IDLE = object()


class DaemonPool(Executor):
    def __init__(self, size: int, name: str, idle_s: float = IDLE_S):
        self.size = size
        self.name = name
        self.idle_s = idle_s
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._waiting = 0  # threads blocked waiting for a job
        self._queued = 0  # jobs no thread has taken yet
        self._made = 0
        self._closed = False

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name} pool is shut down")
            self._queued += 1
            self._jobs.put((future, fn, args, kwargs))
            if self._waiting < self._queued and len(self._threads) < self.size:
                self._made += 1
                thread = threading.Thread(target=self._work, name=f"{self.name}-{self._made}", daemon=True)
                self._threads.add(thread)
                thread.start()
        return future

    def threads(self) -> int:
        with self._lock:
            return len(self._threads)

    def _next_job(self):
        """The next job, or None when this thread should end (idle too long, or shut down)."""
        while True:
            with self._lock:
                self._waiting += 1
            try:
                job = self._jobs.get(timeout=self.idle_s)
            except queue.Empty:
                job = _IDLE
            with self._lock:
                self._waiting -= 1
                if job is _IDLE and self._queued > 0 and not self._closed:
                    continue  # a job came as the wait ended: take it
                if job is _IDLE or job is None:
                    self._threads.discard(threading.current_thread())
                    return None
                self._queued -= 1
                return job

    def _work(self) -> None:
        while True:
            job = self._next_job()
            if job is None:
                return
            future, fn, args, kwargs = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # noqa: BLE001 - handed to whoever awaits the future
                    future.set_exception(exc)
            del job, future, fn, args, kwargs

    def shutdown(self, wait: bool = False, *, cancel_futures: bool = False) -> None:
        """Stop the threads once the queued jobs are done (`wait`: join them)."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(None)
        if wait:
            for thread in threads:
                thread.join()
