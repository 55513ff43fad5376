"""The agent's estimate of how far its clock is from the API's.

Task deadlines (`deadline_ms`) are the API's wall-clock time; an agent whose
clock runs 40 s fast would find every task "expired" before running it. Each
heartbeat reply carries the API's `server_time`, so each heartbeat is an NTP-like
sample: offset = the local midpoint of the request - the server time (positive:
the agent's clock is ahead). The sample of
the shortest round trip among the last few is the best estimate (its midpoint is
the least uncertain), as NTP's clock filter keeps.

The runner reads deadlines through `server_now_ms()`. Past MAX_CLOCK_OFFSET_S the
agent refuses work (and says so, loudly, in its log and to the API, which stops
choosing it): its TLS verdicts (validity dates, `days_left`) and timestamps use
the local clock and would be wrong.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import datetime

from chalicelib.protocol import MAX_CLOCK_OFFSET_S

log = logging.getLogger("agent.clock")

SAMPLES = 8
# A sample this far from the estimate (beyond its own round trip) means a clock was stepped.
STEP_MS = 1000


class ClockOffset:
    def __init__(self):
        self._samples: deque[tuple[float, float]] = deque(maxlen=SAMPLES)  # (round trip s, offset ms)
        self._lock = threading.Lock()
        self._refusing = False

    def add_sample(self, sent_s: float, received_s: float, server_time: str | None) -> None:
        """One heartbeat: local wall-clock times around the request, and the reply's server_time."""
        try:
            server_s = datetime.fromisoformat(str(server_time).replace("Z", "+00:00")).timestamp()
        except (TypeError, ValueError):
            return  # an API without server_time: no estimate
        offset_ms = ((sent_s + received_s) / 2 - server_s) * 1000
        rtt_s = received_s - sent_s
        with self._lock:
            if self._samples and abs(offset_ms - min(self._samples)[1]) > max(STEP_MS, rtt_s * 1000):
                self._samples.clear()  # a clock stepped (NTP, an operator): older samples are wrong now
            self._samples.append((rtt_s, offset_ms))
        self._log_refusal_change()

    @property
    def offset_ms(self) -> float | None:
        """Local minus server, in ms (positive: the agent's clock is ahead); None before any sample."""
        with self._lock:
            if not self._samples:
                return None
            return round(min(self._samples)[1], 1)

    def server_now_ms(self) -> int:
        """The API's clock now, as best known."""
        return int(time.time() * 1000 - (self.offset_ms or 0))

    def refusing(self) -> bool:
        """True while the offset is past the bound: take no work."""
        offset = self.offset_ms
        return offset is not None and abs(offset) > MAX_CLOCK_OFFSET_S * 1000

    def _log_refusal_change(self) -> None:
        refusing = self.refusing()
        if refusing and not self._refusing:
            log.error(
                "the local clock is %.1f s off the API's (bound %d s): refusing work until it is fixed "
                "(check NTP / chrony)",
                (self.offset_ms or 0) / 1000,
                MAX_CLOCK_OFFSET_S,
            )
        elif self._refusing and not refusing:
            log.warning(
                "the local clock is within %d s of the API's again (%.1f s off): taking work",
                MAX_CLOCK_OFFSET_S,
                (self.offset_ms or 0) / 1000,
            )
        self._refusing = refusing
