"""Helpers for the live-results tests: the WebSocket emulator as a real process, fake agents
over the real HTTP API (the `api_server` fixture's chalice local), and a recording client."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State
from websockets.sync.client import ClientConnection, connect
from websockets.uri import parse_uri

from tests.conftest import REGISTRATION_TOKEN, ROOT, TEST_ENV, WS_MANAGEMENT_PORT, free_port
from tests.integration.agent_harness import wait_until


class EmulatorProcess:
    """`python -m scripts.localcloud.websocket` over the test database and Redis."""

    def __init__(self, pg_url: str, redis_url: str, log_path: Path, max_queued: int = 4):
        self.port = free_port()
        self.management_port = WS_MANAGEMENT_PORT
        self.log_path = log_path
        self.env = dict(os.environ, DATABASE_URL=pg_url, REDIS_URL=redis_url, **TEST_ENV)
        self.argv = [
            sys.executable,
            "-m",
            "scripts.localcloud.websocket",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--management-port",
            str(self.management_port),
            "--stage",
            "test",
            "--max-queued",
            str(max_queued),
            "--send-buffer",
            "16384",
        ]
        self.proc: subprocess.Popen | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    def start(self) -> EmulatorProcess:
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        wait_until(
            lambda: self.proc.poll() is not None or "WS_URL=" in self.log_path.read_text(),
            "the websocket emulator to listen",
            timeout=30,
        )
        assert self.proc.poll() is None, f"emulator exited: {self.log_path.read_text()[-2000:]}"
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def connection_info(self, connection_id: str) -> int:
        return requests.get(f"{self.management_url}/@connections/{connection_id}", timeout=5).status_code


@dataclass
class Http:
    """The real API over HTTP, as agents and browsers use it."""

    base: str
    session: requests.Session = field(default_factory=requests.Session)

    def register(self, name: str, location: str) -> dict:
        r = self.session.post(
            f"{self.base}/api/agents/register",
            json={"name": name, "location": location},
            headers={"X-Registration-Token": REGISTRATION_TOKEN},
            timeout=10,
        )
        assert r.status_code in (200, 201), r.text
        return r.json()

    def create_check(self, checks: list[str], target: str = "127.0.0.1") -> dict:
        r = self.session.post(f"{self.base}/api/checks", json={"target": target, "checks": checks}, timeout=10)
        assert r.status_code == 202, r.text
        return r.json()

    def start(self, agent: dict, task_id: str) -> None:
        r = self.session.post(
            f"{self.base}/api/tasks/{task_id}/start", headers={"X-Agent-Token": agent["api_token"]}, timeout=10
        )
        assert r.status_code == 200, r.text

    def result(self, agent: dict, task_id: str, padding: int = 0) -> None:
        body = {
            "success": True,
            "duration_ms": 12.5,
            "address": "127.0.0.1",
            "data": {"status_code": 200, "padding": "x" * padding},
        }
        r = self.session.post(
            f"{self.base}/api/tasks/{task_id}/result",
            json=body,
            headers={"X-Agent-Token": agent["api_token"]},
            timeout=10,
        )
        assert r.status_code == 200, r.text

    def run_task(self, agents: dict[str, dict], task: dict, padding: int = 0) -> None:
        agent = agents[task["agent_id"]]
        self.start(agent, task["task_id"])
        self.result(agent, task["task_id"], padding)


def register_agents(http: Http, n: int = 3) -> dict[str, dict]:
    places = ["Frankfurt", "Virginia", "Singapore", "Sydney", "Sao Paulo"]
    agents = [http.register(f"live-{places[i].lower().replace(' ', '-')}", places[i]) for i in range(n)]
    return {a["agent_id"]: a for a in agents}


@contextmanager
def subscribe(url: str, **kwargs) -> Iterator[ClientConnection]:
    """Open the socket and send the first message, which asks for the snapshot."""
    with connect(url, open_timeout=10, **kwargs) as ws:
        ws.send(json.dumps({"action": "subscribe"}))
        yield ws


def receive_all(ws: ClientConnection, timeout: float = 30) -> tuple[list[dict], int | None]:
    """Every message until the server closes, and the close code (None if it never closed)."""
    messages, end = [], time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            messages.append(json.loads(ws.recv(timeout=max(end - time.monotonic(), 0.01))))
        except TimeoutError:
            break
        except ConnectionClosed as exc:
            return messages, exc.rcvd.code if exc.rcvd else None
    return messages, None


class UnreadClient:
    """A subscriber that never reads: the handshake and the first message go out through the
    library's sans-I/O protocol, then nothing is ever read, and its receive buffer is tiny."""

    def __init__(self, url: str):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        uri = parse_uri(url)
        self.sock.connect((uri.host, uri.port))
        protocol = ClientProtocol(uri)
        protocol.send_request(protocol.connect())
        self._flush(protocol)
        while protocol.state is not State.OPEN:
            protocol.receive_data(self.sock.recv(1))  # byte by byte: read the handshake and no further
            assert protocol.handshake_exc is None, protocol.handshake_exc
        protocol.send_text(json.dumps({"action": "subscribe"}).encode())
        self._flush(protocol)

    def _flush(self, protocol: ClientProtocol) -> None:
        for data in protocol.data_to_send():
            self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()
