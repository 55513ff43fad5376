"""The http check's richer requests (method, headers, basic auth, body) and its `expect`
assertions, against a local server that echoes what it received and answers as told."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent.checks import run_check


class EchoHandler(BaseHTTPRequestHandler):
    """Answers every method with JSON of what it received; /redirect/NNN redirects to /echo."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *_args):
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers.items()), "body": body}
        )
        if self.path.startswith("/redirect/"):
            self.send_response(int(self.path.rsplit("/", 1)[1]))
            self.send_header("Location", "/echo")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        doc = {
            "method": self.command,
            "status": "ok",
            "items": [{"id": 7, "name": "seven"}],
            "user": self.headers.get("X-Debug-User"),
            "ratio": 1.0,
        }
        payload = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("X-Cache", "HIT from edge-7")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_OPTIONS = do_HEAD = _answer


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    httpd.daemon_threads = True
    httpd.seen = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def seen(server):
    server.seen.clear()
    return server.seen


def url(server, path="/echo"):
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def check(target, **options):
    return run_check("http", target, options, allow_private=True)


def test_post_sends_the_body_custom_headers_and_basic_auth(server, seen):
    result = check(
        url(server),
        method="POST",
        body='{"q": 1}',
        headers={"Content-Type": "application/json", "X-Debug-User": "ada"},
        auth={"username": "ada", "password": "s3cret!"},
    )
    assert result["success"] is True, result["error"]
    [request] = seen
    assert request["method"] == "POST" and request["body"] == b'{"q": 1}'
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["headers"]["Content-Length"] == "8"
    assert request["headers"]["X-Debug-User"] == "ada"
    assert request["headers"]["Authorization"] == "Basic " + base64.b64encode(b"ada:s3cret!").decode()
    described = result["data"]["request"]
    assert described == {
        "method": "POST",
        "headers": {"Content-Type": "application/json", "X-Debug-User": "ada"},
        "body_bytes": 8,
        "basic_auth_user": "ada",
    }
    assert "s3cret" not in json.dumps(result)  # the password is never in a result


def test_a_post_body_without_content_type_is_sent_as_curl_would(server, seen):
    result = check(url(server), method="POST", body="a=1&b=2")
    assert result["success"] is True, result["error"]
    assert seen[0]["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert seen[0]["body"] == b"a=1&b=2"


def test_options_method_is_sent_as_options(server, seen):
    result = check(url(server), method="OPTIONS")
    assert result["success"] is True, result["error"]
    assert seen[0]["method"] == "OPTIONS" and result["data"]["method"] == "OPTIONS"


def test_a_host_header_override_is_sent_but_the_connection_goes_to_the_target(server, seen):
    result = check(url(server), headers={"Host": "vhost.example.com"})
    assert result["success"] is True, result["error"]
    assert seen[0]["headers"]["Host"] == "vhost.example.com"
    assert result["address"] == "127.0.0.1"
    assert [list(s["headers"]).count("Host") for s in seen] == [1]


def test_303_turns_a_post_into_a_get_and_307_repeats_it(server, seen):
    result = check(url(server, "/redirect/303"), method="POST", body="x")
    assert result["success"] is True, result["error"]
    assert [(s["method"], s["body"]) for s in seen] == [("POST", b"x"), ("GET", b"")]
    seen.clear()
    result = check(url(server, "/redirect/307"), method="POST", body="x")
    assert [(s["method"], s["body"]) for s in seen] == [("POST", b"x"), ("POST", b"x")]


def test_auth_is_not_sent_to_another_origin_after_a_redirect():
    # Two servers: the first redirects to the second (another port: another origin).
    second = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    second.seen = []
    first = ThreadingHTTPServer(("127.0.0.1", 0), _redirect_to(f"http://127.0.0.1:{second.server_address[1]}/echo"))
    first.seen = []
    for s in (first, second):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        result = check(
            f"http://127.0.0.1:{first.server_address[1]}/",
            auth={"username": "ada", "password": "pw"},
            headers={"X-Trace": "1", "Cookie": "a=b"},
        )
        assert result["success"] is True, result["error"]
        [request] = second.seen
        assert "Authorization" not in request["headers"] and "Cookie" not in request["headers"]
        assert request["headers"]["X-Trace"] == "1"  # other custom headers follow the redirect
    finally:
        for s in (first, second):
            s.shutdown()
            s.server_close()


def _redirect_to(location):
    class Redirect(BaseHTTPRequestHandler):
        def log_message(self, *_args):
            pass

        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Redirect


def test_every_assertion_that_holds_is_reported_as_passed(server, seen):
    expect = {
        "status": [200, "204-206"],
        "headers": {"X-Cache": "^HIT", "Content-Type": True},
        "body_contains": '"status": "ok"',
        "body_matches": r'"id":\s*7',
        "json": {"$.status": "ok", "$.items[0].name": "seven", '$["ratio"]': 1, "$.user": None},
    }
    result = check(url(server), expect=expect)
    assert result["success"] is True, result["error"]
    assertions = {a["assertion"]: a for a in result["data"]["assertions"]}
    assert all(a["passed"] for a in assertions.values()), assertions
    assert assertions["status"] == {"assertion": "status", "expected": "200, 204-206", "passed": True, "seen": "200"}
    assert assertions["headers.X-Cache"]["seen"] == "HIT from edge-7"
    assert assertions["headers.Content-Type"]["seen"] == "application/json; charset=utf-8"
    assert assertions["body_matches"]["seen"] == '"id": 7'
    assert assertions["json.$.items[0].name"]["seen"] == "seven"
    assert list(assertions) == [
        "status",
        "headers.X-Cache",
        "headers.Content-Type",
        "body_contains",
        "body_matches",
        "json.$.status",
        "json.$.items[0].name",
        'json.$["ratio"]',
        "json.$.user",
    ]


@pytest.mark.parametrize(
    ("expect", "named", "seen_value"),
    [
        ({"status": [201]}, "expect.status", "saw 200"),
        ({"headers": {"X-Cache": "^MISS"}}, "expect.headers.X-Cache", "saw HIT from edge-7"),
        ({"headers": {"X-Missing": True}}, "expect.headers.X-Missing", "saw absent"),
        ({"body_contains": "Welcome"}, "expect.body_contains", "saw the body begins"),
        ({"body_matches": "^<html"}, "expect.body_matches", "saw the body begins"),
        ({"json": {"$.status": "down"}}, "expect.json.$.status", "expected down, saw ok"),
        ({"json": {"$.items[3].id": 7}}, "expect.json.$.items[3].id", "saw no such path"),
        ({"json": {"$.items[0].id": True}}, "expect.json.$.items[0].id", "saw 7"),  # true is not 7
    ],
)
def test_a_failed_assertion_is_assertion_failed_naming_it_and_what_was_seen(server, seen, expect, named, seen_value):
    result = check(url(server), expect=expect)
    assert result["success"] is False
    assert result["error"]["kind"] == "assertion_failed"
    assert result["error"]["message"].startswith(named + ":"), result["error"]["message"]
    assert seen_value in result["error"]["message"]
    assert result["data"]["status_code"] == 200  # the response is still reported
    assert [a["passed"] for a in result["data"]["assertions"]] == [False]


def test_expect_status_replaces_expected_status(server, seen):
    result = check(url(server, "/redirect/302"), follow_redirects=False, expected_status=200, expect={"status": 302})
    assert result["success"] is True, result["error"]
    assert result["data"]["assertions"][0]["seen"] == "302"


def test_several_failures_name_the_first_and_count_the_rest(server, seen):
    result = check(url(server), expect={"status": 500, "body_contains": "nope", "json": {"$.status": "x"}})
    assert result["error"]["kind"] == "assertion_failed"
    assert result["error"]["message"].startswith("expect.status: expected 500, saw 200")
    assert result["error"]["message"].endswith("(and 2 more failed)")


def test_body_assertions_on_a_head_request_fail_saying_no_body_was_read(server, seen):
    result = check(url(server), method="HEAD", expect={"body_contains": "ok"})
    assert result["error"]["kind"] == "assertion_failed"
    assert "no body was read (HEAD)" in result["error"]["message"]


def test_a_body_that_is_not_json_fails_the_json_assertion_saying_so():
    # the demo site answers text/plain
    from scripts.localcloud.demosite import DemoSite

    site = DemoSite("127.0.0.1").start()
    try:
        result = check(f"http://127.0.0.1:{site.ports['http']}/ok", expect={"json": {"$.a": 1}})
    finally:
        site.stop()
    assert result["error"]["kind"] == "assertion_failed"
    assert "the body is not JSON" in result["error"]["message"]
