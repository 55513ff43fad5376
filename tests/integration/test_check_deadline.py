"""A check's timeout is a total deadline, whatever the server does (issue 16, defect 2).

Servers that drip a byte at a time used to keep a check's thread (and socket) long after
the runner had reported the timeout: a socket timeout bounds one recv, and every drip
restarts it. Now the check's sockets are shut at its deadline, so each check ends with
`timeout` and the thread and descriptor counts return to their baseline.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import threading
import time

import pytest

from agent.checks import run_check
from tests.integration.agent_harness import wait_until

DRIP_EVERY_S = 0.2  # well inside the 1 s timeout, so no single recv ever times out
CHECKS = 12
TIMEOUT_S = 1
# The bound on how long past its deadline a check may take to end (the reaper's margin,
# plus scheduling on a busy machine).
END_BOUND_S = 5.0

BODY_PREFIX = b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\nContent-Type: text/plain\r\n\r\n"
HEADER_PREFIX = b"HTTP/1.1 200 OK\r\nX-Slow: "
TLS_PREFIX = b"\x16\x03\x03\x40\x00"  # a 16 KB handshake record, then its bytes one by one


class DripServer:
    """Accepts, sends `prefix`, then one byte every DRIP_EVERY_S, forever: one thread for all."""

    def __init__(self, prefix: bytes):
        self.prefix = prefix
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="drip-server", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.listener, selectors.EVENT_READ)
        clients: list[socket.socket] = []
        while not self.stop.is_set():
            for _key, _ in selector.select(DRIP_EVERY_S):
                conn, _ = self.listener.accept()
                conn.sendall(self.prefix)
                clients.append(conn)
            for conn in list(clients):
                try:
                    conn.send(b"x" if self.prefix is not TLS_PREFIX else b"\x00")
                except OSError:  # the check closed its end
                    conn.close()
                    clients.remove(conn)
        for conn in clients:
            conn.close()
        selector.close()
        self.listener.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def fd_listing() -> str:
    out = []
    for fd in sorted(os.listdir("/proc/self/fd"), key=int):
        with contextlib.suppress(OSError):  # the listing's own descriptor, gone already
            out.append(f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}")
    return "\n".join(out)


def run_checks(url: str, count: int) -> tuple[list[dict], int, int]:
    """Run `count` http checks at once; (results, how many still run END_BOUND_S past the
    deadline, the peak thread count seen)."""
    results: list[dict] = []
    workers = [
        threading.Thread(
            target=lambda: results.append(run_check("http", url, {"timeout": TIMEOUT_S}, allow_private=True)),
            daemon=True,
        )
        for _ in range(count)
    ]
    for worker in workers:
        worker.start()
    end = time.monotonic() + TIMEOUT_S + END_BOUND_S
    peak = threading.active_count()
    for worker in workers:
        worker.join(max(0.0, end - time.monotonic()))
        peak = max(peak, threading.active_count())
    return results, sum(w.is_alive() for w in workers), peak


@pytest.mark.parametrize(
    "prefix, scheme",
    [(BODY_PREFIX, "http"), (HEADER_PREFIX, "http"), (TLS_PREFIX, "https")],
    ids=["slow-drip body", "slow-drip headers", "slow-drip TLS handshake"],
)
def test_slow_drip_checks_end_by_their_deadline_and_leave_no_thread_or_socket(prefix, scheme):
    server = DripServer(prefix)
    url = f"{scheme}://127.0.0.1:{server.port}/"
    try:
        # Warm up: the first check opens what the process keeps (the reaper thread, lazily made files).
        assert run_checks(url, 1)[1] == 0, f"a check still runs {END_BOUND_S} s past its deadline"
        threads, fds = threading.active_count(), open_fds()
        results, alive, peak = run_checks(url, CHECKS)
        assert alive == 0, f"{alive} of {CHECKS} checks still running {END_BOUND_S} s past their deadline"
        assert {r["error"]["kind"] for r in results} == {"timeout"}, [r["error"] for r in results]
        assert peak <= threads + CHECKS  # one thread per check and nothing more
        wait_until(lambda: threading.active_count() <= threads, "check threads to end", timeout=5)
        wait_until(lambda: open_fds() <= fds, f"descriptors back to {fds}", timeout=5, diagnostics=fd_listing)
    finally:
        server.close()
