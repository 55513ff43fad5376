"""Name lookups under the check's deadline (agent/checks/base.py resolve_checked),
with a scripted resolver: no DNS traffic."""

from __future__ import annotations

import threading
import time

import pytest

from agent.checks.base import CheckContext, CheckFailure, resolve_checked
from chalicelib import targets

STUCK = 64  # the runner's default concurrency: every other check stuck in a lookup


def context(timeout_s: float) -> CheckContext:
    return CheckContext("tcp", targets.parse_target("free.example.com"), {}, allow_private=True, timeout_s=timeout_s)


@pytest.fixture
def resolver(monkeypatch):
    """`stuck-*` names hang until the gate opens; any other name answers at once."""
    gate = threading.Event()
    in_lookup = []
    lock = threading.Lock()

    def fake_resolve(host, allow_private, family=0):
        if host.startswith("stuck-"):
            with lock:
                in_lookup.append(host)
            gate.wait(60)
            return ["192.0.2.1"]
        return ["192.0.2.7"]

    monkeypatch.setattr(targets, "resolve", fake_resolve)
    yield gate, in_lookup
    gate.set()


def test_lookups_stuck_on_a_dead_resolver_do_not_hold_up_other_checks(resolver):
    gate, in_lookup = resolver
    waiting = [
        threading.Thread(target=lambda n=n: resolve_checked(context(60), f"stuck-{n}.example.com"), daemon=True)
        for n in range(STUCK)
    ]
    for thread in waiting:
        thread.start()
    end = time.monotonic() + 10
    while len(in_lookup) < STUCK and time.monotonic() < end:
        time.sleep(0.01)
    assert len(in_lookup) == STUCK, "every stuck check has its own lookup running, none queued"
    # A shared bounded pool would queue this behind the stuck ones until the deadline.
    assert resolve_checked(context(5), "free.example.com") == ["192.0.2.7"]
    gate.set()
    for thread in waiting:
        thread.join(10)


def test_a_lookup_that_outlives_the_deadline_is_a_dns_failure(resolver):
    with pytest.raises(CheckFailure) as failure:
        resolve_checked(context(0.2), "stuck-slow.example.com")
    assert failure.value.kind == "dns_failure" and "timed out" in failure.value.message


def test_lookup_errors_reach_the_check(monkeypatch):
    def blocked(host, allow_private, family=0):
        raise targets.BlockedTarget(f"{host} resolves to 127.0.0.1")

    monkeypatch.setattr(targets, "resolve", blocked)
    with pytest.raises(targets.BlockedTarget):
        resolve_checked(context(5), "rebind.example.com")
