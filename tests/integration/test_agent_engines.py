"""An agent of several engine processes (HC_ENGINES, agent/engines.py): one stream, one consumer per
engine, the concurrency shared among them, one heartbeat with their tasks summed; a stop drains them
all; a crash loses nothing, and no engine takes a live sibling's entries."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import redis as redis_lib

from agent.queue import TaskQueue, engine_consumer
from chalicelib.protocol import STREAM_GROUP, task_stream_key
from tests.integration.agent_harness import (
    create_check,
    db,  # noqa: F401 (pytest fixture)
    proxy,  # noqa: F401 (pytest fixture)
    slow_http,  # noqa: F401 (pytest fixture)
    start_agent,  # noqa: F401 (pytest fixture)
    stream_pending,  # noqa: F401 (pytest fixture)
    tcp_listener,  # noqa: F401 (pytest fixture)
    wait_online,
    wait_until,
)

TWO = {"HC_ENGINES": "2", "HC_CONCURRENCY": "4", "HC_GRACE_PERIOD_S": "60"}  # two engines of 2 tasks each


def engine_pids(agent) -> list[int]:
    children = Path(f"/proc/{agent.pid}/task/{agent.pid}/children").read_text().split()
    return [int(pid) for pid in children]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def pending_by_consumer(redis_url: str, agent_id: str) -> dict[str, int]:
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    try:
        consumers = client.xinfo_consumers(task_stream_key(agent_id), STREAM_GROUP)
    finally:
        client.close()
    return {c["name"]: c["pending"] for c in consumers if c["pending"]}


def hold_four(api_server, db, slow_http, agent) -> tuple[str, list[str]]:
    """Four slow checks, held by the slow server: two in each engine (each runs at most two)."""
    agent_id = agent.state()["agent_id"]
    checks = [create_check(api_server, slow_http.url, "http", agent_id, {"timeout": 30})["check_id"] for _ in range(4)]
    wait_until(lambda: slow_http.requests == 4, "four checks in flight over two engines", diagnostics=agent.tail)
    return agent_id, checks


def start_holding_four(start_agent, api_server, db, slow_http, name: str, **env: str):
    """A two-engine agent, online, with four slow checks in flight: (agent, its id, the checks)."""
    agent = start_agent(name, **TWO, **env)
    wait_online(db, agent)
    agent_id, held = hold_four(api_server, db, slow_http, agent)
    return agent, agent_id, held


def wait_both_draining(agent, what: str = "both engines to start draining") -> None:
    wait_until(lambda: agent.log().count("stopping: no new tasks running=2") == 2, what, diagnostics=agent.tail)


def assert_each_stored_once(db, checks: list[str]) -> None:
    for check_id in checks:
        assert db.task_of(check_id)["status"] == "completed", check_id
        (result,) = db.results_of(check_id)
        assert result["success"] is True and result["data"]["status_code"] == 200


def test_two_engines_share_the_stream_and_one_heartbeat_reports_their_sum(
    start_agent, api_server, db, slow_http, tcp_listener, stream_pending, redis_url
):
    agent = start_agent("Twin", **TWO)
    wait_online(db, agent)
    assert len(engine_pids(agent)) == 2
    agent_id, held = hold_four(api_server, db, slow_http, agent)
    # Each engine holds its share: two entries pending under each consumer name.
    assert pending_by_consumer(redis_url, agent_id) == {"Twin": 2, engine_consumer("Twin", 1): 2}
    wait_until(
        lambda: db.agent_named("Twin")["current_tasks"] == 4,
        "the supervisor's heartbeat to report both engines' tasks (4)",
        diagnostics=agent.tail,
    )
    slow_http.release()
    quick = [
        create_check(api_server, "127.0.0.1", "tcp", agent_id, {"port": tcp_listener.port})["check_id"]
        for _ in range(20)
    ]
    wait_until(
        lambda: all(db.task_of(c)["status"] == "completed" for c in held + quick),
        "every task to complete",
        diagnostics=agent.tail,
    )
    assert_each_stored_once(db, held)
    for check_id in quick:
        (result,) = db.results_of(check_id)
        assert result["success"] is True
    assert tcp_listener.accepted == 20
    wait_until(lambda: stream_pending(agent_id) == 0, "every entry acknowledged", diagnostics=agent.tail)
    assert slow_http.requests == 4


def test_sigterm_drains_every_engine_and_exits_0(start_agent, api_server, db, slow_http, stream_pending):
    agent, agent_id, held = start_holding_four(start_agent, api_server, db, slow_http, "TwinDrain")

    agent.signal(signal.SIGTERM)
    wait_both_draining(agent)
    assert agent.running()
    slow_http.release()
    assert agent.wait() == 0, agent.tail()
    assert_each_stored_once(db, held)
    assert stream_pending(agent_id) == 0


def test_a_second_sigterm_fails_the_running_checks_of_every_engine(
    start_agent, api_server, db, slow_http, stream_pending
):
    agent, agent_id, held = start_holding_four(start_agent, api_server, db, slow_http, "TwinAbort")

    agent.signal(signal.SIGTERM)
    wait_both_draining(agent)
    for pid in engine_pids(agent):  # systemd's way: the whole control group gets the stop too
        os.kill(pid, signal.SIGTERM)
    assert agent.running()  # the same first stop, not a second
    agent.signal(signal.SIGTERM)
    assert agent.wait() == 0, agent.tail()
    for check_id in held:
        (result,) = db.results_of(check_id)
        assert result["success"] is False and result["error"]["kind"] == "agent_offline", result
    assert stream_pending(agent_id) == 0
    slow_http.release()


def test_killed_engines_take_back_their_own_entries_and_lose_nothing(
    start_agent, api_server, db, slow_http, stream_pending, redis_url
):
    agent, agent_id, held = start_holding_four(start_agent, api_server, db, slow_http, "TwinCrash")
    engines = engine_pids(agent)
    for pid in [*engines, agent.pid]:
        os.kill(pid, signal.SIGKILL)
    assert agent.wait() == -signal.SIGKILL
    wait_until(lambda: not any(alive(pid) for pid in engines), "the engines to be gone")
    assert stream_pending(agent_id) == 4

    agent.start()
    # Restarted, each engine runs its own entries again; none took its sibling's.
    wait_until(lambda: slow_http.requests == 8, "the four entries to run again", diagnostics=agent.tail)
    assert pending_by_consumer(redis_url, agent_id) == {"TwinCrash": 2, engine_consumer("TwinCrash", 1): 2}
    slow_http.release()
    wait_until(
        lambda: all(db.task_of(c)["status"] == "completed" for c in held), "the tasks to finish", diagnostics=agent.tail
    )
    assert_each_stored_once(db, held)
    wait_until(lambda: stream_pending(agent_id) == 0, "every entry acknowledged", diagnostics=agent.tail)


def test_one_engine_after_two_takes_over_the_second_engines_entries(
    start_agent, api_server, db, slow_http, stream_pending
):
    agent, agent_id, held = start_holding_four(start_agent, api_server, db, slow_http, "TwinShrink")
    for pid in [*engine_pids(agent), agent.pid]:
        os.kill(pid, signal.SIGKILL)
    agent.wait()

    agent.env["HC_ENGINES"] = "1"
    slow_http.release()
    agent.start()
    wait_until(
        lambda: all(db.task_of(c)["status"] == "completed" for c in held), "the tasks to finish", diagnostics=agent.tail
    )
    assert_each_stored_once(db, held)
    wait_until(lambda: stream_pending(agent_id) == 0, "every entry acknowledged", diagnostics=agent.tail)
    assert "reclaimed un-acknowledged tasks count=4" in agent.log()


def test_engines_whose_supervisor_is_killed_drain_and_exit(start_agent, api_server, db, slow_http, stream_pending):
    agent, agent_id, held = start_holding_four(start_agent, api_server, db, slow_http, "TwinOrphan")
    engines = engine_pids(agent)

    agent.signal(signal.SIGKILL)
    agent.wait()
    wait_both_draining(agent, "both engines to drain once their supervisor is gone")
    slow_http.release()
    wait_until(lambda: not any(alive(pid) for pid in engines), "the engines to exit", diagnostics=agent.tail)
    assert_each_stored_once(db, held)
    assert stream_pending(agent_id) == 0


def test_results_spooled_by_two_engines_are_delivered_once_by_one_after_a_crash(
    start_agent, api_server, db, slow_http, stream_pending, proxy
):
    agent, agent_id, held = start_holding_four(start_agent, api_server, db, slow_http, "TwinSpool", api_url=proxy.url)
    proxy.close()  # the API is unreachable for the agent
    slow_http.release()
    spool = agent.state_dir / "spool"

    def spooled() -> dict[str, int]:
        return {"engine 0": len(list(spool.glob("*.json"))), "engine 1": len(list(spool.glob("engine-1/*.json")))}

    wait_until(lambda: spooled() == {"engine 0": 2, "engine 1": 2}, "each engine to spool its two results")
    for pid in [*engine_pids(agent), agent.pid]:
        os.kill(pid, signal.SIGKILL)
    agent.wait()

    agent.env["HC_ENGINES"] = "1"  # restarted with one engine: it takes over engine 1's spool and entries
    agent.start()
    wait_until(
        lambda: "took over results spooled by engines" in agent.log(), "the spool take-over", diagnostics=agent.tail
    )
    proxy.open()
    wait_until(
        lambda: all(db.task_of(c)["status"] == "completed" for c in held), "the tasks to finish", diagnostics=agent.tail
    )
    assert_each_stored_once(db, held)
    wait_until(lambda: stream_pending(agent_id) == 0, "every entry acknowledged", diagnostics=agent.tail)
    assert slow_http.requests == 4  # delivered from the spool, never run again
    assert spooled() == {"engine 0": 0, "engine 1": 0}
    assert not (spool / "engine-1").exists()


def test_an_engine_that_dies_stops_the_agent_with_exit_1(start_agent, db):
    agent = start_agent("TwinDies", **TWO)
    wait_online(db, agent)
    _, second = engine_pids(agent)
    os.kill(second, signal.SIGKILL)
    assert agent.wait() == 1, agent.tail()
    assert "engine 1 exited (SIGKILL); stopping the agent" in agent.log()


def test_claim_beside_siblings_takes_every_pending_entry_but_a_live_siblings(redis_url):
    key_agent = "engines-claim-test"
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    key = task_stream_key(key_agent)
    client.delete(key)
    client.xgroup_create(key, STREAM_GROUP, id="0", mkstream=True)
    ids = [client.xadd(key, {"task": str(i)}) for i in range(5)]
    for consumer, count in (("a#1", 2), ("a#7", 2), ("old-name", 1)):  # a sibling, a gone engine, an old name
        client.xreadgroup(STREAM_GROUP, consumer, {key: ">"}, count=count)
    queue = TaskQueue(redis_url, key_agent, consumer="a", siblings=frozenset({"a#1"}))
    try:
        assert queue.claim_all_pending() == 3
        owners = {p["message_id"]: p["consumer"] for p in client.xpending_range(key, STREAM_GROUP, "-", "+", 10)}
        assert owners == {ids[0]: "a#1", ids[1]: "a#1", ids[2]: "a", ids[3]: "a", ids[4]: "a"}
        follower = TaskQueue(redis_url, key_agent, consumer="a#1", siblings=frozenset({"a"}), claim_foreign=False)
        assert follower.claim_all_pending() == 0
        follower.close()
    finally:
        queue.close()
        client.delete(key)
        client.close()
