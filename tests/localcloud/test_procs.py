"""scripts/localcloud/procs.py: one way to stop, to poll, to probe a port, to tell a process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from scripts.localcloud import procs


def test_port_free_is_false_while_something_listens_and_true_after():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert not procs.port_free(port)
    assert procs.port_free(port)


def test_choose_ports_reuses_the_record_prefers_the_well_known_and_avoids_busy_ports(tmp_path):
    record = tmp_path / "ports.json"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        first = procs.choose_ports(record, {"a": taken, "b": None})
        assert first["a"] != taken and first["a"] != first["b"]
        again = procs.choose_ports(record, {"a": taken, "b": None})
        assert again == first  # recorded and still free: reused
        record.write_text(f'{{"a": {taken}}}')
        kept = procs.choose_ports(record, {"a": None}, keep={"a"})
        assert kept == {"a": taken}  # held by our own running server: kept as is


def test_stop_ends_a_process_group_and_ignores_a_recycled_pid():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    started = procs.start_time(child.pid)
    assert procs.stop((child.pid, started + 1)) == []  # another process's start time: left alone
    assert procs.pid_alive(child.pid)
    assert procs.stop((child.pid, started), grace=5, group=True) == [child.pid]
    child.wait(5)
    assert not procs.pid_alive(child.pid)


def test_stop_kills_what_ignores_sigterm():
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\n"
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "ready"
    procs.stop(child.pid, grace=0.5)
    assert child.wait(5) == -9


def test_wait_for_returns_the_value_or_names_what_it_waited_for():
    assert procs.wait_for(lambda: 42, 1, "the answer") == 42
    with pytest.raises(procs.ServiceError, match="waiting for nothing"):
        procs.wait_for(lambda: None, 0.2, "nothing")


def test_listens_tells_our_listener_from_another_process():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert procs.listens(os.getpid(), port)
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            assert not procs.listens(other.pid, port)
        finally:
            procs.stop(other.pid)
            other.wait()


def test_a_port_another_running_start_claimed_is_avoided_until_its_owner_exits(tmp_path):
    """Two checkouts starting at once: the second must not take a port the first chose but has not bound yet."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free now
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    foreign = procs.PORT_CLAIMS / f"test-{os.getpid()}.json"
    try:
        foreign.write_text(json.dumps({"owner": [owner.pid, procs.start_time(owner.pid)], "ports": [port]}))
        assert procs.choose_ports(tmp_path / "ports.json", {"p": port})["p"] != port
        procs.stop(owner.pid)
        owner.wait()
        assert procs.choose_ports(tmp_path / "again.json", {"p": port})["p"] == port  # the claim went with it
        assert not foreign.exists()  # pruned
    finally:
        foreign.unlink(missing_ok=True)
        procs.stop(owner.pid)
