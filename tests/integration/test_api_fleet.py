"""Fleet operations: retiring an agent (DELETE /api/agents/{id}) and honest agent stats
(headline latency, target failures apart from agent failures)."""

from __future__ import annotations

from chalicelib.protocol import heartbeat_key, task_stream_key
from tests.integration.conftest import ADMIN_TOKEN

ADMIN = {"X-Admin-Token": ADMIN_TOKEN}


def test_retiring_an_agent_removes_its_stream_heartbeat_and_token_and_keeps_its_results(api, db, redis_client):
    agent = api.register("retire-me")
    done = api.create_check(checks=["tcp"], agents=[agent["agent_id"]]).body
    api.result(agent, done["tasks"][0]["task_id"], data={"connect_ms": 3})
    open_check = api.create_check(checks=["http"], agents=[agent["agent_id"]]).body
    assert redis_client.exists(task_stream_key(agent["agent_id"]), heartbeat_key(agent["agent_id"])) == 2

    assert api.delete(f"/api/agents/{agent['agent_id']}").status == 401
    assert api.delete(f"/api/agents/{agent['agent_id']}", headers={"X-Admin-Token": "nope"}).status == 403
    assert api.delete(f"/api/agents/{agent['agent_id']}", headers=ADMIN).status == 204

    assert redis_client.exists(task_stream_key(agent["agent_id"]), heartbeat_key(agent["agent_id"])) == 0
    assert api.heartbeat(agent).status == 401  # the token went
    assert api.get(f"/api/agents/{agent['agent_id']}").status == 404
    assert agent["agent_id"] not in [a["id"] for a in api.get("/api/agents").body["items"]]
    # Its open task failed at once (nobody will run it), and its check is finished.
    pending = api.get(f"/api/checks/{open_check['check_id']}").body
    assert pending["status"] == "completed"
    assert pending["results"][0]["error"]["kind"] == "agent_offline"
    assert "retired" in pending["results"][0]["error"]["message"]
    # Its past results stay, under its name.
    past = api.get(f"/api/checks/{done['check_id']}").body
    assert past["results"][0]["success"] is True and past["results"][0]["agent"]["name"] == "retire-me"
    assert api.delete(f"/api/agents/{agent['agent_id']}", headers=ADMIN).status == 404


def test_a_retired_agents_name_is_free_for_a_new_agent(api, db):
    old = api.register("reused-name")
    assert api.delete(f"/api/agents/{old['agent_id']}", headers=ADMIN).status == 204
    new = api.register("reused-name")  # 201: a new agent, not a takeover
    assert new["agent_id"] != old["agent_id"]
    assert api.heartbeat(new).status == 200 and api.heartbeat(old).status == 401
    rows = db.execute("SELECT id, retired_at FROM agents WHERE name = 'reused-name' ORDER BY registered_at").fetchall()
    assert [str(r["id"]) for r in rows] == [old["agent_id"], new["agent_id"]]
    assert rows[0]["retired_at"] is not None and rows[1]["retired_at"] is None
    # `replace: true` takes over the live agent only, never the retired row.
    again = api.register("reused-name", replace=True)
    assert again["agent_id"] == new["agent_id"]


def test_stats_report_headline_latency_and_split_target_from_agent_failures(api, db):
    agent = api.register("stats-fra")
    ids = [api.create_check(checks=["ping"], agents=[agent["agent_id"]]).body["tasks"][0]["task_id"] for _ in range(5)]
    ping = {"rtt_ms": {"avg": 10.0, "min": 9, "max": 11}, "packets_sent": 4}
    api.result(agent, ids[0], duration_ms=1530, data=ping)
    api.result(agent, ids[1], duration_ms=1530, data={**ping, "rtt_ms": {"avg": 12.0}})
    api.result(agent, ids[2], success=False, duration_ms=10)  # refused: the target's
    api.result(agent, ids[3], success=False, duration_ms=5, error={"kind": "internal", "message": "bug"})
    # The API fails the last one (no result before the deadline): the agent's failure.
    db.execute("UPDATE check_tasks SET deadline_at = now() - interval '1 second' WHERE id = %s", (ids[4],))
    check_id = db.execute("SELECT check_id FROM check_tasks WHERE id = %s", (ids[4],)).fetchone()["check_id"]
    assert api.get(f"/api/checks/{check_id}").body["status"] == "completed"

    stats = api.get(f"/api/agents/{agent['agent_id']}/stats").body["stats"]["ping"]
    assert stats["count"] == 5 and stats["ok"] == 2
    assert stats["target_failures"] == 1 and stats["agent_failures"] == 2
    assert stats["success_rate"] == 0.4 and stats["agent_failure_rate"] == 0.4
    assert stats["failures_by_kind"] == {"refused": 1, "internal": 1, "timeout": 1}
    assert stats["latency_avg_ms"] == 11.0  # the RTT, not the 1.5 s task
    assert 10.0 <= stats["latency_p95_ms"] <= 12.0
    assert stats["avg_ms"] > 500  # the task duration is still there, named so


def test_traceroute_latency_is_the_rtt_to_the_target_when_reached(api):
    agent = api.register("stats-trace")
    reached, missed = (
        api.create_check(checks=["traceroute"], agents=[agent["agent_id"]]).body["tasks"][0]["task_id"]
        for _ in range(2)
    )
    hops = [{"ttl": 1, "rtts_ms": [1.0, 1.0]}, {"ttl": 2, "rtts_ms": [20.0, 22.0, None]}]
    api.result(agent, reached, duration_ms=3000, data={"reached": True, "hops": hops})
    api.result(agent, missed, duration_ms=9000, data={"reached": False, "hops": hops})
    stats = api.get(f"/api/agents/{agent['agent_id']}/stats").body["stats"]["traceroute"]
    assert stats["count"] == 2 and stats["latency_avg_ms"] == 21.0
