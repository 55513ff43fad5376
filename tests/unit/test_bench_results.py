"""The bench's pure parts: the result document's shape, the markdown table, comparing two runs, and
the parsers of what the tools print (py-spy raw, wrk's summary line, -X importtime, /proc stat).
No timing is asserted here: speed targets live in bench/ (make bench)."""

from __future__ import annotations

import json

import pytest

from bench import compare, results, stats
from bench.procstat import parse_stat_cpu_ms
from bench.profile import frame_name, parse_raw
from bench.scenarios.cold_start import parse_importtime
from bench.wrk import parse as parse_wrk


def meta(**extra):
    base = {
        "date": "2026-12-02T00:10:00Z",
        "git_sha": "0123456789abcdef",
        "short_sha": "0123456",
        "branch": "main",
        "dirty": False,
        "cores": 2,
        "load_average": {"start": [1.5, 1.0, 0.5], "end": [2.0, 1.2, 0.6]},
        "python": "3.11.7",
        "duration_s": 300.0,
        "scenarios": [1, 2],
        "partial": False,
    }
    base.update(extra)
    return base


def doc(metrics_by_id: dict[int, dict] | None = None):
    rows = [
        results.scenario_result(n, f"scenario {n}", "a | b", "≤ 1", n == 1, "note", values)
        for n, values in sorted((metrics_by_id or {}).items())
    ]
    return results.document(meta(), rows)


def test_a_result_document_has_every_field_compare_and_the_table_read():
    d = doc({1: {"p50_ms": 3.0, "flag": True, "label": "x"}})
    assert results.validate(d) == []
    row = d["scenarios"][0]
    assert row["metrics"] == {"p50_ms": 3.0}, "only numbers are metrics (a bool or text is not)"
    assert json.loads(json.dumps(d)) == d


def test_validate_names_what_is_missing():
    d = doc()
    del d["meta"]["load_average"]
    d["scenarios"] = [{"id": 4, "metrics": {"x": "fast"}}]
    problems = results.validate(d)
    assert "meta.load_average is missing" in problems
    assert "scenario 4: figure is missing" in problems
    assert "scenario 4: metric x is not a number" in problems


def test_a_scenario_that_failed_is_a_row_that_says_why():
    row = results.scenario_error(6, "read path", "≤ 5 ms", "RuntimeError: no database")
    assert row["status"] == "error" and row["met"] is None
    assert "no database" in row["notes"]


def test_the_markdown_table_has_the_columns_a_row_per_scenario_and_escapes_pipes():
    d = results.document(
        meta(),
        [
            results.scenario_result(2, "throughput", "145 tasks/s", "≥ 1,000", False, "API | pool wait", {}),
            results.scenario_result(1, "end to end", "p50 7 ms", "≤ 8", True, "", {}),
        ],
    )
    text = results.render_markdown(d)
    assert "| # | scenario | figure | target | met? | notes / bottleneck |" in text
    lines = [line for line in text.splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")]
    assert [line[:4] for line in lines] == ["| 1 ", "| 2 "], "rows in scenario order"
    assert "API \\| pool wait" in lines[1] and "**no**" in lines[1] and "| yes |" in lines[0]
    assert "load average 1.50 1.00 0.50 at the start" in text and "2 cores" in text


def test_the_header_gives_the_cpu_yardstick_when_the_run_took_it():
    with_stick = results.render_markdown(results.document(meta(yardstick_ms={"start": 35.4, "end": 58.0}), []))
    assert "CPU yardstick (one fixed Python loop, best of 3): 35.4 ms at the start, 58.0 ms at the end" in with_stick
    assert "yardstick" not in results.render_markdown(results.document(meta(), []))  # an older document


def test_file_names_carry_the_date_the_sha_and_a_partial_runs_scenarios(tmp_path):
    assert results.file_stem(meta()) == "2026-12-02-0123456"
    assert results.file_stem(meta(partial=True, scenarios=[3])) == "2026-12-02-0123456-s3"
    full = results.document(meta(), [])
    results.write(full, tmp_path)
    assert (tmp_path / "LATEST.md").exists() and (tmp_path / "2026-12-02-0123456.json").exists()
    (tmp_path / "LATEST.md").unlink()
    results.write(results.document(meta(partial=True, scenarios=[3]), []), tmp_path)
    assert not (tmp_path / "LATEST.md").exists(), "a run of some scenarios is not the latest table"
    assert results.load(tmp_path / "2026-12-02-0123456-s3.json")["meta"]["scenarios"] == [3]


def test_load_refuses_a_file_that_is_not_a_result(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"schema": 99}))
    with pytest.raises(ValueError, match="not a bench result"):
        results.load(path)


def test_compare_gives_the_ratio_and_which_run_is_better_by_the_metrics_direction():
    a = doc({2: {"tasks_per_s": 100.0, "cpu_ms_per_task": 10.0, "only_in_a": 1.0}})
    b = doc({2: {"tasks_per_s": 400.0, "cpu_ms_per_task": 12.0}})
    rows = {row["metric"]: row for row in compare.compare(a, b)}
    assert set(rows) == {"tasks_per_s", "cpu_ms_per_task"}
    assert rows["tasks_per_s"]["ratio"] == 4.0 and rows["tasks_per_s"]["better"] == "B"
    assert rows["cpu_ms_per_task"]["ratio"] == 1.2 and rows["cpu_ms_per_task"]["better"] == "A"


def test_the_compare_command_reads_two_files(tmp_path, capsys):
    a, b = doc({1: {"p50_ms": 20.0}}), doc({1: {"p50_ms": 5.0}})
    for d, name in ((a, "a.json"), (b, "b.json")):
        (tmp_path / name).write_text(json.dumps(d))
    assert compare.main([str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert "p50_ms" in out and "0.250" in out
    assert compare.main([str(tmp_path / "a.json"), str(tmp_path / "missing.json")]) == 2


def test_percentiles_are_nearest_rank():
    values = list(range(1, 101))
    assert stats.percentile(values, 50) == 50 and stats.percentile(values, 95) == 95
    assert stats.summary([2.0, 4.0])["p50"] == 2.0
    assert stats.ratio(3, 0) is None and stats.ratio(3, 2) == 1.5


def test_py_spy_raw_output_gives_self_and_our_inclusive_frames():
    raw = "\n".join(
        [
            "<module> (app.py:1);handler (chalicelib/checks.py:40);execute (psycopg/cursor.py:10) 6",
            "<module> (app.py:1);handler (chalicelib/checks.py:41);dumps (json/__init__.py:3) 3",
            "run (agent/runner.py:9) 1",
        ]
    )
    own, ours, total = parse_raw(raw)
    assert total == 10
    assert own.most_common(1) == [("execute (cursor.py)", 6)]
    assert ours["handler (chalicelib/checks.py)"] == 9, "one function, whatever its line"
    assert ours["<module> (app.py)"] == 0, "only the innermost of our frames counts"
    assert ours["run (agent/runner.py)"] == 1
    assert frame_name("wait (/usr/lib/python3.11/threading.py:320)") == "wait (threading.py)"


def test_wrk_summary_line_is_parsed_with_its_rate():
    line = (
        'BENCH {"requests":500,"duration_us":2000000,"connect":1,"read":2,"write":0,"status":3,'
        '"timeout":4,"p50_us":900,"p95_us":1500,"p99_us":2000}'
    )
    parsed = parse_wrk("Running 2s test\n" + line + "\n")
    assert parsed["per_s"] == 250 and parsed["errors"] == 7 and parsed["status"] == 3
    with pytest.raises(RuntimeError, match="no summary"):
        parse_wrk("unable to connect")


def test_importtime_output_gives_the_total_and_the_heaviest_direct_imports():
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        100 |   json",
            "import time:        50 |         50 |     json.decoder",
            "import time:       200 |     140000 |   aws_xray_sdk",
            "import time:        10 |      30000 |   redis.asyncio",
            "import time:      1000 |     300000 | app",
        ]
    )
    parsed = parse_importtime(stderr)
    assert parsed["total_ms"] == 300
    assert parsed["top"][0] == ("aws_xray_sdk", 140) and ("json.decoder", 0.05) not in parsed["top"]
    assert parsed["self_top"][0] == ("app", 1)
    # ours against the libraries': app's own body, and each package as one of ours first imported it
    assert parsed["ours_ms"] == 1
    assert parsed["libraries"] == [("aws_xray_sdk", 140), ("redis", 30), ("json", 0.1)]
    with pytest.raises(ValueError, match="app"):
        parse_importtime("import time:       100 |        100 | json")


def test_proc_stat_cpu_fields_are_utime_stime_and_reaped_children():
    from bench.procstat import TICK_MS

    # the fields after "(comm) ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime ...
    fields = ["S", "1", "1", "1", "0", "-1", "0", "0", "0", "0", "0", "30", "20", "5", "5"]
    own, reaped = parse_stat_cpu_ms(fields)
    assert own == 50 * TICK_MS and reaped == 10 * TICK_MS
