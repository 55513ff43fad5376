"""agent.checks.preload imports each check type's module, in a fresh interpreter, so none is
imported later on the engine loop (tests/unit/test_agent_runner.py has the order)."""

from __future__ import annotations

import json
import subprocess
import sys

from agent.checks import preload
from chalicelib.protocol import CHECK_TYPES
from scripts.localcloud.procs import ROOT

PROBE = """
import json, sys
from agent import checks
before = sorted(m for m in sys.modules if m.startswith("agent.checks."))
named = checks.preload(json.loads(sys.argv[1]))
print(json.dumps({"before": before, "named": named, "after": [n for n in named if n in sys.modules]}))
"""


def test_preload_imports_the_module_of_each_type_asked_for_and_no_other():
    asked = ["http", "dns", "no-such-type"]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(asked)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert "agent.checks.http" not in got["before"] and "agent.checks.dns" not in got["before"]
    assert got["named"] == ["agent.checks.http", "agent.checks.dns"]  # an unknown type names nothing
    assert got["after"] == got["named"]


def test_every_check_type_has_a_module_to_preload():
    assert preload(list(CHECK_TYPES)) == [f"agent.checks.{t}" for t in CHECK_TYPES]
