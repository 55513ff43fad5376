"""What the API makes of a target and its options: IDNA 2008 names, explicit PTR for an
IP, ip_version validated, every option stored (the timeout too), assumptions shown."""

from __future__ import annotations

import pytest


@pytest.fixture
def agent(api):
    return api.register("fra-1", "Frankfurt")


def get_check(api, body):
    reply = api.create_check(**body)
    assert reply.status == 202, reply.body
    return api.get(f"/api/checks/{reply.body['check_id']}").body


@pytest.mark.parametrize(
    "target, host, host_unicode",
    [
        ("straße.de", "xn--strae-oqa.de", "straße.de"),
        ("https://FAß.de/", "xn--fa-hia.de", "faß.de"),
        ("Straße.DE", "xn--strae-oqa.de", "straße.de"),
    ],
)
def test_a_unicode_target_shows_both_its_forms(api, agent, target, host, host_unicode):
    check = get_check(api, {"target": target, "checks": ["http"]})
    assert check["target"] == target  # stored as submitted
    assert check["target_info"]["host"] == host and check["target_info"]["host_unicode"] == host_unicode


def test_an_emoji_label_is_400_naming_the_target(api, agent):
    reply = api.create_check("😀.de", checks=["http"])
    assert reply.status == 400
    detail = reply.body["error"]["details"][0]
    assert detail["field"] == "target" and "IDNA 2008" in detail["message"]


def test_dns_of_an_ip_target_is_stored_as_ptr(api, agent):
    check = get_check(api, {"target": "192.0.2.10", "checks": ["dns"]})
    assert check["options"]["dns"]["record_type"] == "PTR"
    assert check["assumed"]["dns"]["record_type"] == "PTR"


def test_dns_of_an_ip_target_with_another_record_type_is_400_naming_it(api, agent):
    reply = api.create_check("192.0.2.10", checks=["dns"], options={"dns": {"record_type": "MX"}})
    assert reply.status == 400
    detail = reply.body["error"]["details"][0]
    assert detail["field"] == "options.dns.record_type" and "PTR" in detail["message"]


@pytest.mark.parametrize("check_type", ["http", "ping", "dns", "tcp", "traceroute"])
@pytest.mark.parametrize("value", [5, "6", True, 4.5])
def test_a_bad_ip_version_is_400_naming_the_field(api, agent, check_type, value):
    reply = api.create_check(checks=[check_type], options={check_type: {"ip_version": value}})
    assert reply.status == 400, reply.body
    assert reply.body["error"]["details"][0]["field"] == f"options.{check_type}.ip_version"


def test_an_ip_version_that_does_not_fit_the_literal_is_400(api, agent):
    reply = api.create_check("192.0.2.10", checks=["tcp"], options={"tcp": {"ip_version": 6}})
    assert reply.status == 400
    detail = reply.body["error"]["details"][0]
    assert detail["field"] == "options.tcp.ip_version" and "IPv4" in detail["message"]


def test_ip_version_and_every_other_option_are_stored_and_sent_to_the_agent(api, agent, redis_client):
    check = get_check(
        api, {"target": "example.com", "checks": ["http", "ping"], "options": {"http": {"timeout": 1, "ip_version": 6}}}
    )
    http = check["options"]["http"]
    assert http["timeout"] == 1 and http["ip_version"] == 6
    assert check["options"]["ping"]["ip_version"] is None and check["options"]["ping"]["timeout"] == 10
    from chalicelib.protocol import TaskMessage

    messages = [TaskMessage.from_fields(fields) for _, fields in redis_client.xrange(agent["stream"])]
    assert {m.check_type: m.options["ip_version"] for m in messages} == {"http": 6, "ping": None}


def test_a_bare_host_assumes_https_on_443_for_http_and_tcp(api, agent):
    check = get_check(api, {"target": "example.com", "checks": ["http", "tcp", "ping"]})
    assert check["assumed"] == {"http": {"scheme": "https", "port": 443}, "tcp": {"port": 443}}
    url_check = get_check(api, {"target": "http://example.com:8080/x", "checks": ["http", "tcp"]})
    assert url_check["assumed"] == {}
    assert url_check["target_info"] == {
        "host": "example.com",
        "host_unicode": "example.com",
        "is_ip": False,
        "scheme": "http",
        "port": 8080,
    }


@pytest.mark.parametrize("resolver", ["127.0.0.1", "169.254.169.254"])
def test_a_private_dns_resolver_is_refused_at_the_api(api, agent, resolver):
    from chalicelib import config

    config.reset_settings(allow_private_targets=False)
    reply = api.create_check("example.com", checks=["dns"], options={"dns": {"resolver": resolver}})
    assert reply.status == 400 and reply.body["error"]["code"] == "blocked_target"
    assert reply.body["error"]["details"][0]["field"] == "options.dns.resolver"
    config.reset_settings()
    assert (
        api.create_check("example.com", checks=["dns"], options={"dns": {"resolver": resolver}}).status == 202
    )  # allowed on the test stage


def test_a_fullwidth_loopback_literal_is_refused_at_the_api(api, agent):
    from chalicelib import config

    config.reset_settings(allow_private_targets=False)
    reply = api.create_check("０ｘ７ｆ０００００１", checks=["tcp"])
    assert reply.status == 400 and reply.body["error"]["code"] == "blocked_target"
