"""Redis lost with its data (issue 16, suite 2): the test's own Redis is killed, its files deleted, and
an empty one started on the same port, with checks in flight and checks created while it is down.

Every check completes with a result from its agents, and the rate limits and heartbeats work again,
without restarting the API or the agents. In flight at the loss: tasks an agent is running (held by a
slow server) and tasks still waiting in their stream, whose entries are lost with the data.
"""

from __future__ import annotations

import redis as redis_lib
import requests

from chalicelib.protocol import heartbeat_key
from tests.integration.agent_harness import (
    CountingTcpListener,
    Db,
    SlowHttpServer,
    wait_until,
)
from tests.integration.fault_harness import ApiProcess, Fleet, OwnRedis, api_env, create, fault_procs  # noqa: F401

AGENTS = 2
# One check at a time per agent, so that some tasks wait in the stream when Redis is lost.
CONCURRENCY = 1
SLOW_CHECKS = 2  # each agent runs one and has the other waiting in its stream
DURING = 3  # checks created while Redis is down
CHECKS_PER_HOUR = 3  # the quota, reached before the loss and again after it


def _tasks(db: Db, check_ids: list[str]) -> list[dict]:
    return db.all(
        """SELECT t.id::text, t.check_id::text, t.status, t.stream_id, r.success, t.error
           FROM check_tasks t LEFT JOIN check_results r ON r.task_id = t.id
           WHERE t.check_id = ANY(%s::uuid[])""",
        check_ids,
    )


def _post(api_url: str, body: dict) -> requests.Response:
    return requests.post(f"{api_url}/api/checks", json=body, timeout=15)


def test_redis_lost_with_its_data_loses_no_check_and_limits_and_heartbeats_recover(
    pg_url, clean_state, tmp_path, fault_procs
):
    db = Db(pg_url)
    redis = OwnRedis(tmp_path / "redis").start()
    fault_procs.append(redis)
    api = ApiProcess(api_env(pg_url, redis.url, HC_CHECKS_PER_HOUR=str(CHECKS_PER_HOUR)), tmp_path / "api.log")
    fault_procs.append(api.start())
    slow, listener = SlowHttpServer(), CountingTcpListener()
    fault_procs.extend([slow, listener])
    fleet = Fleet(tmp_path, api.url, redis.url, fault_procs, HC_CONCURRENCY=str(CONCURRENCY))
    fleet.start(AGENTS)
    agent_ids = fleet.wait_online(db)
    pids = [a.pid for a in fleet.agents]
    tcp = {"target": "127.0.0.1", "checks": ["tcp"], "options": {"tcp": {"port": listener.port}}}

    # In flight: each agent runs one slow check and has the other slow one and a tcp one in its stream.
    before = [create(api.url, {"target": slow.url, "checks": ["http"], "options": {"http": {"timeout": 30}}})]
    before += [create(api.url, {"target": slow.url, "checks": ["http"], "options": {"http": {"timeout": 30}}})]
    before += [create(api.url, tcp)]
    check_ids = [c["check_id"] for c in before]
    assert all(len(c["tasks"]) == AGENTS for c in before)
    wait_until(lambda: slow.requests == AGENTS, "each agent to be running a slow check", diagnostics=fleet.tails)
    refused = _post(api.url, tcp)
    assert refused.status_code == 429 and refused.headers["Retry-After"], refused.text  # the quota holds

    redis.lose()
    wait_until(
        lambda: requests.get(f"{api.url}/health", timeout=10).json()["redis"] == "down", "/health to see Redis down"
    )
    during = [create(api.url, tcp) for _ in range(DURING)]  # the quota cannot be counted: not refused
    check_ids += [c["check_id"] for c in during]
    assert all(len(c["tasks"]) == AGENTS for c in during), during  # both agents still online

    redis.start()  # empty, on the same port
    slow.release()
    tasks_of = len(check_ids) * AGENTS

    def all_done() -> bool:
        rows = _tasks(db, check_ids)
        return len(rows) == tasks_of and all(r["status"] in ("completed", "failed") for r in rows)

    wait_until(all_done, "every check's tasks to finish", timeout=90, diagnostics=fleet.tails)
    rows = _tasks(db, check_ids)
    assert [r for r in rows if not (r["status"] == "completed" and r["success"])] == []  # a result, not a timeout
    statuses = {requests.get(f"{api.url}/api/checks/{c}", timeout=10).json()["status"] for c in check_ids}
    assert statuses == {"completed"}

    # Heartbeats: every agent's key is back in the new Redis, and the agents show online.
    client = redis_lib.Redis.from_url(redis.url)
    wait_until(
        lambda: all(client.exists(heartbeat_key(a)) for a in agent_ids.values()), "the heartbeat keys to be back"
    )
    client.close()
    agents = requests.get(f"{api.url}/api/agents", timeout=10).json()["items"]
    assert sorted(a["status"] for a in agents) == ["online"] * AGENTS

    # Rate limits: counted again from zero (the counts were lost with the data), and enforced.
    after = [_post(api.url, tcp) for _ in range(CHECKS_PER_HOUR + 1)]
    assert [r.status_code for r in after] == [202] * CHECKS_PER_HOUR + [429], [r.text for r in after]
    assert after[-1].headers["Retry-After"] and after[-1].json()["error"]["code"] == "rate_limited"
    wait_until(
        lambda: all(r["status"] == "completed" for r in _tasks(db, [a.json()["check_id"] for a in after[:-1]])),
        "the checks created after the recovery to complete",
        diagnostics=fleet.tails,
    )

    # Nothing was restarted to get here.
    assert [a.pid for a in fleet.agents] == pids and all(a.running() for a in fleet.agents)
    assert api.running()
