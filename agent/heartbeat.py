"""The heartbeat: `POST /api/agents/heartbeat` every interval, in its own thread.

It runs beside the checks, so a busy agent still shows online. When the API
does not answer, it tries again sooner, with backoff capped at RETRY_CAP_S
(not the interval: after an outage the first heartbeat must come at once,
or an agent alive all along is past the API's 30 s TTL and looks offline),
and it never gives up while the agent runs. Any other call that reaches the
API (a result, a start) wakes it at once too (`ApiClient.on_answer`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from agent.api import ApiClient, ApiError, ApiRejected, backoff_delays
from agent.clock import ClockOffset

log = logging.getLogger("agent.heartbeat")

# The longest wait between heartbeat attempts while the API does not answer.
RETRY_CAP_S = 2.0
# How often a wait looks at the stop event (the wake event is the usual way out).
_STOP_POLL_S = 0.25


class Heartbeat(threading.Thread):
    def __init__(
        self,
        api: ApiClient,
        interval_s: float,
        version: str,
        capabilities: list[str],
        current_tasks: Callable[[], int],
        stop: threading.Event,
        on_recovery: Callable[[], None] | None = None,
        on_accepted: Callable[[], None] | None = None,
    ):
        super().__init__(name="heartbeat", daemon=True)
        self.api = api
        self.interval_s = interval_s
        self.version = version
        self.capabilities = capabilities
        self.current_tasks = current_tasks
        self.stop = stop
        self.on_recovery = on_recovery  # the API answers again: e.g. wake the spool delivery
        self.on_accepted = on_accepted  # every accepted heartbeat (the metrics' heartbeat age)
        self.sent = 0  # successful heartbeats, for tests and logs
        self.sent_event = threading.Event()
        self.failing = False
        self.clock = ClockOffset()  # from each reply's server_time; reported in the next heartbeat
        self._wake = threading.Event()
        api.on_answer = self._api_answered

    def _api_answered(self) -> None:
        """Another thread's call reached the API: while failing, beat now, not at the next retry."""
        if self.failing:
            self._wake.set()

    def retry_delays(self):
        """The waits between attempts while the API does not answer."""
        return backoff_delays(base=0.5, cap=min(RETRY_CAP_S, self.interval_s))

    def _wait(self, seconds: float) -> None:
        """Sleep `seconds`, or less when woken or stopped."""
        end = time.monotonic() + seconds
        while not self.stop.is_set():
            left = end - time.monotonic()
            if left <= 0 or self._wake.wait(min(left, _STOP_POLL_S)):
                break
        self._wake.clear()

    def beat(self) -> None:
        sent = time.time()
        reply = self.api.heartbeat(self.current_tasks(), self.version, self.capabilities, self.clock.offset_ms)
        self.clock.add_sample(sent, time.time(), reply.get("server_time"))
        self.sent += 1
        self.sent_event.set()
        if self.on_accepted is not None:
            self.on_accepted()

    def run(self) -> None:
        delays = None
        while not self.stop.is_set():
            try:
                self.beat()
                if self.failing:
                    log.info("heartbeat delivered again")
                    if self.on_recovery is not None:
                        self.on_recovery()
                self.failing, delays = False, None
                wait = self.interval_s
            except ApiError as exc:
                if not self.failing:
                    level = logging.ERROR if isinstance(exc, ApiRejected) else logging.WARNING
                    log.log(level, "heartbeat failed: %s; retrying with backoff", exc)
                self.failing = True
                delays = delays or self.retry_delays()
                wait = next(delays)
            except Exception:  # noqa: BLE001 - the heartbeat must outlive any surprise
                log.exception("heartbeat crashed; retrying")
                wait = self.interval_s
            self._wait(wait)
