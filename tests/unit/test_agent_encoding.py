"""What the agent sends and logs is JSON whatever a check carries (agent/encoding.py, by way of agent/api.py
and agent/logs.py)."""

from __future__ import annotations

import http.server
import json
import logging
import threading

from agent.api import ApiClient
from agent.logs import JsonFormatter

HUGE = 10**30  # beyond 64 bits: an http `expect` rule shows the JSON value a server sent, as it came


def test_a_result_holding_an_integer_beyond_64_bits_reaches_the_api_intact():
    bodies: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            reply = b'{"results": [{"task_id": "t1", "status": 200, "body": {"stored": true}}]}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        api = ApiClient(f"http://127.0.0.1:{server.server_address[1]}", token="t")
        result = {"task_id": "t1", "success": True, "duration_ms": 1.0, "data": {"seen": HUGE, "nan": float("nan")}}
        reply = api.post_results([result])
    finally:
        server.shutdown()
        server.server_close()
    assert reply["results"][0]["status"] == 200
    sent = json.loads(bodies[0])
    assert sent["results"][0]["data"]["seen"] == HUGE
    assert sent["results"][0]["data"]["nan"] is None  # NaN has no JSON form: null, not a refused body


def test_a_log_line_with_an_integer_beyond_64_bits_is_one_json_line():
    record = logging.LogRecord("agent.runner", logging.INFO, __file__, 1, "task done", None, None)
    record.fields = {"task": "t1", "value": HUGE, "note": "naïve"}
    line = JsonFormatter().format(record)
    assert "\n" not in line
    doc = json.loads(line)
    assert doc["value"] == HUGE and doc["note"] == "naïve" and doc["msg"] == "task done"
