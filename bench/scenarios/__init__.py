"""The scenarios of issue 15, one module each, by number.

Each module has NUMBER, TITLE, TARGET and `run(bench) -> dict` (a bench.results.scenario_result row).
"""

from __future__ import annotations

import importlib

MODULES = {
    1: "end_to_end",
    2: "throughput",
    3: "engine",
    4: "slow_http",
    5: "fanout",
    6: "read_path",
    7: "cold_start",
    8: "agent_memory",
    9: "live_push",
}


def load(number: int):
    return importlib.import_module(f"bench.scenarios.{MODULES[number]}")
