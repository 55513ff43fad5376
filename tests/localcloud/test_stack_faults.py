"""How the stack scripts fail: one clear line, never a traceback."""

from __future__ import annotations

import pytest

from scripts import packages as packages_cli
from scripts.localcloud import localstack, packages, stack
from scripts.localcloud.procs import ServiceError


def test_missing_packages_when_not_root_name_the_apt_command(monkeypatch):
    monkeypatch.setattr(packages.shutil, "which", lambda name: None)
    monkeypatch.setattr(packages, "postgres_bindir", lambda: None)
    monkeypatch.setattr(packages.os, "geteuid", lambda: 1000)
    with pytest.raises(ServiceError) as info:
        packages.ensure_system_packages()
    message = str(info.value)
    assert "redis-server" in message and "postgresql" in message
    assert "sudo apt-get install -y" in message and "\n" not in message


def test_bench_tools_are_asked_for_only_with_the_bench_set_and_only_when_missing(monkeypatch, tmp_path):
    present = tmp_path / "wrk"
    present.touch()
    monkeypatch.setattr(packages.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(packages, "postgres_bindir", lambda: tmp_path)
    monkeypatch.setattr(
        packages, "BENCH_TOOLS", {"wrk": str(present), "prometheus-blackbox-exporter": str(tmp_path / "absent")}
    )
    assert packages.missing_packages() == []
    assert packages.missing_packages(need_bench=True) == ["prometheus-blackbox-exporter"]
    monkeypatch.setattr(packages.os, "geteuid", lambda: 1000)
    with pytest.raises(ServiceError, match="prometheus-blackbox-exporter"):
        packages.ensure_system_packages(need_bench=True)


def test_services_cli_reports_missing_packages_in_one_line_and_exits_1(monkeypatch, capsys):
    monkeypatch.setattr(packages.shutil, "which", lambda name: None)
    monkeypatch.setattr(packages.os, "geteuid", lambda: 1000)
    assert packages_cli.main([]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "apt-get install" in err and "Traceback" not in err


def test_localstack_that_cannot_start_leaves_the_stack_running_without_it(monkeypatch, tmp_path, capsys):
    def start(*args, **kwargs):
        raise localstack.StartFailed("Python 3.13 not found (pyenv install 3.13)")

    monkeypatch.setattr(localstack, "ensure_venv", lambda **kwargs: None)
    monkeypatch.setattr(localstack, "start", start)
    s = stack.Stack(stack.Profile("unit", tmp_path, tmp_path / "stack.env"), ports={"localstack": 1})
    stack.step_localstack(s)
    assert s.localstack_url == "" and "LOCALSTACK_URL" not in s.env
    out = capsys.readouterr().out.strip().splitlines()
    assert any("could not start" in line and "runs without it" in line for line in out)
    assert not any("Traceback" in line for line in out)


def test_a_new_piece_is_one_entry_in_the_step_list():
    """Composition only: every piece is a step function taking the Stack, run in list order."""
    assert stack.STEPS[0] is stack.step_ports and stack.STEPS[-1] is stack.step_agents
    assert all(callable(step) and step.__name__.startswith("step_") for step in stack.STEPS)
