"""The API down for 20 s (issue 16, suite 4): the agents reach the test's own API through a proxy of
the test's own, which refuses connections and cuts the open ones for 20 s, while the agents and the
sweep keep running. (A proxy rather than killing the API process, so that the outage lasts exactly
20 s: a restarted API needs seconds of its own to start, more on a busy machine.)

- Heartbeats and results resume by themselves: a result the agent produced meanwhile is delivered
  once after; no agent or scheduler is restarted.
- No agent is marked offline while its process lives, through the outage and after it.
- A check created the moment the API is back reaches every agent, with no shortfall.

The agents heart-beat at their default interval against the default 30 s TTL. The length matters here
(it is measured against the TTL), so it is the issue's 20 s, and it starts just before one agent's next
heartbeat is due: that agent's first heartbeat after it comes interval + outage + up to the 2 s retry cap
after its last one, which must be under the TTL (with the former 10 s interval it was not).
"""

from __future__ import annotations

import os
import time

import requests

from agent.config import DEFAULT_HEARTBEAT_INTERVAL_S
from tests.integration.agent_harness import CountingTcpListener, Db, SlowHttpServer, ToggleProxy, wait_until
from tests.integration.fault_harness import ApiProcess, Fleet, Scheduler, api_env, create, fault_procs  # noqa: F401

AGENTS = 3
OUTAGE_S = float(os.environ.get("HC_TEST_API_OUTAGE_S", "20"))
SWEEP_TIME_SCALE = 20  # the sweep (which marks agents offline) every 3 s, so it runs during the outage


def _offline(db: Db) -> list[str]:
    """Agents the sweep marked offline, or whose last heartbeat is past the TTL."""
    rows = db.all("SELECT name FROM agents WHERE status <> 'online' OR last_heartbeat < now() - interval '30 seconds'")
    return [r["name"] for r in rows]


def test_api_outage_agents_stay_online_and_heartbeats_and_results_resume(
    pg_url, redis_url, clean_state, tmp_path, fault_procs
):
    db = Db(pg_url)
    env = api_env(pg_url, redis_url)
    api = ApiProcess(env, tmp_path / "api.log")
    fault_procs.append(api.start())
    scheduler = Scheduler(env, tmp_path / "scheduler.log", SWEEP_TIME_SCALE)
    fault_procs.append(scheduler.start())
    slow, listener = SlowHttpServer(), CountingTcpListener()
    fault_procs.extend([slow, listener])
    proxy = ToggleProxy(api.port)  # the agents' way to the API
    proxy.open()
    fault_procs.append(proxy)
    interval = str(DEFAULT_HEARTBEAT_INTERVAL_S)
    fleet = Fleet(tmp_path, proxy.url, redis_url, fault_procs, HC_HEARTBEAT_INTERVAL_S=interval)
    fleet.start(AGENTS)
    fleet.wait_online(db)
    pids = [a.pid for a in fleet.agents]

    running = create(api.url, {"target": slow.url, "checks": ["http"], "options": {"http": {"timeout": 60}}})
    wait_until(lambda: slow.requests == AGENTS, "every agent to be running the check", diagnostics=fleet.tails)

    # The worst moment for one agent: just before its next heartbeat is due, so that its silence is the
    # whole interval plus the outage plus the retry that finds the API back.
    first = fleet.agents[0].name
    wait_until(
        lambda: (
            db.one("SELECT extract(epoch FROM now() - last_heartbeat) AS age FROM agents WHERE name = %s", first)["age"]
            >= DEFAULT_HEARTBEAT_INTERVAL_S - 0.3
        ),
        f"{first}'s next heartbeat to be due",
        interval=0.02,
    )
    proxy.close()
    back_at = time.monotonic() + OUTAGE_S
    slow.release()  # the check ends during the outage: its results wait in the agents' spools
    sweeps = scheduler.runs()

    def outage_over() -> bool:
        assert _offline(db) == [], f"marked offline during the outage: {_offline(db)}"
        assert all(a.running() for a in fleet.agents)
        return time.monotonic() >= back_at

    wait_until(outage_over, f"{OUTAGE_S:.0f} s of outage", timeout=OUTAGE_S + 10, interval=0.5)
    assert scheduler.runs() > sweeps  # the sweep ran meanwhile, and found no agent to mark offline
    proxy.open()  # on the same port

    fresh = create(api.url, {"target": "127.0.0.1", "checks": ["tcp"], "options": {"tcp": {"port": listener.port}}})
    assert len(fresh["tasks"]) == AGENTS, fresh  # every agent, at once
    assert not (fresh.get("selection") or {}).get("shortfall"), fresh

    def resumed() -> bool:
        assert _offline(db) == [], f"marked offline after the outage: {_offline(db)}"
        statuses = db.all(
            "SELECT status FROM checks WHERE id = ANY(%s::uuid[])", [running["check_id"], fresh["check_id"]]
        )
        return [r["status"] for r in statuses] == ["completed", "completed"]

    wait_until(resumed, "both checks to complete", diagnostics=fleet.tails)
    results = db.all(
        "SELECT success FROM check_results WHERE check_id = ANY(%s::uuid[])", [running["check_id"], fresh["check_id"]]
    )
    assert [r["success"] for r in results] == [True] * 2 * AGENTS  # one each, none twice
    assert slow.requests == AGENTS  # the interrupted delivery did not run the check again

    # Heartbeats resumed: each agent's is newer than the API's restart.
    restarted = db.one("SELECT now() AS t")["t"]
    wait_until(
        lambda: all(r["last_heartbeat"] > restarted for r in db.all("SELECT last_heartbeat FROM agents")),
        "a heartbeat from every agent",
        diagnostics=fleet.tails,
    )
    agents = requests.get(f"{api.url}/api/agents", timeout=15).json()["items"]
    assert [a["status"] for a in agents] == ["online"] * AGENTS
    assert [a.pid for a in fleet.agents] == pids
