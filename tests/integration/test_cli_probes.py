"""`hostchecker` for the probe protocols, mtr and the layer verdict, against the real test API
with fake agents posting results (tests/integration/cli_harness.py)."""

from __future__ import annotations

import json

import pytest
import requests
from jsonschema import Draft202012Validator

from tests.integration.cli_harness import fake_agents, run_cli  # noqa: F401 - the fixture


@pytest.fixture
def three_agents(fake_agents):
    return [
        fake_agents("fra-1", "Frankfurt", ms=11),
        fake_agents("iad-1", "Virginia", ms=41),
        fake_agents("sin-1", "Singapore", ms=121, fails=("http",)),
    ]


def cli(api_server, tmp_path, *args):
    return run_cli(api_server, *args, cwd=tmp_path)


def test_tcp_ping_flags_reach_the_api_and_the_json_matches_the_schema(api_server, three_agents, tmp_path):
    run = cli(api_server, tmp_path, "ping", "example.test", "--protocol", "TCP", "--port", "8443", "--json")
    assert run.returncode == 0, run.stderr
    check = json.loads(run.stdout)
    assert check["options"]["ping"]["protocol"] == "tcp" and check["options"]["ping"]["port"] == 8443
    openapi = requests.get(f"{api_server}/api/openapi.json", timeout=10).json()
    schema = {"$ref": "#/components/schemas/Check", "components": openapi["components"]}
    assert not list(Draft202012Validator(schema).iter_errors(check))
    assert check["verdict"]["scope"] == "none"


def test_a_port_for_icmp_is_refused_naming_the_option(api_server, three_agents, tmp_path):
    run = cli(api_server, tmp_path, "traceroute", "example.test", "--port", "80")
    assert run.returncode == 2
    assert "port applies only with protocol tcp or udp" in run.stderr and "Traceback" not in run.stderr


def test_mtr_prints_each_agents_hops_in_mtr_columns(api_server, three_agents, tmp_path):
    run = cli(api_server, tmp_path, "mtr", "example.test", "--count", "3")
    assert run.returncode == 0, run.stderr
    assert "MTR OK from 3/3 agents, median RTT 41 ms" in run.stdout
    assert run.stdout.count("MTR hops from") == 3
    for column in ("Hop", "Host", "Loss", "Sent", "Last", "Avg", "Best", "Worst", "StDev", "Jitter"):
        assert column in run.stdout
    line = next(x for x in run.stdout.splitlines() if "gw.example.test" in x and "33.3%" in x)
    assert "5.5 ms" in line  # fra-1: the first hop at half its 11 ms


def test_the_layer_verdict_names_the_failing_layer_and_region(api_server, three_agents, tmp_path):
    run = cli(api_server, tmp_path, "check", "http://example.test/", "--type", "http,tcp")
    assert run.returncode == 1  # a task failed
    # Singapore's http was refused while its tcp connected: the TCP layer fails there only
    assert "Layers (regional): TCP fails from Singapore only" in run.stdout
