"""The live-results layer without servers: the connect parameters (both URL forms), the
management endpoint it pushes to, and the handlers' answers to generated API Gateway events
when Redis is not there (the UI then polls)."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from chalicelib import config, live
from scripts.localcloud.websocket import query_parameters

CHECK_ID = str(uuid.uuid4())


@pytest.mark.parametrize(
    "path, expected",
    [
        (f"/?check_id={CHECK_ID}", {"check_id": CHECK_ID}),
        (f"/api/ws/checks/{CHECK_ID}", {"check_id": CHECK_ID}),
        (f"/api/ws/checks/{CHECK_ID}/?x=1", {"check_id": CHECK_ID, "x": "1"}),
        ("/", {}),
    ],
)
def test_the_emulator_maps_both_url_forms_to_check_id(path, expected):
    assert query_parameters(path) == expected


@pytest.mark.parametrize(
    "query, words",
    [(None, "check_id is required"), ({"check_id": ""}, "required"), ({"check_id": "42"}, "must be a check id (UUID)")],
)
def test_a_missing_or_malformed_check_id_is_named(query, words):
    check_id, problem = live.parse_check_id(query)
    assert check_id is None and words in problem


def test_a_check_id_is_normalised():
    assert live.parse_check_id({"check_id": CHECK_ID.upper()}) == (CHECK_ID, None)


def test_the_management_endpoint_comes_from_config_else_from_the_event(monkeypatch):
    monkeypatch.delenv("HC_WS_MANAGEMENT_URL", raising=False)
    config.reset_settings()
    context = {"domainName": "abc.execute-api.eu-west-1.amazonaws.com", "stage": "v1"}
    assert live.management_url(context) == "https://abc.execute-api.eu-west-1.amazonaws.com/v1"
    config.reset_settings(ws_management_url="http://127.0.0.1:9/")
    assert live.management_url(context) == "http://127.0.0.1:9"
    config.reset_settings()


def test_gone_is_recognised_by_code_or_status():
    gone = ClientError({"Error": {"Code": "GoneException", "Message": "gone"}}, "PostToConnection")
    by_status = ClientError({"Error": {"Code": "Other"}, "ResponseMetadata": {"HTTPStatusCode": 410}}, "X")
    other = ClientError({"Error": {"Code": "LimitExceededException"}}, "PostToConnection")
    assert live._is_gone(gone) and live._is_gone(by_status) and not live._is_gone(other)


def _event(route):
    return {
        "requestContext": {
            "routeKey": route,
            "eventType": "CONNECT",
            "connectionId": "c1",
            "domainName": "abc.execute-api.eu-west-1.amazonaws.com",
            "stage": "v1",
            "apiId": "abc",
        },
        "queryStringParameters": {"check_id": CHECK_ID},
        "isBase64Encoded": False,
    }


def test_without_redis_connect_is_refused_with_503_and_the_others_answer_200(monkeypatch):
    import app as app_module

    monkeypatch.setenv("REDIS_URL", "")
    # Pushes, if any were attempted, go to a closed loopback port, never to the event's AWS domain name.
    monkeypatch.setenv("HC_WS_MANAGEMENT_URL", "http://127.0.0.1:9")
    config.reset_settings()
    try:
        reply = app_module.ws_connect(_event("$connect"), None)
        assert reply["statusCode"] == 503 and "poll" in reply["body"]
        assert app_module.ws_message(dict(_event("$default"), body="{}"), None) == {"statusCode": 200}
        assert app_module.ws_disconnect(_event("$disconnect"), None) == {"statusCode": 200}
    finally:
        config.reset_settings()
