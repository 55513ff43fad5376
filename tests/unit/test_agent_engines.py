"""agent/engines.py's pure parts: the concurrency's shares, the spool folders, and the results an
earlier start's extra engines left (the processes themselves: tests/integration/test_agent_engines.py)."""

from __future__ import annotations

from agent.engines import Shared, SharedClock, adopt_orphan_spools, shares, spool_folder
from agent.spool import Spool, SpooledResult
from chalicelib.protocol import MAX_CLOCK_OFFSET_S


def test_shares_split_the_concurrency_as_evenly_as_it_divides():
    assert shares(64, 2) == [32, 32]
    assert shares(5, 2) == [3, 2]
    assert shares(512, 3) == [171, 171, 170]
    assert sum(shares(7, 4)) == 7


def test_engine_0_keeps_the_spool_folder_and_the_others_get_one_each(tmp_path):
    assert spool_folder(tmp_path, 0) == tmp_path
    assert spool_folder(tmp_path, 2) == tmp_path / "engine-2"


def spool_one(folder, task_id: str) -> None:
    spool = Spool(folder)
    spool.open()
    spool.put(SpooledResult(task_id, {"success": True}, ["1-0"], "tcp"))


def test_results_spooled_by_engines_this_start_lacks_move_to_engine_0(tmp_path):
    spool_one(tmp_path, "kept-by-0")
    spool_one(tmp_path / "engine-1", "kept-by-1")
    spool_one(tmp_path / "engine-2", "orphan-a")
    spool_one(tmp_path / "engine-3", "orphan-b")
    (tmp_path / "engine-3" / ".tmp-interrupted").write_text("half")

    assert adopt_orphan_spools(tmp_path, engines=2) == 2
    assert sorted(e.task_id for e in Spool(tmp_path).open()) == ["kept-by-0", "orphan-a", "orphan-b"]
    assert [e.task_id for e in Spool(tmp_path / "engine-1").open()] == ["kept-by-1"]
    assert not (tmp_path / "engine-2").exists() and not (tmp_path / "engine-3").exists()
    # One engine again: engine 1's result is taken over too, and nothing is left behind.
    assert adopt_orphan_spools(tmp_path, engines=1) == 1
    assert len(Spool(tmp_path).open()) == 4
    assert adopt_orphan_spools(tmp_path, engines=1) == 0


def test_engines_read_the_supervisors_clock_estimate():
    shared = Shared(2)
    clock = SharedClock(shared)
    assert clock.offset_ms is None and not clock.refusing()
    shared.publish_clock(1500.0)
    assert clock.offset_ms == 1500.0 and not clock.refusing()
    shared.publish_clock(MAX_CLOCK_OFFSET_S * 1000 + 1)
    assert clock.refusing()
    shared.in_flight[0], shared.in_flight[1] = 3, 4
    assert shared.tasks() == 7
