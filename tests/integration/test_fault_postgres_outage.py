"""PostgreSQL down under light load (issue 16, suite 3): the test's own PostgreSQL is stopped (every
connection cut) for OUTAGE_S, with checks in flight, and started again on the same port.

- Every answer meanwhile is a 503 in the JSON error shape with `Retry-After`, never a 500, and
  `/health` says `database: down`.
- The agents finish the checks they were running, keep the results in their spool, and deliver each
  exactly once after the recovery; no check is run again, and no agent or API process is restarted.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests

from tests.integration.agent_harness import CountingTcpListener, Db, SlowHttpServer, ToggleProxy, wait_until
from tests.integration.fault_harness import ApiProcess, Fleet, OwnPostgres, api_env, create, fault_procs  # noqa: F401

AGENTS = 2
SLOW_CHECKS = 2  # running on every agent when PostgreSQL goes
OUTAGE_S = float(os.environ.get("HC_TEST_OUTAGE_S", "20"))  # the 20 s; shorter for a quick local run


def _unavailable(resp: requests.Response) -> str | None:
    """What is wrong with an answer given while PostgreSQL is down (None: a proper 503)."""
    if resp.status_code != 503:
        return f"{resp.request.method} {resp.request.path_url}: {resp.status_code} {resp.text[:200]}"
    if not resp.headers.get("Retry-After", "").isdigit():
        return f"{resp.request.path_url}: 503 without Retry-After"
    body = resp.json()
    if resp.request.path_url == "/health":
        return None if body["database"] == "down" and body["status"] == "degraded" else f"/health said {body}"
    return None if body["error"]["code"] == "service_unavailable" and body["error"]["message"] else f"{body}"


def _light_load(api_url: str, check_id: str, task_id: str, agent_id: str) -> list[requests.Response]:
    """One of each kind of request a user makes, and an agent-authenticated one, at once."""
    calls = [
        ("POST", "/api/checks", {"target": "127.0.0.1", "checks": ["tcp"]}, {}),
        ("GET", f"/api/checks/{check_id}", None, {}),
        ("GET", "/api/checks", None, {}),
        ("GET", "/api/agents", None, {}),
        ("GET", f"/api/agents/{agent_id}", None, {}),
        ("GET", f"/api/tasks/{task_id}", None, {}),
        ("GET", "/health", None, {}),
        ("POST", "/api/agents/heartbeat", {}, {"X-Agent-Token": "x" * 43}),
    ]
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(
            pool.map(lambda c: requests.request(c[0], f"{api_url}{c[1]}", json=c[2], headers=c[3], timeout=30), calls)
        )


def test_postgres_outage_is_503_with_retry_after_and_agents_deliver_after_it_exactly_once(
    redis_url, clean_state, tmp_path, fault_procs
):
    pg = OwnPostgres(tmp_path / "pg")
    fault_procs.append(pg.start())
    db = Db(pg.url)
    api = ApiProcess(api_env(pg.url, redis_url), tmp_path / "api.log")
    fault_procs.append(api.start())
    slow, listener = SlowHttpServer(), CountingTcpListener()
    fault_procs.extend([slow, listener])
    fleet = Fleet(tmp_path, api.url, redis_url, fault_procs)
    fleet.start(AGENTS)
    ids = fleet.wait_online(db)
    pids = [a.pid for a in fleet.agents]

    body = {"target": slow.url, "checks": ["http"], "options": {"http": {"timeout": OUTAGE_S + 30}}}
    checks = [create(api.url, body) for _ in range(SLOW_CHECKS)]
    task_ids = sorted(t["task_id"] for c in checks for t in c["tasks"])
    assert len(task_ids) == SLOW_CHECKS * AGENTS
    wait_until(lambda: slow.requests == len(task_ids), "every agent to be running the checks", diagnostics=fleet.tails)

    pg.stop()
    down_until = time.monotonic() + OUTAGE_S
    slow.release()  # the checks end while PostgreSQL is down: their results cannot be stored
    spooled = lambda: sorted(t for a in fleet.agents for t in a.spooled())  # noqa: E731
    wrong: list[str] = []
    rounds = 0

    def outage_over() -> bool:
        """Down for OUTAGE_S under this load, and until every result waits in its agent's spool."""
        nonlocal rounds, wrong
        answers = _light_load(api.url, checks[0]["check_id"], task_ids[0], ids[fleet.agents[0].name])
        wrong += [w for w in map(_unavailable, answers) if w]
        rounds += 1
        return time.monotonic() >= down_until and spooled() == task_ids

    wait_until(outage_over, "the results to be spooled", timeout=OUTAGE_S + 90, diagnostics=fleet.tails)
    assert wrong == [], wrong[:5]
    assert all(a.running() for a in fleet.agents)

    pg.server.start(log=lambda *_: None)  # the same cluster on the same port, accepting connections
    back = time.monotonic()
    # The API serves again at once: its first request after the recovery gets a connection, however
    # long the outage was (a pool that backs off its reconnection attempts would answer 503 still).
    first = requests.get(f"{api.url}/api/agents", timeout=30)
    assert first.status_code == 200, first.text
    health = requests.get(f"{api.url}/health", timeout=30)
    assert health.status_code == 200 and health.json()["database"] == "up", health.text

    def delivered() -> bool:
        rows = db.all("SELECT status FROM check_tasks WHERE id = ANY(%s::uuid[])", task_ids)
        return spooled() == [] and [r["status"] for r in rows] == ["completed"] * len(task_ids)

    wait_until(delivered, "the spooled results to be delivered", diagnostics=fleet.tails)
    print(f"outage {OUTAGE_S:.0f} s, {rounds} rounds of requests; delivered {time.monotonic() - back:.1f} s after")
    results = db.all("SELECT task_id::text, success FROM check_results WHERE task_id = ANY(%s::uuid[])", task_ids)
    assert sorted(r["task_id"] for r in results) == task_ids  # exactly one result per task
    assert all(r["success"] for r in results)
    assert slow.requests == len(task_ids)  # no check ran twice
    for check in checks:
        assert requests.get(f"{api.url}/api/checks/{check['check_id']}", timeout=15).json()["status"] == "completed"

    # Service as before, with the same processes: a new check runs on every agent.
    fresh = create(api.url, {"target": "127.0.0.1", "checks": ["tcp"], "options": {"tcp": {"port": listener.port}}})
    assert len(fresh["tasks"]) == AGENTS
    wait_until(
        lambda: db.one("SELECT status FROM checks WHERE id = %s", fresh["check_id"])["status"] == "completed",
        "a check created after the recovery to complete",
        diagnostics=fleet.tails,
    )
    assert [a.pid for a in fleet.agents] == pids and all(a.running() for a in fleet.agents)
    assert api.running()
    assert rounds >= 1


POOL_OUTAGE_S = 8  # past the pool's third retry (1 + 2 + 4 s): its fourth would come 7 s later


def test_the_first_transaction_after_an_outage_gets_a_connection(settings, pg_url):
    """The API's pool (chalicelib.db) does not sit out a long reconnection backoff: once PostgreSQL is
    back, the next transaction is served. Before, the pool retried a failed connection for 5 min with
    a growing backoff, so after this outage its next try came 7 s later, past the request's 5 s wait,
    and the request was a 503 although PostgreSQL was up. Here PostgreSQL is reached through a proxy of
    the test's own, which the test closes (refusing, and cutting open connections) and opens again."""
    from chalicelib import config
    from chalicelib.db import DatabaseUnavailable, close_pool, transaction

    parts = urlsplit(pg_url)
    proxy = ToggleProxy(parts.port)
    proxy.open()
    try:
        config.reset_settings(database_url=parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl())
        with transaction() as conn:
            conn.execute("SELECT 1")  # the pool holds a connection
        proxy.close()
        with pytest.raises(DatabaseUnavailable), transaction(timeout=1) as conn:
            conn.execute("SELECT 1")  # the pool finds it broken and starts reconnecting
        hold_outage(POOL_OUTAGE_S)
        proxy.open()
        with transaction() as conn:
            assert conn.execute("SELECT 1 AS one").fetchone()["one"] == 1
    finally:
        close_pool()
        proxy.close()


def hold_outage(seconds: float) -> None:
    """Keep the fault in place this long: the outage's length is what the test is about, so this wait
    stands for no condition (nothing could be polled instead)."""
    time.sleep(seconds)
