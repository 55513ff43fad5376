"""Fuzzing the running API from the document it serves (issue 16, suite 6).

schemathesis reads GET /api/openapi.json from the tests' real `chalice local` (api_server)
and generates requests for every operation there: bodies, path ids, query strings and
headers valid by the document (positive) and invalid ones (negative), with the SSRF corpus
(tests/ssrf_corpus.py) mixed into the targets and dns resolvers it sends (the test stage allows
private targets, so they go through the parser and into the fan-out; the refusals themselves
are tests/integration/test_ssrf.py's). Every response
must be documented for its operation (status, content type, JSON schema) and none may be
a 5xx. Credentials are real where the operation takes them (an agent's token, the
registration and admin tokens), so the fuzzing gets past authentication into validation
and the services.

Reproducible and bounded: Hypothesis runs derandomized (its seed comes from the test), with
no example database, and a fixed number of examples per operation. The per-client rate
limits are reset between cases (they would answer every case after the 600th with a 429,
documented but shallow), and the agents' task streams are marked read between cases (they
never run anything here; admission control would refuse every check to agents that far behind).
"""

from __future__ import annotations

import pytest
import redis as redis_lib
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from chalicelib.protocol import STREAM_GROUP
from tests import ssrf_corpus
from tests.integration.conftest import ADMIN_TOKEN, REGISTRATION_TOKEN, register_over_http

MIN_CASES = 2000
# (positive, negative) examples per operation. Generating a POST /api/checks body costs
# several times a path id, so the cheap operations carry more of the total; Hypothesis stops
# early for an operation with nothing to vary (GET /health), so the total is counted.
EXAMPLES = {
    "createCheck": (300, 60),
    "postResult": (150, 60),
    "registerAgent": (120, 50),
    "agentHeartbeat": (120, 50),
    "listChecks": (120, 60),
}
DEFAULT_EXAMPLES = (100, 40)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SSRF_VALUES = ssrf_corpus.TARGETS + ssrf_corpus.RESOLVERS


def _credentials(operation, agent_token: str) -> dict[str, str]:
    """Real values for the credential headers the operation declares."""
    known = {"X-Agent-Token": agent_token, "X-Registration-Token": REGISTRATION_TOKEN, "X-Admin-Token": ADMIN_TOKEN}
    declared = {p["name"] for p in operation.definition.raw.get("parameters", []) if p.get("in") == "header"}
    return {name: value for name, value in known.items() if name in declared}


def _with_ssrf_target(case_and_value):
    """A createCheck case whose target (or dns resolver) is one of the SSRF corpus."""
    case, value, where = case_and_value
    body = case.body
    if isinstance(body, dict):
        if where == "target" or not isinstance(body.get("options"), dict):
            body["target"] = value
        else:
            body["options"] = {**body["options"], "dns": {"resolver": value}}
            body["checks"] = sorted({*(c for c in body.get("checks") or [] if isinstance(c, str)), "dns"})
    return case


def _strategy(operation, mode: GenerationMode, headers: dict):
    strategy = operation.as_strategy(generation_mode=mode, headers=headers or None)
    if operation.definition.raw.get("operationId") == "createCheck" and mode is GenerationMode.POSITIVE:
        corpus = st.tuples(strategy, st.sampled_from(SSRF_VALUES), st.sampled_from(["target", "resolver"]))
        strategy = st.one_of(strategy, corpus.map(_with_ssrf_target))
    return strategy


# About 2,100 cases; measured here at 7 min with the machine's load at 14 on 2 cores (the test
# process used 60 s of CPU), so the bound leaves room above pytest.ini's 300 s.
@pytest.mark.timeout(900)
def test_fuzzing_every_operation_finds_no_5xx_and_no_undocumented_response(api_server, redis_url, clean_state):
    session = requests.Session()
    served = session.get(f"{api_server}/api/openapi.json", timeout=30)
    assert served.status_code == 200
    schema = schemathesis.openapi.from_dict(served.json())
    agent = register_over_http(api_server, "fuzz-agent")
    limits = redis_lib.Redis.from_url(redis_url)
    counted: dict[str, int] = {}
    failures: list[str] = []
    ssrf_sent = 0

    def run_case(label: str, case) -> None:
        nonlocal ssrf_sent
        for key in limits.scan_iter("hc:rl:*", count=1000):  # a fresh client each time (see the docstring)
            limits.delete(key)
        # The agents keep up, as running agents do: their groups move past what waits. Else, 5 s in,
        # every check would be refused 503 agents_busy (admission control), documented but shallow.
        keeping_up = limits.pipeline(transaction=False)
        for key in limits.scan_iter("hc:tasks:*", count=1000):
            keeping_up.xgroup_setid(key, STREAM_GROUP, "$")
        keeping_up.execute(raise_on_error=False)
        response = case.call(base_url=api_server, session=session, headers={"Connection": "close"}, timeout=30)
        counted[label] = counted.get(label, 0) + 1
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception as exc:  # noqa: BLE001 - collected: every failure is reported, not just the first
            failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:600]}\n  {case.as_curl_command()[:600]}")
        body = case.body if isinstance(case.body, dict) else {}
        options = body.get("options") if isinstance(body.get("options"), dict) else {}
        dns = options.get("dns") if isinstance(options.get("dns"), dict) else {}
        ssrf_sent += body.get("target") in SSRF_VALUES or dns.get("resolver") in SSRF_VALUES

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(item) for item in schema.raw_schema["paths"].values())
    for operation in operations:
        op_id = operation.definition.raw["operationId"]
        positive, negative = EXAMPLES.get(op_id, DEFAULT_EXAMPLES)
        budget = {GenerationMode.POSITIVE: positive, GenerationMode.NEGATIVE: negative}
        headers = _credentials(operation, agent["api_token"])
        for mode, examples in budget.items():
            label = f"{operation.label} ({mode.value})"

            @settings(
                max_examples=examples,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=_strategy(operation, mode, headers))
            def fuzz(case):
                run_case(fuzz.label, case)

            fuzz.label = label

            try:
                fuzz()
            except Exception as exc:  # noqa: BLE001 - e.g. nothing negative to generate for GET /health
                if counted.get(label):
                    raise
                if "Unsatisfiable" not in type(exc).__name__ and "negative" not in str(exc).lower():
                    raise
    total = sum(counted.values())
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(counted.items()))
    assert not failures, f"{len(failures)} of {total} cases failed:\n" + "\n".join(failures[:20])
    assert total >= MIN_CASES, f"only {total} cases ({summary})"
    assert {label.rsplit(" (", 1)[0] for label in counted} == {op.label for op in operations}, summary
    assert ssrf_sent >= 50, f"only {ssrf_sent} cases carried an SSRF corpus target or resolver"
