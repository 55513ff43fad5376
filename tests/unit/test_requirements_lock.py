"""The hash-pinned requirements*.txt are `make lock`'s output from the hand-edited requirements*.in.

Chalice bundles requirements.txt, infra/agent installs requirements-agent.txt and `make venv`
installs requirements-dev.txt, so a pin edited in an .in file without `make lock` would not ship,
and a venv that differs from the bundle would test something else than what ships.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ["requirements.txt", "requirements-agent.txt", "requirements-dev.txt"]
SHIPPED = ["requirements.txt", "requirements-agent.txt"]
NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_in(path: Path) -> dict[str, str]:
    """{name: specifier} of a hand-edited file, following its `-r` includes."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r "):
            pins.update(read_in(path.parent / line[3:].strip()))
        elif line:
            m = NAME.match(line)
            assert m, f"{path.name}: cannot read {raw!r}"
            pins[_norm(m.group(1))] = m.group(3).strip()
    return pins


def read_lock(path: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """{name: (version, hashes)} of a lock, one entry per `\\`-continued requirement."""
    text = re.sub(r"\\\n", " ", path.read_text())
    entries = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;]+)", line)
        assert m, f"{path.name}: not an exact pin: {raw[:80]!r}"
        hashes = frozenset(re.findall(r"--hash=(sha256:[0-9a-f]{64})", line))
        entries[_norm(m.group(1))] = (m.group(2), hashes)
    return entries


@pytest.mark.parametrize("lock", LOCKS)
def test_every_top_level_pin_is_exact_and_in_its_lock_with_the_same_version(lock):
    source = lock.replace(".txt", ".in")
    wanted = read_in(ROOT / source)
    locked = read_lock(ROOT / lock)
    for name, spec in wanted.items():
        assert spec.startswith("==") and "," not in spec, f"{source}: {name} is not pinned exactly ({spec!r})"
        assert name in locked, f"{name} is in {source} but not in {lock}: run `make lock`"
        assert locked[name][0] == spec[2:], (
            f"{source} pins {name}{spec} but {lock} has {locked[name][0]}: run `make lock`"
        )


@pytest.mark.parametrize("lock", LOCKS)
def test_every_locked_package_has_hashes(lock):
    unhashed = [name for name, (_, hashes) in read_lock(ROOT / lock).items() if not hashes]
    assert not unhashed, f"{lock}: no --hash for {unhashed}: run `make lock`"


@pytest.mark.parametrize("lock", SHIPPED)
def test_the_dev_venv_installs_exactly_what_ships(lock):
    dev = read_lock(ROOT / "requirements-dev.txt")
    for name, (version, hashes) in read_lock(ROOT / lock).items():
        assert name in dev, f"{name} ({lock}) is missing from requirements-dev.txt: run `make lock`"
        assert dev[name] == (version, hashes), (
            f"{name}: {lock} has {version}, requirements-dev.txt has {dev[name][0]} (or other hashes): run `make lock`"
        )


def test_the_lambda_bundle_holds_only_the_apps_packages():
    """requirements.in includes nothing: agent and dev packages stay out of the Lambda bundle."""
    text = (ROOT / "requirements.in").read_text()
    assert not re.search(r"^\s*-[rc]\s", text, re.M), "requirements.in must not include other files"
    assert not {"chalice", "pytest", "moto", "requests"} & set(read_lock(ROOT / "requirements.txt"))
