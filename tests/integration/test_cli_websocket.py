"""The CLI's WebSocket client.

- Through the real local API Gateway WebSocket emulator (scripts/localcloud/websocket.py) in
  front of the test API: a check followed live, rows on a terminal before it completes, and an
  unknown check id refused with 4404.
- Against a stand-in that speaks issue 11's protocol with the real API's bodies, for what the
  real server never does on purpose: every result sent twice (the client drops the repeat).
- A socket that will not open falls back to polling."""

from __future__ import annotations

import json
import threading
from urllib.parse import parse_qs, urlsplit

import pexpect
import pytest
import requests
from websockets.sync.server import serve

from cli.client import Api
from cli.errors import UsageError
from cli.watch import watch
from tests.integration.agent_harness import free_port, wait_until
from tests.integration.cli_harness import cli_argv, cli_env, fake_agents, run_cli  # noqa: F401 - the fixture
from tests.integration.live_harness import EmulatorProcess

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def emulator(pg_url, redis_url, tmp_path_factory):
    proc = EmulatorProcess(pg_url, redis_url, tmp_path_factory.mktemp("ws") / "emulator.log").start()
    yield proc
    proc.stop()


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


# ---- through the real emulator


def test_through_the_emulator_rows_arrive_live_before_the_check_completes(api_server, emulator, gated_agents, tmp_path):
    argv = cli_argv("tcp", "example.test")
    child = pexpect.spawn(
        argv[0],
        argv[1:],
        cwd=str(tmp_path),
        env=cli_env(api_server, HOSTCHECKER_WS_URL=emulator.ws_url),
        encoding="utf-8",
        dimensions=(40, 150),
        timeout=30,
    )
    try:
        child.expect("waiting")
        first, second = gated_agents
        first.gate.set()
        child.expect(rf"{first.name}.*?{first.ms} ms connect")
        assert _latest_status(api_server) != "completed"
        second.gate.set()
        child.expect("TCP OK from 2/2 agents")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_through_the_emulator_json_is_the_apis_final_body(api_server, emulator, fake_agents, tmp_path):  # noqa: F811
    fake_agents("fra-1", "Frankfurt, DE", ms=11)
    run = run_cli(api_server, "tcp", "example.test", "--json", cwd=tmp_path, HOSTCHECKER_WS_URL=emulator.ws_url)
    assert run.returncode == 0, run.stderr
    check = json.loads(run.stdout)
    assert check == requests.get(f"{api_server}/api/checks/{check['check_id']}", timeout=10).json()


def test_through_the_emulator_an_unknown_check_is_an_input_error(api_server, emulator, clean_state):
    """The commands read a check over HTTP before they subscribe, so this is a check deleted in
    between; the socket's refusal (4404) is what the client sees, and it is exit 2."""
    unknown = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(UsageError, match="not found") as refused:
        watch(Api(api_server), unknown, lambda _c: None, emulator.ws_url, first={"status": "pending"})
    assert refused.value.exit_code == 2


def _latest_status(api_server: str) -> str:
    items = requests.get(f"{api_server}/api/checks", params={"limit": 1}, timeout=10).json()["items"]
    return items[0]["status"] if items else "none"
