"""The CLI under a pseudo-terminal: the table fills in as each agent reports, before the
check completes. The fake agents answer one at a time, when the test opens their gate, and
the test waits (bounded) for each row on the terminal before opening the next gate.

The test API has no WebSocket yet, so this exercises the polling path; the rendering is
the same for both (cli/watch.py feeds one callback)."""

from __future__ import annotations

import io
import re
import signal

import pexpect
import requests

from tests.integration.cli_harness import FakeAgent, cli_argv, cli_env, fake_agents  # noqa: F401

SGR = re.compile(r"\x1b\[([0-9;]*)m")
COLOUR_PARAMS = {*range(30, 39), *range(40, 49), *range(90, 98), *range(100, 108)}


def colour_codes(output: str) -> set[int]:
    """The SGR colour parameters used (bold and italic are not colour: NO_COLOR allows them)."""
    return {int(p) for params in SGR.findall(output) for p in params.split(";") if p} & COLOUR_PARAMS


def _check_status(api_server: str) -> str:
    items = requests.get(f"{api_server}/api/checks", params={"limit": 1}, timeout=10).json()["items"]
    return items[0]["status"] if items else "none"


def test_rows_appear_on_a_terminal_before_the_check_completes(api_server, fake_agents, tmp_path):  # noqa: F811
    agents: list[FakeAgent] = [
        fake_agents(name, location, ms=ms, gated=True)
        for name, location, ms in (
            ("fra-1", "Frankfurt, DE", 11),
            ("iad-1", "Virginia, US", 41),
            ("sin-1", "Singapore, SG", 121),
        )
    ]
    argv = cli_argv("tcp", "example.test:443")
    child = pexpect.spawn(
        argv[0],
        argv[1:],
        cwd=str(tmp_path),
        env=cli_env(api_server),
        encoding="utf-8",
        dimensions=(40, 150),
        timeout=30,
    )
    child.logfile_read = seen = io.StringIO()
    try:
        child.expect("waiting")  # the rows are there, pending, from the first screen
        for agent in agents:
            agent.gate.set()
            child.expect(rf"{agent.name}.*?{agent.ms} ms connect")
            if agent is not agents[-1]:
                assert _check_status(api_server) != "completed", "the row should show before the check ends"
        child.expect("TCP OK from 3/3 agents, median 41 ms")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert 32 in colour_codes(seen.getvalue()), "a terminal gets colour (green for ok)"


def test_no_color_keeps_the_terminal_output_plain(api_server, fake_agents, tmp_path):  # noqa: F811
    fake_agents("fra-1", "Frankfurt, DE", ms=11)
    argv = cli_argv("tcp", "example.test")
    child = pexpect.spawn(
        argv[0],
        argv[1:],
        cwd=str(tmp_path),
        env=cli_env(api_server, NO_COLOR="1"),
        encoding="utf-8",
        dimensions=(40, 150),
        timeout=30,
    )
    output = child.read()
    child.close()
    assert child.exitstatus == 0, output
    assert "TCP OK from 1/1 agent" in output
    assert "\x1b[" in output and not colour_codes(output), "a terminal, but no colour with NO_COLOR"


def test_ctrl_c_stops_a_repeating_check_cleanly_with_a_summary(api_server, fake_agents, tmp_path):  # noqa: F811
    fake_agents("fra-1", "Frankfurt, DE", ms=11)
    fake_agents("iad-1", "Virginia, US", ms=41)
    argv = cli_argv("tcp", "example.test", "--every", "0.2")  # no --repeat: until Ctrl-C
    child = pexpect.spawn(
        argv[0],
        argv[1:],
        cwd=str(tmp_path),
        env=cli_env(api_server),
        encoding="utf-8",
        dimensions=(40, 150),
        timeout=30,
        # A user's terminal delivers Ctrl-C; a test run started in the background (`make test &`, nohup)
        # passes SIGINT on ignored, and Python keeps an inherited SIG_IGN: give the CLI a terminal's.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    child.logfile_read = seen = io.StringIO()
    child.expect("run 2: TCP OK from 2/2 agents")
    child.sendintr()
    child.expect("Summary: ")
    child.expect(pexpect.EOF)
    child.close()
    output = seen.getvalue()
    assert child.exitstatus == 0, output
    assert "stopped after" in output and "Traceback" not in output
    summary = output.split("Summary: ")[1]
    assert "fra-1" in summary and "iad-1" in summary
