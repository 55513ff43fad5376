"""The agent's API client tells the heartbeat when the API answers (issue 16, defect 4)."""

from __future__ import annotations

import pytest

from agent.api import ApiClient, ApiRejected, ApiUnavailable
from tests.integration.agent_harness import free_port


def test_every_answer_from_the_api_is_signalled_and_no_answer_is_not(api_server):
    answered = []
    client = ApiClient(api_server, registration_token="wrong")
    client.on_answer = lambda: answered.append(1)
    with pytest.raises(ApiRejected):
        client.register("x", "Frankfurt", None, "t", ["tcp"])  # a 403 is an answer
    assert answered == [1]
    down = ApiClient(f"http://127.0.0.1:{free_port()}", registration_token="wrong")
    down.on_answer = lambda: answered.append(2)
    with pytest.raises(ApiUnavailable):
        down.register("x", "Frankfurt", None, "t", ["tcp"])
    assert answered == [1]
