"""The http check's richer options through the API: validation naming the field, the Host
header under the target policy, credentials that reach the agent but are never read back,
assertion_failed results, and the certificates-differ flag across agents."""

from __future__ import annotations

import json

import pytest

from chalicelib import config
from chalicelib.protocol import TaskMessage


@pytest.fixture
def agent(api):
    return api.register("fra-1", "Frankfurt")


HTTP_OPTIONS = {
    "method": "POST",
    "body": "a=1",
    "headers": {"X-Trace": "1", "Cookie": "session=abc"},
    "auth": {"username": "ada", "password": "s3cret!"},
    "expect": {"status": [200, "300-302"], "body_contains": "ok", "json": {"$.a[0]": 1}},
}


def test_credentials_reach_the_agent_but_are_never_read_back(api, agent, redis_client):
    body = api.create_check("https://example.com/", checks=["http"], options={"http": HTTP_OPTIONS}).body
    [(_, fields)] = redis_client.xrange(agent["stream"])
    sent = TaskMessage.from_fields(fields).options
    assert sent["auth"] == {"username": "ada", "password": "s3cret!"}
    assert sent["headers"]["Cookie"] == "session=abc"
    assert sent["expect"]["status"] == [[200, 200], [300, 302]]
    check = api.get(f"/api/checks/{body['check_id']}").body
    task = api.get(f"/api/tasks/{body['tasks'][0]['task_id']}").body
    for shown in (check["options"]["http"], task["options"]):
        assert shown["auth"] == {"username": "ada", "password": "********"}
        assert shown["headers"] == {"X-Trace": "1", "Cookie": "********"}
        assert shown["method"] == "POST" and shown["body"] == "a=1"
    assert "s3cret" not in json.dumps(check) and "session=abc" not in json.dumps(task)


@pytest.mark.parametrize(
    ("http", "field"),
    [
        ({"method": "PUT"}, "options.http.method"),
        ({"body": "x"}, "options.http.body"),  # GET carries no body
        ({"method": "POST", "body": "x" * 9000}, "options.http.body"),
        ({"headers": {"Content-Length": "5"}}, "options.http.headers.Content-Length"),
        ({"headers": {"Bad Name": "x"}}, "options.http.headers.Bad Name"),
        ({"headers": {"X-A": "a\r\nInjected: 1"}}, "options.http.headers.X-A"),
        ({"headers": {f"X-{i}": "v" for i in range(17)}}, "options.http.headers"),
        ({"headers": ["X-A: 1"]}, "options.http.headers"),
        ({"auth": {"username": "a:b", "password": "x"}}, "options.http.auth.username"),
        ({"auth": {"username": "a", "password": "x"}, "headers": {"Authorization": "Bearer t"}}, "options.http.auth"),
        ({"expect": {"status": [99]}}, "options.http.expect.status[0]"),
        ({"expect": {"body_matches": "(unclosed"}}, "options.http.expect.body_matches"),
        ({"expect": {"json": {"status": "ok"}}}, "options.http.expect.json.status"),
        ({"expect": {"headers": {"X-A": 3}}}, "options.http.expect.headers.X-A"),
        ({"expect": {"body_has": "x"}}, "options.http.expect.body_has"),
        ({"expect": {}}, "options.http.expect"),
        ({"http_version": "3"}, "options.http.http_version"),
        ({"auth": {"username": "a", "password": "********"}}, "options.http.auth.password"),  # a re-run of a read
        ({"headers": {"Cookie": "********"}}, "options.http.headers.Cookie"),
    ],
)
def test_bad_http_options_are_400_naming_the_field(api, agent, http, field):
    reply = api.create_check("https://example.com/", checks=["http"], options={"http": http})
    assert reply.status == 400, reply.body
    assert reply.body["error"]["details"][0]["field"] == field


@pytest.mark.parametrize("host", ["127.0.0.1", "10.0.0.1:8080", "[::1]", "metadata.internal", "localhost"])
def test_a_host_header_into_private_space_is_refused(api, agent, host):
    config.reset_settings(allow_private_targets=False)
    try:
        reply = api.create_check("https://example.com/", checks=["http"], options={"http": {"headers": {"Host": host}}})
    finally:
        config.reset_settings(allow_private_targets=True)
    assert reply.status == 400, reply.body
    assert reply.body["error"]["code"] == "blocked_target"
    assert reply.body["error"]["details"][0]["field"] == "options.http.headers.Host"
    assert "Host header" in reply.body["error"]["message"]


def test_a_public_host_header_is_accepted(api, agent):
    config.reset_settings(allow_private_targets=False)
    try:
        reply = api.create_check(
            "https://example.com/", checks=["http"], options={"http": {"headers": {"Host": "www.example.org"}}}
        )
    finally:
        config.reset_settings(allow_private_targets=True)
    assert reply.status == 202, reply.body


def test_an_assertion_failed_result_is_stored_with_its_kind(api, agent):
    body = api.create_check("https://example.com/", checks=["http"]).body
    task_id = body["tasks"][0]["task_id"]
    api.start(agent, task_id)
    error = {"kind": "assertion_failed", "message": "expect.status: expected 200, saw 503"}
    assert api.result(agent, task_id, success=False, error=error).status == 200
    row = api.get(f"/api/checks/{body['check_id']}").body["results"][0]
    assert row["error"] == error and row["success"] is False


def _tls(fingerprint):
    return {"tls": {"fingerprint_sha256": fingerprint, "subject": "CN=example.com", "issuer": "CN=CA"}}


def test_certificates_differ_when_agents_saw_different_leaves(api, agent):
    others = [api.register("iad-1", "Virginia"), api.register("sin-1", "Singapore")]
    body = api.create_check("https://example.com/", checks=["http"]).body
    by_agent = {t["agent_id"]: t["task_id"] for t in body["tasks"]}
    seen = {agent["agent_id"]: "AA:01", others[0]["agent_id"]: "AA:01", others[1]["agent_id"]: "BB:02"}
    for a in (agent, *others):
        api.start(a, by_agent[a["agent_id"]])
        api.result(a, by_agent[a["agent_id"]], data=_tls(seen[a["agent_id"]]))
    certs = api.get(f"/api/checks/{body['check_id']}").body["certificates"]
    assert certs["differ"] is True
    assert [(leaf["fingerprint_sha256"], sorted(leaf["agents"])) for leaf in certs["leaves"]] == [
        ("AA:01", ["fra-1", "iad-1"]),
        ("BB:02", ["sin-1"]),
    ]


def test_certificates_agree_when_every_agent_saw_the_same_leaf(api, agent):
    other = api.register("iad-1", "Virginia")
    body = api.create_check("https://example.com/", checks=["http", "tcp"]).body
    for t in body["tasks"]:
        a = agent if t["agent_id"] == agent["agent_id"] else other
        api.start(a, t["task_id"])
        api.result(a, t["task_id"], data=_tls("AA:01") if t["check_type"] == "http" else {"connect_ms": 1})
    certs = api.get(f"/api/checks/{body['check_id']}").body["certificates"]
    assert certs["differ"] is False and certs["leaves"][0]["agents"] == ["fra-1", "iad-1"]


def test_certificates_is_null_without_a_tls_result(api, agent):
    body = api.create_check("http://example.com/", checks=["http"]).body
    assert api.get(f"/api/checks/{body['check_id']}").body["certificates"] is None


def test_dns_depth_options_are_stored_with_the_protocols_port(api, agent):
    body = api.create_check(
        "example.com", checks=["dns"], options={"dns": {"protocol": "doh", "dnssec": True, "record_type": "SVCB"}}
    ).body
    stored = api.get(f"/api/checks/{body['check_id']}").body["options"]["dns"]
    assert (stored["protocol"], stored["port"], stored["doh_path"], stored["dnssec"], stored["record_type"]) == (
        "doh",
        443,
        "/dns-query",
        True,
        "SVCB",
    )
    # the schema's enums are case-sensitive (chalicelib/bodies.py validates against them)
    reply = api.create_check("example.com", checks=["dns"], options={"dns": {"protocol": "DOH"}})
    assert reply.status == 400 and reply.body["error"]["details"][0]["field"] == "options.dns.protocol"
    reply = api.create_check("example.com", checks=["dns"], options={"dns": {"protocol": "dot", "trace": True}})
    assert reply.status == 400 and reply.body["error"]["details"][0]["field"] == "options.dns.trace"
