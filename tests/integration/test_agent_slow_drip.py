"""The agent against a slow-drip HTTP server (issue 16, defect 2, as it was seen).

Checks whose server promises a huge body and sends a byte at a time used to report
`timeout` while their threads kept running: the agent's threads and open files grew past
its concurrency limit. Now the agent process never holds more than its concurrency's
worth of them (plus a small bound), and returns to its baseline when the checks end.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.agent_harness import create_check, db, start_agent, wait_online, wait_until  # noqa: F401
from tests.integration.test_check_deadline import BODY_PREFIX, DripServer

CONCURRENCY = 4
CHECKS = 12
# Per running task: two threads (the task's and its check's) and two descriptors (the
# check's socket and the task thread's connection to the API); a few more for the reaper
# and a lookup, however many checks have come and gone.
SMALL_BOUND = 4


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def fds_of(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


@pytest.fixture
def drip():
    server = DripServer(BODY_PREFIX)
    yield server
    server.close()


def _run(api_server, db, agent_id: str, url: str, count: int, peak: dict, pid: int) -> list[str]:
    check_ids = [create_check(api_server, url, "http", agent_id, {"timeout": 1})["check_id"] for _ in range(count)]

    def all_done() -> bool:
        peak["threads"] = max(peak.get("threads", 0), threads_of(pid))
        peak["fds"] = max(peak.get("fds", 0), fds_of(pid))
        return all(db.task_of(c)["status"] in ("completed", "failed") for c in check_ids)

    wait_until(all_done, f"{count} slow-drip checks to end", timeout=60, interval=0.02)
    return check_ids


def test_slow_drip_checks_never_take_the_agent_past_its_concurrency(start_agent, api_server, db, drip):
    agent = start_agent("Drip", HC_CONCURRENCY=str(CONCURRENCY))
    wait_online(db, agent)
    agent_id = agent.state()["agent_id"]
    url = f"http://127.0.0.1:{drip.port}/big"
    _run(api_server, db, agent_id, url, 1, {}, agent.pid)  # warm up: the reaper thread, lazy imports
    wait_until(lambda: threads_of(agent.pid) <= 8, "the agent idle after the warm-up", diagnostics=agent.tail)
    threads, fds = threads_of(agent.pid), fds_of(agent.pid)

    peak: dict = {}
    check_ids = _run(api_server, db, agent_id, url, CHECKS, peak, agent.pid)
    kinds = [(db.results_of(c) or [{"error": db.task_of(c)["error"]}])[0]["error"]["kind"] for c in check_ids]
    assert kinds == ["timeout"] * CHECKS, kinds
    assert peak["threads"] <= threads + 2 * CONCURRENCY + SMALL_BOUND, peak
    assert peak["fds"] <= fds + 2 * CONCURRENCY + SMALL_BOUND, peak
    wait_until(
        lambda: threads_of(agent.pid) <= threads and fds_of(agent.pid) <= fds,
        f"the agent back to {threads} threads and {fds} descriptors",
        timeout=10,
        diagnostics=agent.tail,
    )
