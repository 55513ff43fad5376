"""Hostile targets (issue 16, suite 9): each check ends by its deadline with the right error
kind, and the agent's threads and open files stay within its concurrency and come back.

The servers: one that accepts and never answers (for http, and for https: a TLS handshake
that stalls), a slow-drip body (test_check_deadline.DripServer), a DNS server that never
answers (UDP and TCP), 5,000 response headers, and a 2 MB header line. First each against
the agent's own run_check, timed; then all of them at once against a real agent process
(as tests/integration/test_agent_slow_drip.py does for the drip alone), counting its
threads and descriptors from /proc.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

from agent.checks import run_check
from tests.integration.agent_harness import create_check, db, start_agent, wait_online, wait_until  # noqa: F401
from tests.integration.test_agent_slow_drip import fds_of, threads_of
from tests.integration.test_check_deadline import BODY_PREFIX, DripServer

TIMEOUT_S = 1
# How long past its deadline a check may take to end: the reaper's margin plus scheduling on a
# busy machine (test_check_deadline.END_BOUND_S).
END_BOUND_S = 5.0
MANY_HEADERS = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H-%d: v\r\n" % i for i in range(5000)) + b"\r\n"
LONG_LINE = b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * (2 * 1024 * 1024) + b"\r\n\r\n"


class HostileServer:
    """Accepts on 127.0.0.1 and sends `reply` (nothing: b"") on each connection, then holds it
    open without another byte until the peer goes or the server stops. A thread per
    connection, so one client that stops reading a 2 MB reply holds up no other."""

    def __init__(self, reply: bytes = b""):
        self.reply = reply
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.accepted = 0
        threading.Thread(target=self._accept, name="hostile-accept", daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while not self.stop.is_set():
                conn, _ = self.listener.accept()
                self.accepted += 1
                threading.Thread(target=self._hold, args=(conn,), name="hostile-conn", daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            if self.reply:
                conn.sendall(self.reply)
            conn.settimeout(0.2)
            while not self.stop.is_set():
                try:
                    if not conn.recv(65536):
                        return  # the check closed its end
                except TimeoutError:
                    continue

    def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()


class SilentDns:
    """A DNS server that reads every query (UDP and TCP, one port) and never answers."""

    def __init__(self):
        self.tcp = HostileServer()
        self.port = self.tcp.port
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.queries = 0
        threading.Thread(target=self._drop, name="silent-dns", daemon=True).start()

    def _drop(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                _, peer = self.udp.recvfrom(4096)
                if peer is None:
                    return
                self.queries += 1

    def close(self) -> None:
        self.tcp.close()
        with contextlib.suppress(OSError):
            self.udp.shutdown(socket.SHUT_RDWR)
        self.udp.close()


@pytest.fixture(scope="module")
def hostile():
    """name -> (check type, target, options, expected error kind), and the servers behind them."""
    silent, many, long_line, dns = HostileServer(), HostileServer(MANY_HEADERS), HostileServer(LONG_LINE), SilentDns()
    drip = DripServer(BODY_PREFIX)
    resolver = {"resolver": "127.0.0.1", "port": dns.port, "timeout": TIMEOUT_S}
    cases = {
        "accepts and never answers": ("http", f"http://127.0.0.1:{silent.port}/", {"timeout": TIMEOUT_S}, "timeout"),
        "slow-drip body": ("http", f"http://127.0.0.1:{drip.port}/big", {"timeout": TIMEOUT_S}, "timeout"),
        "TLS handshake that stalls": ("http", f"https://127.0.0.1:{silent.port}/", {"timeout": TIMEOUT_S}, "timeout"),
        "DNS server that never answers (udp)": ("dns", "example.com", resolver, "timeout"),
        "DNS server that never answers (tcp)": ("dns", "example.com", {**resolver, "protocol": "tcp"}, "timeout"),
        "5,000 response headers": ("http", f"http://127.0.0.1:{many.port}/", {"timeout": TIMEOUT_S}, "http_error"),
        "a 2 MB header line": ("http", f"http://127.0.0.1:{long_line.port}/", {"timeout": TIMEOUT_S}, "http_error"),
    }
    yield cases
    for server in (silent, many, long_line, dns, drip):
        server.close()


CASES = [
    "accepts and never answers",
    "slow-drip body",
    "TLS handshake that stalls",
    "DNS server that never answers (udp)",
    "DNS server that never answers (tcp)",
    "5,000 response headers",
    "a 2 MB header line",
]


@pytest.mark.parametrize("name", CASES)
def test_a_hostile_target_ends_the_check_by_its_deadline_with_the_right_kind(hostile, name):
    check_type, target, options, kind = hostile[name]
    started = time.monotonic()
    result = run_check(check_type, target, options, allow_private=True)
    elapsed = time.monotonic() - started
    assert result["success"] is False and result["error"]["kind"] == kind, result["error"]
    assert elapsed <= TIMEOUT_S + END_BOUND_S, f"{name}: {elapsed:.1f} s for a {TIMEOUT_S} s check"
    assert result["duration_ms"] <= (TIMEOUT_S + END_BOUND_S) * 1000


CONCURRENCY = 4
ROUNDS = 2
# As in test_agent_slow_drip: per running task two threads and two descriptors, and a few more
# (the reaper, a lookup, the DNS check's socket) however many checks come and go.
SMALL_BOUND = 6


def _run(api_server, db, agent_id: str, hostile: dict, rounds: int, peak: dict, pid: int) -> list[tuple[str, str]]:
    created = [
        (name, create_check(api_server, target, check_type, agent_id, options)["check_id"])
        for _ in range(rounds)
        for name, (check_type, target, options, _) in hostile.items()
    ]

    def all_done() -> bool:
        peak["threads"] = max(peak.get("threads", 0), threads_of(pid))
        peak["fds"] = max(peak.get("fds", 0), fds_of(pid))
        return all(db.task_of(check_id)["status"] in ("completed", "failed") for _, check_id in created)

    wait_until(all_done, f"{len(created)} hostile checks to end", timeout=90, interval=0.02)
    return created


def test_hostile_targets_never_take_the_agent_past_its_concurrency(start_agent, api_server, db, hostile):
    agent = start_agent("Hostile", HC_CONCURRENCY=str(CONCURRENCY))
    wait_online(db, agent)
    agent_id = agent.state()["agent_id"]
    # Warm up with every kind at once: the reaper, lazy imports (dnspython, ssl), pools at their size.
    _run(api_server, db, agent_id, hostile, 1, {}, agent.pid)
    wait_until(lambda: threads_of(agent.pid) <= 8, "the agent idle after the warm-up", diagnostics=agent.tail)
    threads, fds = threads_of(agent.pid), fds_of(agent.pid)

    peak: dict = {}
    created = _run(api_server, db, agent_id, hostile, ROUNDS, peak, agent.pid)
    for name, check_id in created:
        results = db.results_of(check_id)
        error = results[0]["error"] if results else db.task_of(check_id)["error"]
        assert error["kind"] == hostile[name][3], (name, error)
    assert peak["threads"] <= threads + 2 * CONCURRENCY + SMALL_BOUND, peak
    assert peak["fds"] <= fds + 2 * CONCURRENCY + SMALL_BOUND, peak
    wait_until(
        lambda: threads_of(agent.pid) <= threads and fds_of(agent.pid) <= fds,
        f"the agent back to {threads} threads and {fds} descriptors",
        timeout=15,
        diagnostics=agent.tail,
    )
