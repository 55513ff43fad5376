"""The agent against a slow-drip HTTP server (issue 16, defect 2, as it was seen).

Checks whose server promises a huge body and sends a byte at a time used to report
`timeout` while their threads kept running: the agent's threads and open files grew past
its concurrency limit. Now a check holds no thread at all (it waits on the agent's event
loop), the descriptors stay within the concurrency's worth (plus a small bound), and both
return to their baseline when the checks end.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from agent.queue import MAX_CONNECTIONS
from agent.runner import TASK_WORKERS
from tests.integration.agent_harness import create_check, db, start_agent, wait_online, wait_until  # noqa: F401
from tests.integration.test_check_deadline import BODY_PREFIX, DripServer

CONCURRENCY = 4
CHECKS = 12
# Threads: none per check (checks wait on the agent's event loop), and at most one task
# worker per running task while it talks to the API. Descriptors: two per running task (the
# check's socket and a task worker's connection to the API), and a few more for a lookup,
# however many checks have come and gone.
SMALL_BOUND = 4
# The baseline is taken after a warm-up of CONCURRENCY checks at once, so that the agent's
# connections are at their working size. This test once failed intermittently because the
# Redis pool opened one more connection whenever acks happened to coincide; the agent's pool
# is now bounded (agent.queue.MAX_CONNECTIONS), and the test checks that bound as well.


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def fds_of(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def connections_to(pid: int, port: int) -> int:
    """The agent's TCP sockets whose remote end is 127.0.0.1:port (read from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, inode = fields[2], fields[9]
        if inode in inodes and int(remote.split(":")[1], 16) == port:
            count += 1
    return count


@pytest.fixture
def drip():
    server = DripServer(BODY_PREFIX)
    yield server
    server.close()


def _run(api_server, db, agent_id: str, url: str, count: int, peak: dict, pid: int, redis_port: int) -> list[str]:
    check_ids = [create_check(api_server, url, "http", agent_id, {"timeout": 1})["check_id"] for _ in range(count)]

    def all_done() -> bool:
        peak["threads"] = max(peak.get("threads", 0), threads_of(pid))
        peak["fds"] = max(peak.get("fds", 0), fds_of(pid))
        peak["redis"] = max(peak.get("redis", 0), connections_to(pid, redis_port))
        return all(db.task_of(c)["status"] in ("completed", "failed") for c in check_ids)

    wait_until(all_done, f"{count} slow-drip checks to end", timeout=60, interval=0.02)
    return check_ids


def test_slow_drip_checks_never_take_the_agent_past_its_concurrency(start_agent, api_server, db, drip, redis_url):
    redis_port = urlsplit(redis_url).port
    agent = start_agent("Drip", HC_CONCURRENCY=str(CONCURRENCY))
    wait_online(db, agent)
    agent_id = agent.state()["agent_id"]
    url = f"http://127.0.0.1:{drip.port}/big"
    # Warm up at full concurrency: the reaper thread, lazy imports, pools at their working size.
    _run(api_server, db, agent_id, url, CONCURRENCY, {}, agent.pid, redis_port)
    wait_until(lambda: threads_of(agent.pid) <= 8, "the agent idle after the warm-up", diagnostics=agent.tail)
    threads, fds = threads_of(agent.pid), fds_of(agent.pid)

    peak: dict = {}
    check_ids = _run(api_server, db, agent_id, url, CHECKS, peak, agent.pid, redis_port)
    kinds = [(db.results_of(c) or [{"error": db.task_of(c)["error"]}])[0]["error"]["kind"] for c in check_ids]
    assert kinds == ["timeout"] * CHECKS, kinds
    assert peak["threads"] <= threads + min(TASK_WORKERS, CONCURRENCY), peak
    assert peak["fds"] <= fds + 2 * CONCURRENCY + SMALL_BOUND, peak
    assert 1 <= peak["redis"] <= MAX_CONNECTIONS, peak
    wait_until(
        lambda: threads_of(agent.pid) <= threads and fds_of(agent.pid) <= fds,
        f"the agent back to {threads} threads and {fds} descriptors",
        timeout=10,
        diagnostics=agent.tail,
    )
