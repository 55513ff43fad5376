"""The heartbeat after an API outage (issue 16, defect 4): it comes at once, not at the
end of a backoff capped at the interval, which left agents alive all along past the
API's 30 s TTL and so offline."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime

from agent.api import ApiUnavailable
from agent.heartbeat import RETRY_CAP_S, Heartbeat
from tests.integration.agent_harness import wait_until


class ScriptedApi:
    """Stands in for the API: down until `up` is set; counts heartbeats."""

    def __init__(self):
        self.up = threading.Event()
        self.attempts = 0
        self.beats = 0
        self.on_answer = None

    def heartbeat(self, current_tasks, version, capabilities, clock_offset_ms=None):
        self.attempts += 1
        if not self.up.is_set():
            raise ApiUnavailable(None, "unreachable", "connection refused")
        self.beats += 1
        return {"server_time": datetime.now(UTC).isoformat()}


def test_retries_while_the_api_is_down_wait_at_most_the_retry_cap_whatever_the_interval():
    heartbeat = Heartbeat(ScriptedApi(), 60.0, "t", ["tcp"], lambda: 0, threading.Event())
    assert max(itertools.islice(heartbeat.retry_delays(), 50)) <= RETRY_CAP_S < heartbeat.interval_s / 10


def test_any_answer_from_the_api_wakes_a_failing_heartbeat_at_once():
    api, stop = ScriptedApi(), threading.Event()
    heartbeat = Heartbeat(api, 60.0, "t", ["tcp"], lambda: 0, stop)
    heartbeat.retry_delays = lambda: itertools.repeat(3600.0)  # without a wake it would wait an hour
    heartbeat.start()
    try:
        wait_until(lambda: api.attempts >= 1 and heartbeat.failing, "a failed heartbeat")
        api.up.set()
        api.on_answer()  # as ApiClient does when a result or start reaches the API
        wait_until(lambda: api.beats == 1, "the heartbeat right after the API answered", timeout=5)
        assert heartbeat.failing is False
    finally:
        stop.set()
        heartbeat.join(5)
