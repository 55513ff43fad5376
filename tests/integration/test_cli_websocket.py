"""The CLI's WebSocket client, against a stand-in that speaks issue 11's protocol with the
real API's bodies: snapshot on the client's first message, `task` and `result` messages
(each result sent twice: the client must drop the repeat), the final `status`, close 1000.
Also: close 4404 is an input error, and a socket that will not open falls back to polling.

The stand-in replaces the local API Gateway WebSocket emulator only until that lands
(the live branch); it drives nothing of the CLI's own."""

from __future__ import annotations

import json
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from websockets.sync.server import serve

from tests.integration.agent_harness import free_port, wait_until
from tests.integration.cli_harness import fake_agents, run_cli  # noqa: F401 - the fixture


class ProtocolStandIn:
    def __init__(self, api_url: str, agents, refuse_with: int | None = None):
        self.api_url, self.agents, self.refuse_with = api_url, agents, refuse_with
        self.first_messages: list[dict] = []
        self.sent_status = False
        self.server = serve(self.handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _check(self, check_id: str) -> dict:
        return requests.get(f"{self.api_url}/api/checks/{check_id}", timeout=10).json()

    def handle(self, ws) -> None:
        check_id = parse_qs(urlsplit(ws.request.path).query)["check_id"][0]
        self.first_messages.append(json.loads(ws.recv(timeout=10)))
        if self.refuse_with:
            ws.send(json.dumps({"type": "error", "code": self.refuse_with, "message": f"check {check_id} not found"}))
            ws.close(self.refuse_with, "not found")
            return
        ws.send(json.dumps({"type": "snapshot", "check": self._check(check_id)}))
        for agent in self.agents:
            agent.gate.set()
        final = wait_until(lambda: (c := self._check(check_id))["status"] == "completed" and c, "the check to complete")
        for row in final["results"]:
            ws.send(
                json.dumps({"type": "task", "task_id": row["task_id"], "status": "in_progress", "agent": row["agent"]})
            )
            ws.send(json.dumps({"type": "result", "result": row}))
            ws.send(json.dumps({"type": "result", "result": row}))  # a repeat the client drops
        ws.send(
            json.dumps(
                {
                    "type": "status",
                    "status": final["status"],
                    "summary": final["summary"],
                    "completed_at": final["completed_at"],
                }
            )
        )
        self.sent_status = True
        ws.close(1000)

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(10)


@pytest.fixture
def gated_agents(fake_agents):  # noqa: F811
    return [
        fake_agents("fra-1", "Frankfurt, DE", ms=11, gated=True),
        fake_agents("iad-1", "Virginia, US", ms=41, gated=True),
    ]


def test_the_cli_follows_a_check_over_the_websocket(api_server, gated_agents, tmp_path):
    stand_in = ProtocolStandIn(api_server, gated_agents)
    try:
        run = run_cli(api_server, "tcp", "example.test", "--json", cwd=tmp_path, HOSTCHECKER_WS_URL=stand_in.url)
    finally:
        stand_in.close()
    assert run.returncode == 0, run.stderr
    check = json.loads(run.stdout)
    assert check["status"] == "completed" and len(check["results"]) == 2
    assert stand_in.first_messages == [{"action": "subscribe", "check_id": check["check_id"]}]
    assert stand_in.sent_status, "the client stayed subscribed until the final status"


def test_close_4404_is_an_input_error(api_server, gated_agents, tmp_path):
    stand_in = ProtocolStandIn(api_server, gated_agents, refuse_with=4404)
    try:
        run = run_cli(api_server, "tcp", "example.test", cwd=tmp_path, HOSTCHECKER_WS_URL=stand_in.url)
    finally:
        stand_in.close()
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert "not found" in run.stderr and "Traceback" not in run.stderr


def test_a_socket_that_will_not_open_falls_back_to_polling(api_server, fake_agents, tmp_path):  # noqa: F811
    fake_agents("fra-1", "Frankfurt, DE", ms=11)
    run = run_cli(api_server, "tcp", "example.test", cwd=tmp_path, HOSTCHECKER_WS_URL=f"ws://127.0.0.1:{free_port()}")
    assert run.returncode == 0, run.stderr
    assert "TCP OK from 1/1 agent" in run.stdout
