"""The API's side of ping/traceroute/mtr protocols and of the verdict across layers:
options validated and stored, what is assumed, and the verdict GET /api/checks/{id} gives."""

from __future__ import annotations

import pytest


@pytest.fixture
def agents(api):
    return [api.register(name, where) for name, where in (("fra-1", "Frankfurt"), ("sin-1", "Singapore"))]


def test_probe_protocol_and_port_are_stored_with_what_was_assumed(api, agents):
    body = api.create_check(
        target="example.com",
        checks=["ping", "traceroute", "mtr"],
        options={
            "ping": {"protocol": "tcp"},
            "traceroute": {"protocol": "udp"},
            "mtr": {"protocol": "tcp", "port": 22},
        },
    )
    assert body.status == 202, body.body
    check = api.get(f"/api/checks/{body.body['check_id']}").body
    assert check["options"]["ping"]["protocol"] == "tcp" and check["options"]["ping"]["port"] is None
    assert check["options"]["mtr"] == {
        "count": 10,
        "interval": 0.5,
        "max_hops": 30,
        "timeout": 30,
        "protocol": "tcp",
        "port": 22,
        "ip_version": None,
    }
    # a bare host: tcp probes go to 443 as the tcp check's; udp to traceroute's classic base port
    assert check["assumed"] == {"ping": {"port": 443}, "traceroute": {"port": 33434}}
    assert {r["check_type"] for r in check["results"]} == {"ping", "traceroute", "mtr"}


def test_mtr_task_deadline_covers_its_rounds(api, agents, db):
    body = api.create_check(checks=["mtr"], options={"mtr": {"count": 20, "interval": 1, "timeout": 10}}).body
    row = db.execute(
        "SELECT extract(epoch FROM deadline_at - created_at) AS s FROM check_tasks WHERE check_id = %s LIMIT 1",
        (body["check_id"],),
    ).fetchone()
    assert 40 <= float(row["s"]) <= 41  # 10 s + 20 rounds x 1 s + the delivery slack


@pytest.mark.parametrize(
    "options, field",
    [
        ({"ping": {"port": 443}}, "options.ping.port"),  # ICMP has no ports
        ({"ping": {"protocol": "sctp"}}, "options.ping.protocol"),
        ({"traceroute": {"protocol": "tcp", "port": 0}}, "options.traceroute.port"),
        ({"mtr": {"count": 99}}, "options.mtr.count"),
        ({"mtr": {"protocol": "icmp", "port": 80}}, "options.mtr.port"),
    ],
)
def test_bad_probe_options_are_400_naming_the_field(api, agents, options, field):
    reply = api.create_check(checks=list(options), options=options)
    assert reply.status == 400, reply.body
    assert reply.body["error"]["details"][0]["field"] == field


def test_mtr_summary_median_quotes_the_targets_rtt(api, agents):
    body = api.create_check(checks=["mtr"]).body
    tasks = {t["agent_id"]: t["task_id"] for t in body["tasks"]}
    for agent, rtt in zip(agents, (12.0, 30.0), strict=True):
        data = {"reached": True, "rtt_ms": {"avg": rtt}, "hops": []}
        api.result(agent, tasks[agent["agent_id"]], duration_ms=6000, data=data)
    check = api.get(f"/api/checks/{body['check_id']}").body
    assert check["summary"]["mtr"]["median_ms"] == 21.0


def tasks_by(body: dict) -> dict:
    return {(t["agent_id"], t["check_type"]): t["task_id"] for t in body["tasks"]}


def test_verdict_names_the_failing_layer_and_the_region(api, agents):
    fra, sin = agents
    body = api.create_check(target="https://example.com/", checks=["http", "tcp"]).body
    tasks = tasks_by(body)
    ok = {"final_url": "https://example.com/", "timings_ms": {"connect": 5, "tls": 9, "ttfb": 20}}
    api.result(fra, tasks[(fra["agent_id"], "http")], data=ok)
    api.result(fra, tasks[(fra["agent_id"], "tcp")], data={"connect_ms": 5})
    api.result(sin, tasks[(sin["agent_id"], "tcp")], data={"connect_ms": 80})
    pending = api.get(f"/api/checks/{body['check_id']}").body["verdict"]
    assert pending["scope"] == "none" and pending["failing_layer"] is None  # Singapore's http is still out
    api.result(
        sin,
        tasks[(sin["agent_id"], "http")],
        success=False,
        data={"final_url": "https://example.com/", "timings_ms": {"connect": 80, "tls": None}},
        error={"kind": "tls_error", "message": "certificate verification failed"},
    )
    check = api.get(f"/api/checks/{body['check_id']}").body
    verdict = check["verdict"]
    assert verdict["text"] == "TLS fails from Singapore only"
    assert verdict["failing_layer"] == "tls" and verdict["scope"] == "regional"
    assert [a["name"] for a in verdict["layers"]["tls"]["failed"]] == ["sin-1"]
    assert [a["name"] for a in verdict["layers"]["tls"]["ok"]] == ["fra-1"]
    by_name = {a["agent"]["name"]: a for a in verdict["agents"]}
    assert by_name["sin-1"]["layers"] == {"dns": "ok", "tcp": "ok", "tls": "fail"}
    assert by_name["sin-1"]["failed_by"][0]["check_type"] == "http"
    assert by_name["fra-1"]["failing_layer"] is None


def test_verdict_of_a_layer_failing_everywhere_is_global(api, agents):
    body = api.create_check(checks=["tcp"]).body
    for agent in agents:
        api.result(agent, tasks_by(body)[(agent["agent_id"], "tcp")], success=False)  # refused
    verdict = api.get(f"/api/checks/{body['check_id']}").body["verdict"]
    assert verdict == {**verdict, "failing_layer": "tcp", "scope": "global", "text": "TCP fails from every agent (2/2)"}
