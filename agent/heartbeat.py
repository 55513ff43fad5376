"""The heartbeat: `POST /api/agents/heartbeat` every interval, in its own thread.

It runs beside the checks, so a busy agent still shows online. When the API
does not answer, it tries again sooner, with backoff capped at the interval,
and it never gives up while the agent runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from agent.api import ApiClient, ApiError, ApiRejected, backoff_delays

log = logging.getLogger("agent.heartbeat")


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

    def beat(self) -> None:
        self.api.heartbeat(self.current_tasks(), self.version, self.capabilities)
        self.sent += 1
        self.sent_event.set()
        if self.on_accepted is not None:
            self.on_accepted()

    def run(self) -> None:
        delays = None
        failing = False
        while not self.stop.is_set():
            try:
                self.beat()
                if failing:
                    log.info("heartbeat delivered again")
                    if self.on_recovery is not None:
                        self.on_recovery()
                failing, delays = False, None
                wait = self.interval_s
            except ApiError as exc:
                if not failing:
                    level = logging.ERROR if isinstance(exc, ApiRejected) else logging.WARNING
                    log.log(level, "heartbeat failed: %s; retrying with backoff", exc)
                failing = True
                delays = delays or backoff_delays(base=0.5, cap=self.interval_s)
                wait = next(delays)
            except Exception:  # noqa: BLE001 - the heartbeat must outlive any surprise
                log.exception("heartbeat crashed; retrying")
                wait = self.interval_s
            self.stop.wait(wait)
