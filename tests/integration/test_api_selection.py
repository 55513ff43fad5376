"""A check that reaches fewer agents than were asked for says so (issue 16, defect 4).

After an outage agents may not have heart-beaten yet; a check created then used to get
a 202 with fewer tasks and no word about it.
"""

from __future__ import annotations

import pytest

from chalicelib.protocol import heartbeat_key


@pytest.fixture
def agents(api, db, redis_client):
    registered = [api.register(f"agent-{i}", loc) for i, loc in enumerate(["Frankfurt", "Virginia", "Singapore"])]
    stale = registered[2]
    db.execute("UPDATE agents SET last_heartbeat = now() - interval '1 minute' WHERE id = %s", (stale["agent_id"],))
    redis_client.delete(heartbeat_key(stale["agent_id"]))
    return registered


def test_a_check_reaching_fewer_agents_than_asked_says_so_in_its_202_and_in_selection(api, agents):
    reply = api.create_check(checks=["tcp"])
    assert reply.status == 202 and len(reply.body["tasks"]) == 2
    selection = reply.body["selection"]
    assert selection["requested"] == 3 and selection["shortfall"]["missing"] == 1
    assert "2 of the 3" in selection["shortfall"]["message"]
    stored = api.get(f"/api/checks/{reply.body['check_id']}").body["selection"]
    assert stored["requested"] == 3 and stored["shortfall"] == selection["shortfall"]


def test_named_agents_count_as_asked_for(api, agents):
    asked = [agents[0]["agent_id"], agents[2]["agent_id"]]
    selection = api.create_check(checks=["tcp"], agents=asked).body["selection"]
    assert selection["requested"] == 2 and selection["shortfall"]["missing"] == 1


def test_a_limit_within_the_online_agents_is_no_shortfall(api, agents):
    selection = api.create_check(checks=["tcp"], limit=2).body["selection"]
    assert selection["requested"] == 2 and selection["shortfall"] is None


def test_all_asked_for_agents_online_is_no_shortfall(api, agents):
    api.heartbeat(agents[2])
    selection = api.create_check(checks=["tcp"]).body["selection"]
    assert selection["requested"] == 3 and selection["shortfall"] is None
