"""The agent's identity file: private (0600), atomic, and reused on later starts."""

from __future__ import annotations

import json
import os
import stat
import threading

import pytest

from agent.api import ApiRejected, ApiUnauthorized, ApiUnavailable
from agent.config import load_config
from agent.identity import Identity, IdentityError
from agent.state import AgentState, StateError, load_state, save_state

ENV = {
    "HC_API_URL": "http://127.0.0.1:8390",
    "HC_REDIS_URL": "redis://127.0.0.1:63800/0",
    "HC_AGENT_NAME": "Frankfurt",
    "HC_AGENT_LOCATION": "Frankfurt, DE",
}


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_state_file_is_written_with_mode_0600_even_under_a_permissive_umask(tmp_path):
    path = tmp_path / "deep" / "state.json"
    old = os.umask(0)
    try:
        save_state(path, AgentState("a1", "secret-token", "Frankfurt", "http://x"))
    finally:
        os.umask(old)
    assert mode(path) == 0o600
    assert json.loads(path.read_text()) == {
        "agent_id": "a1",
        "api_token": "secret-token",
        "name": "Frankfurt",
        "api_url": "http://x",
    }
    assert load_state(path) == AgentState("a1", "secret-token", "Frankfurt", "http://x")


def test_rewrite_is_atomic_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "state.json"
    save_state(path, AgentState("a1", "t1", "n", "u"))
    save_state(path, AgentState("a1", "t2", "n", "u"))
    assert load_state(path).api_token == "t2"
    assert mode(path) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_missing_state_is_none_and_garbage_is_a_clear_error(tmp_path):
    assert load_state(tmp_path / "nothing.json") is None
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(StateError, match="not valid agent state"):
        load_state(bad)


class FakeApi:
    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []
        self.token = None

    def register(self, name, location, region, version, capabilities, replace=False):
        self.calls.append({"name": name, "location": location, "replace": replace, "capabilities": capabilities})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def identity_for(tmp_path, api, **env):
    cfg = load_config([], dict(ENV, HC_STATE_DIR=str(tmp_path), **env))
    return cfg, Identity(cfg, api, ["http", "tcp"], threading.Event())


def test_first_start_registers_and_stores_the_identity(tmp_path):
    api = FakeApi({"agent_id": "a1", "api_token": "tok1"})
    cfg, ident = identity_for(tmp_path, api, HC_REGISTRATION_TOKEN="reg")
    state = ident.establish()
    assert state == AgentState("a1", "tok1", "Frankfurt", "http://127.0.0.1:8390")
    assert api.token == "tok1"
    assert load_state(cfg.state_file) == state
    assert mode(cfg.state_file) == 0o600
    assert api.calls == [
        {"name": "Frankfurt", "location": "Frankfurt, DE", "replace": False, "capabilities": ["http", "tcp"]}
    ]


def test_later_start_reuses_the_stored_identity_without_registering(tmp_path):
    save_state(tmp_path / "state.json", AgentState("a1", "tok1", "Frankfurt", "http://127.0.0.1:8390"))
    api = FakeApi()  # any register call would fail: no answers
    _, ident = identity_for(tmp_path, api)  # no registration token needed either
    assert ident.establish().agent_id == "a1"
    assert api.token == "tok1"
    assert api.calls == []


def test_first_start_without_registration_token_is_an_operator_error(tmp_path):
    _, ident = identity_for(tmp_path, FakeApi())
    with pytest.raises(IdentityError, match="HC_REGISTRATION_TOKEN"):
        ident.establish()


def test_registration_waits_out_an_unavailable_api(tmp_path):
    api = FakeApi(
        ApiUnavailable(None, "unreachable", "down"),
        ApiUnavailable(503, "x", "y"),
        {"agent_id": "a1", "api_token": "tok1"},
    )
    _, ident = identity_for(tmp_path, api, HC_REGISTRATION_TOKEN="reg")
    assert ident.establish().agent_id == "a1"
    assert len(api.calls) == 3


def test_lost_state_but_taken_name_re_registers_with_replace(tmp_path):
    api = FakeApi(ApiRejected(409, "name_taken", "exists"), {"agent_id": "a1", "api_token": "tok2"})
    _, ident = identity_for(tmp_path, api, HC_REGISTRATION_TOKEN="reg")
    assert ident.establish().api_token == "tok2"
    assert [c["replace"] for c in api.calls] == [False, True]


def test_rejected_registration_token_is_an_operator_error(tmp_path):
    _, ident = identity_for(
        tmp_path, FakeApi(ApiUnauthorized(401, "unauthorized", "bad token")), HC_REGISTRATION_TOKEN="wrong"
    )
    with pytest.raises(IdentityError, match="registration token"):
        ident.establish()


def test_rejected_agent_token_re_registers_with_replace_and_saves_the_new_token(tmp_path):
    save_state(tmp_path / "state.json", AgentState("a1", "old", "Frankfurt", "http://127.0.0.1:8390"))
    api = FakeApi({"agent_id": "a1", "api_token": "new"})
    cfg, ident = identity_for(tmp_path, api, HC_REGISTRATION_TOKEN="reg")
    ident.establish()
    assert ident.reauthenticate("old") == "new"
    assert api.calls[0]["replace"] is True
    assert load_state(cfg.state_file).api_token == "new"
    # A second thread that failed with the old token gets the new one, without registering again.
    assert ident.reauthenticate("old") == "new"
    assert len(api.calls) == 1
    assert not ident.agent_id_changed.is_set()


def test_a_token_another_engine_re_registered_is_adopted_without_registering_again(tmp_path):
    """Two processes of one agent (its engines, agent/engines.py) share the state file: the first to meet
    the 401 re-registers, the other takes the token it stored."""
    save_state(tmp_path / "state.json", AgentState("a1", "old", "Frankfurt", "http://127.0.0.1:8390"))
    first_api, second_api = FakeApi({"agent_id": "a1", "api_token": "new"}), FakeApi()
    _, first = identity_for(tmp_path, first_api, HC_REGISTRATION_TOKEN="reg")
    _, second = identity_for(tmp_path, second_api, HC_REGISTRATION_TOKEN="reg")
    first.establish()
    second.establish()
    assert first.reauthenticate("old") == "new"
    assert second.reauthenticate("old") == "new"
    assert second_api.calls == [] and second_api.token == "new"
    assert not second.agent_id_changed.is_set()


def test_rejected_agent_token_without_registration_token_gives_up(tmp_path):
    save_state(tmp_path / "state.json", AgentState("a1", "old", "Frankfurt", "http://127.0.0.1:8390"))
    _, ident = identity_for(tmp_path, FakeApi())
    ident.establish()
    assert ident.reauthenticate("old") is None
