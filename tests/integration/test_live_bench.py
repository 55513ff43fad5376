"""bench/ws_latency.py runs against a stack.env (here: chalice local and the WebSocket emulator
over the test servers) and reports p50/p95."""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import ADMIN_TOKEN, REGISTRATION_TOKEN, ROOT
from tests.integration.live_harness import EmulatorProcess

pytestmark = pytest.mark.timeout(180)


def test_ws_latency_bench_reports_percentiles(api_server, pg_url, redis_url, clean_state, tmp_path, capsys):
    emulator = EmulatorProcess(pg_url, redis_url, tmp_path / "emulator.log").start()
    try:
        env = tmp_path / "stack.env"
        env.write_text(
            f"export API_URL={api_server}\nexport WS_URL={emulator.ws_url}\n"
            f"export REGISTRATION_TOKEN={REGISTRATION_TOKEN}\nexport ADMIN_TOKEN={ADMIN_TOKEN}\n"
        )
        spec = importlib.util.spec_from_file_location("ws_latency", ROOT / "bench" / "ws_latency.py")
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
        assert bench.main(["--env", str(env), "--checks", "2", "--agents", "3"]) == 0
    finally:
        emulator.stop()
    out = capsys.readouterr().out
    assert "result sent -> update received: n=6 p50=" in out and "p95=" in out
    print(out)
