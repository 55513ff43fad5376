"""The result spool: durable before `put` returns, replayed on open, removed once delivered."""

from __future__ import annotations

import os
import stat

import agent.state as state_module
from agent.spool import Spool, SpooledResult
from chalicelib.protocol import error, result_envelope

RESULT = result_envelope(False, 12.5, "127.0.0.1", {"port": 9}, error("refused", "connection refused"))


def test_put_then_reopen_replays_every_result(tmp_path):
    spool = Spool(tmp_path / "spool")
    assert spool.open() == []
    spool.put(SpooledResult("t-1", RESULT, ["1-0"], "tcp"))
    spool.put(SpooledResult("t-2", result_envelope(True, 3, "::1"), ["2-0", "3-0"], "http"))
    assert "t-1" in spool and len(spool) == 2

    # A new process: a fresh Spool over the same folder.
    again = Spool(tmp_path / "spool")
    entries = {e.task_id: e for e in again.open()}
    assert set(entries) == {"t-1", "t-2"}
    assert entries["t-1"].result == RESULT
    assert entries["t-1"].entry_ids == ["1-0"]
    assert entries["t-1"].check_type == "tcp"
    assert entries["t-2"].entry_ids == ["2-0", "3-0"]
    assert entries["t-1"].spooled_at_ms > 0
    assert again.load("t-2").result["success"] is True


def test_files_are_private(tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.open()
    spool.put(SpooledResult("t-1", RESULT, ["1-0"]))
    (path,) = (tmp_path / "spool").glob("*.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "spool").st_mode) == 0o700


def test_put_fsyncs_the_file_and_the_folder_before_returning(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(state_module.os, "fsync", recording_fsync)
    spool = Spool(tmp_path / "spool")
    spool.open()
    spool.put(SpooledResult("t-1", RESULT, ["1-0"]))
    folder = str(tmp_path / "spool")
    # The data first (written under a temporary name), then the folder holding the new name.
    assert len(synced) == 2
    assert synced[0].startswith(folder + "/.t-1.json.")
    assert synced[1] == folder

    synced.clear()
    spool.remove("t-1")
    assert synced == [folder]  # the removal is durable too: a delivered result is not replayed
    assert "t-1" not in spool
    assert Spool(tmp_path / "spool").open() == []


def test_interrupted_write_is_discarded_and_corrupt_file_set_aside(tmp_path):
    folder = tmp_path / "spool"
    folder.mkdir()
    (folder / ".t-9.json.1234.tmp").write_text('{"task_id": "t-9", "res')  # crash mid-write
    (folder / "t-8.json").write_text("garbage")
    spool = Spool(folder)
    spool.put(SpooledResult("t-1", RESULT, ["1-0"]))
    entries = Spool(folder).open()
    assert [e.task_id for e in entries] == ["t-1"]
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["t-1.json", "t-8.corrupt"]


def test_odd_task_ids_get_safe_file_names(tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.open()
    spool.put(SpooledResult("../../etc/passwd", RESULT, ["1-0"]))
    (path,) = (tmp_path / "spool").glob("*.json")
    assert path.parent == tmp_path / "spool"
    assert [e.task_id for e in Spool(tmp_path / "spool").open()] == ["../../etc/passwd"]
