"""A small, bounded pool of daemon threads that an event loop can hand blocking work to.

Why not concurrent.futures.ThreadPoolExecutor: its threads are joined at interpreter
exit, so one blocking call that never returns (a check that ignores its deadline) would
keep a stopping agent alive. These threads are daemons; the agent's drain decides how
long to wait for work, not the interpreter. Like ThreadPoolExecutor, threads are made on
demand (an idle one is reused first), never more than `size`, and a job cancelled before
it started never runs (`loop.run_in_executor` cancels it when its awaiter gives up).
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Executor, Future

log = logging.getLogger("agent.workers")


class DaemonPool(Executor):
    def __init__(self, size: int, name: str):
        self.size = size
        self.name = name
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._closed = False

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name} pool is shut down")
            self._jobs.put((future, fn, args, kwargs))
            if self._idle:
                self._idle -= 1  # that thread takes this job
            elif len(self._threads) < self.size:
                thread = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        return future

    def threads(self) -> int:
        with self._lock:
            return len(self._threads)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, fn, args, kwargs = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # noqa: BLE001 - handed to whoever awaits the future
                    future.set_exception(exc)
            del job, future, fn, args, kwargs
            with self._lock:
                self._idle += 1

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
