"""Who this agent is to the API: registration, the state file, re-registration.

- First start: register with the registration token, store
  `{agent_id, api_token, name, api_url}` in the state file (0600).
- Later starts: reuse the stored identity; the API need not be up for that,
  so tasks already queued in Redis run (and spool) even during an API outage.
- A token issued ahead of time (HC_AGENT_TOKEN / AGENT_TOKEN, registered once
  through the API or the CLI and handed to the host): the agent asks the API
  who it is with a heartbeat (its answer carries the agent id) and stores that.
- Stored token rejected (401) while a registration token is configured:
  register again with `replace: true`, which keeps the agent id and issues a
  new token.
"""

from __future__ import annotations

import fcntl
import logging
import threading
from collections.abc import Callable
from contextlib import contextmanager

from agent.api import ApiClient, ApiRejected, ApiUnauthorized, ApiUnavailable, backoff_delays
from agent.config import AgentConfig
from agent.state import AgentState, StateError, load_state, save_state

log = logging.getLogger("agent.identity")


class IdentityError(RuntimeError):
    """The agent cannot get an identity without the operator's help (exit 2)."""


class Stopped(RuntimeError):
    """A stop was requested while waiting for the API."""


class Identity:
    def __init__(self, config: AgentConfig, api: ApiClient, capabilities: list[str], stop: threading.Event):
        self.config = config
        self.api = api
        self.capabilities = capabilities
        self.stop = stop
        self.state: AgentState | None = None
        self._lock = threading.Lock()
        self.agent_id_changed = threading.Event()

    def establish(self) -> AgentState:
        """The stored identity, or a new registration (waiting for the API as long as it takes)."""
        cfg = self.config
        state = load_state(cfg.state_file)
        if state is not None and (state.name != cfg.name or state.api_url != cfg.api_url):
            if not cfg.registration_token:
                raise IdentityError(
                    f"state file {cfg.state_file} belongs to agent {state.name!r} at {state.api_url}, "
                    f"not {cfg.name!r} at {cfg.api_url}; set HC_REGISTRATION_TOKEN to register anew "
                    f"or point HC_STATE_FILE elsewhere"
                )
            log.warning(
                "state file %s is for %r at %s; registering %r anew",
                cfg.state_file,
                state.name,
                state.api_url,
                cfg.name,
            )
            state = None
        if cfg.agent_token and (state is None or state.api_token != cfg.agent_token):
            return self._adopt_issued_token()
        if state is not None:
            self._adopt(state)
            log.info("using stored identity", extra={"fields": {"agent_id": state.agent_id, "name": state.name}})
            return state
        if not cfg.registration_token:
            raise IdentityError(
                f"no state file at {cfg.state_file}, and HC_REGISTRATION_TOKEN / --registration-token "
                f"is not set: the first start needs it to register"
            )
        return self._register(replace=False)

    def _adopt_issued_token(self) -> AgentState:
        """Learn the agent id of an issued token from the heartbeat's answer, then store both."""
        cfg = self.config
        self.api.token = cfg.agent_token
        delays = backoff_delays(base=0.5, cap=15.0)
        waiting_logged = False
        while True:
            if self.stop.is_set():
                raise Stopped("stop requested while authenticating")
            try:
                doc = self.api.heartbeat(0, cfg.version, self.capabilities)
                break
            except ApiUnavailable as exc:
                if not waiting_logged:
                    log.warning("API unavailable for the first heartbeat (%s); retrying with backoff", exc)
                    waiting_logged = True
                self.stop.wait(max(next(delays), exc.retry_after or 0))
            except ApiRejected as exc:
                raise IdentityError(
                    f"the API rejected the issued agent token ({exc.status} {exc.code}): "
                    f"check HC_AGENT_TOKEN / AGENT_TOKEN"
                ) from None
        if self.api.token != cfg.agent_token:  # rejected, then replaced by a re-registration
            return self.state
        if not doc.get("agent_id"):
            raise IdentityError("the API's heartbeat answer lacks 'agent_id'")
        state = AgentState(agent_id=str(doc["agent_id"]), api_token=cfg.agent_token, name=cfg.name, api_url=cfg.api_url)
        save_state(cfg.state_file, state)
        self._adopt(state)
        log.info("authenticated with the issued token", extra={"fields": {"agent_id": state.agent_id}})
        return state

    def _adopt(self, state: AgentState) -> None:
        self.state = state
        self.api.token = state.api_token

    def _register(self, replace: bool) -> AgentState:
        cfg = self.config
        delays = backoff_delays(base=0.5, cap=15.0)
        waiting_logged = False
        while True:
            if self.stop.is_set():
                raise Stopped("stop requested while registering")
            try:
                doc = self.api.register(
                    cfg.name, cfg.location, cfg.region, cfg.version, self.capabilities, replace=replace
                )
                break
            except ApiUnavailable as exc:
                if not waiting_logged:
                    log.warning("API unavailable for registration (%s); retrying with backoff", exc)
                    waiting_logged = True
                self.stop.wait(max(next(delays), exc.retry_after or 0))
            except ApiUnauthorized as exc:
                raise IdentityError(
                    f"the API rejected the registration token ({exc.status} {exc.code}): check HC_REGISTRATION_TOKEN"
                ) from None
            except ApiRejected as exc:
                if exc.status == 409 and not replace:
                    # Our state file was lost but the name is ours: take it over (same agent id).
                    log.warning("agent name %r is already registered; re-registering with replace", cfg.name)
                    replace = True
                    continue
                if exc.status == 403:
                    raise IdentityError(
                        f"the API rejected the registration token ({exc.status} {exc.code}): "
                        f"check HC_REGISTRATION_TOKEN"
                    ) from None
                raise IdentityError(
                    f"the API refused the registration: {exc.status} {exc.code}: {exc.message}"
                ) from None
        try:
            state = AgentState(
                agent_id=str(doc["agent_id"]), api_token=str(doc["api_token"]), name=cfg.name, api_url=cfg.api_url
            )
        except KeyError as exc:
            raise IdentityError(f"the API's registration answer lacks {exc.args[0]!r}") from None
        save_state(cfg.state_file, state)
        if self.state is not None and self.state.agent_id != state.agent_id:
            log.error(
                "re-registration gave a new agent id %s (was %s); restarting to follow it",
                state.agent_id,
                self.state.agent_id,
            )
            self.agent_id_changed.set()
        self._adopt(state)
        log.info(
            "registered",
            extra={
                "fields": {
                    "agent_id": state.agent_id,
                    "name": state.name,
                    "replace": replace,
                    "state_file": str(cfg.state_file),
                }
            },
        )
        return state

    def stop_on_new_agent_id(self, stop: Callable[[], None]) -> None:
        """Call `stop` once a re-registration gives a new agent id: that is a new stream, which a restart
        picks up cleanly (the caller exits 1 when `agent_id_changed` is set)."""

        def watch():
            self.agent_id_changed.wait()
            stop()

        threading.Thread(target=watch, name="identity-watch", daemon=True).start()

    @contextmanager
    def _across_processes(self):
        """One re-registration at a time among the agent's processes (its engines, agent/engines.py)."""
        with open(self.config.state_dir / "identity.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _stored_newer(self, failed_token: str | None) -> AgentState | None:
        """The state file's identity when another process re-registered since `failed_token` was sent."""
        cfg = self.config
        try:
            stored = load_state(cfg.state_file)
        except (StateError, OSError):
            return None
        if stored is None or stored.api_token == failed_token:
            return None
        if (stored.name, stored.api_url) != (cfg.name, cfg.api_url):
            return None  # another agent's file: never adopted (establish() re-registers over it)
        return stored

    def reauthenticate(self, failed_token: str | None) -> str | None:
        """ApiClient's 401 hook: a new token, or None when there is no way to get one."""
        with self._lock, self._across_processes():
            if self.api.token and self.api.token != failed_token:
                return self.api.token  # another thread already re-registered
            stored = self._stored_newer(failed_token)
            if stored is not None:  # another engine of this agent already re-registered
                if self.state is not None and stored.agent_id != self.state.agent_id:
                    self.agent_id_changed.set()
                self._adopt(stored)
                return stored.api_token
            if not self.config.registration_token:
                log.error(
                    "the API rejected this agent's token and no registration token is set; "
                    "set HC_REGISTRATION_TOKEN or re-provision the agent"
                )
                return None
            log.warning("the API rejected this agent's token; re-registering with replace")
            try:
                return self._register(replace=True).api_token
            except (IdentityError, Stopped) as exc:
                log.error("re-registration failed: %s", exc)
                return None
