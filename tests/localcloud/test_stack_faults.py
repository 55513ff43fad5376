"""How the stack scripts fail: one clear line, never a traceback."""
from __future__ import annotations

import sys
import types

import pytest

import scripts
from scripts import services, stack


def test_missing_packages_when_not_root_name_the_apt_command(monkeypatch):
    monkeypatch.setattr(services.shutil, "which", lambda name: None)
    monkeypatch.setattr(services, "postgres_bindir", lambda: None)
    monkeypatch.setattr(services.os, "geteuid", lambda: 1000)
    with pytest.raises(services.ServiceError) as info:
        services.ensure_system_packages()
    message = str(info.value)
    assert "redis-server" in message and "postgresql" in message
    assert "sudo apt-get install -y" in message and "\n" not in message


def test_services_cli_reports_missing_packages_in_one_line_and_exits_1(monkeypatch, capsys):
    monkeypatch.setattr(services.shutil, "which", lambda name: None)
    monkeypatch.setattr(services.os, "geteuid", lambda: 1000)
    assert services.main([]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "apt-get install" in err and "Traceback" not in err


def test_localstack_that_cannot_start_leaves_the_stack_running_without_it(monkeypatch, tmp_path, capsys):
    class StartFailed(RuntimeError):
        pass

    fake = types.ModuleType("scripts.localstack")
    fake.ensure_venv = lambda *a, **k: None

    def start(*args, **kwargs):
        raise StartFailed("Python 3.13 not found (pyenv install 3.13)")

    fake.start = start
    # `from scripts import localstack` finds the package attribute first, else sys.modules.
    monkeypatch.setitem(sys.modules, "scripts.localstack", fake)
    monkeypatch.setattr(scripts, "localstack", fake, raising=False)
    profile = stack.Profile("unit", tmp_path, 1, 2, 3, 4, 5, 6, tmp_path / "stack.env")
    assert stack.start_localstack(profile) is None
    out = capsys.readouterr().out.strip().splitlines()
    assert any("could not start" in line and "runs without it" in line for line in out)
    assert not any("Traceback" in line for line in out)
