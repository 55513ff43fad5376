"""The agent ships alone to regional VMs (infra/agent/install.sh, Dockerfile): every
third-party module it imports must be in requirements-agent.txt, and it may import
from chalicelib only the three pure modules that travel with it."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_FROM_CHALICELIB = {"chalicelib.targets", "chalicelib.protocol", "chalicelib.httpopts"}


def agent_imports() -> set[str]:
    names = set()
    for path in (ROOT / "agent").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
                if node.module == "chalicelib":
                    names.update(f"chalicelib.{alias.name}" for alias in node.names)
    return names


def requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[\[=<>~!; ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def test_every_third_party_import_of_the_agent_is_in_its_requirements():
    wanted = requirement_names(ROOT / "requirements-agent.txt")
    dists = packages_distributions()
    missing = set()
    for name in agent_imports():
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top in ("agent", "chalicelib"):
            continue
        for dist in dists.get(top, [top]):
            if dist.lower().replace("_", "-") not in wanted:
                missing.add(f"{top} ({dist})")
    assert missing == set()


def test_the_agent_imports_only_the_pure_chalicelib_modules():
    used = {n for n in agent_imports() if n.startswith("chalicelib.")}
    assert used <= SHIPPED_FROM_CHALICELIB
