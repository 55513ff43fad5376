"""`python -m agent`: the Host Checker agent. See `python -m agent --help`.

Exit codes: 0 after a clean stop (SIGTERM/SIGINT), 2 for a setting the
operator must fix (one line on stderr, no traceback), 1 for anything else.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import sys
import threading

from agent.config import AgentConfig, ConfigError, load_config

log = logging.getLogger("agent")


def _fail(message: str, code: int) -> int:
    print(f"hc-agent: {message}", file=sys.stderr, flush=True)
    return code


def _lock_state_dir(config: AgentConfig):
    """One agent per state folder: two would share a spool and fight over one identity."""
    config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle = open(config.state_dir / "agent.lock", "a+")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(f"another agent is already running with state folder {config.state_dir}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _warn_missing_icmp(capabilities: list[str]) -> None:
    """Say why ping/traceroute/mtr are off, the way an operator fixes it (usually a container's caps)."""
    missing = [t for t in ("ping", "traceroute", "mtr") if t not in capabilities]
    if missing:
        log.warning(
            "%s unavailable: no raw ICMP sockets (needs CAP_NET_RAW: in a container, run it with "
            "--cap-add NET_RAW; under systemd, AmbientCapabilities=CAP_NET_RAW)",
            " and ".join(missing),
        )


def main(argv: list[str] | None = None) -> int:
    try:
        config = load_config(argv)
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}", 2)

    from agent.logs import setup_logging

    setup_logging(config.log_format)
    try:
        lock = _lock_state_dir(config)
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}", 2)
    except OSError as exc:
        return _fail(
            f"configuration error: HC_STATE_DIR / --state-dir {config.state_dir} is not usable: {exc.strerror}", 2
        )

    try:
        from agent import checks

        run_check = checks.run_check_async
        capabilities = list(checks.capabilities())
    except Exception as exc:  # noqa: BLE001 - report in one line, whatever broke
        return _fail(f"the checks module cannot be loaded: {type(exc).__name__}: {exc}", 1)
    _warn_missing_icmp(capabilities)

    from agent.api import ApiClient
    from agent.identity import Identity, IdentityError, Stopped
    from agent.queue import TaskQueue
    from agent.runner import Runner
    from agent.spool import Spool
    from agent.state import StateError

    stop = threading.Event()
    runner_box: list[Runner] = []

    def on_signal(signum, _frame):
        log.info("received %s", signal.Signals(signum).name)
        if runner_box:
            runner_box[0].request_stop()
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    api = ApiClient(
        config.api_url, registration_token=config.registration_token, user_agent=f"host-checker-agent/{config.version}"
    )
    identity = Identity(config, api, capabilities, stop)
    api.reauthenticate = identity.reauthenticate
    try:
        state = identity.establish()
    except (IdentityError, StateError) as exc:
        return _fail(f"configuration error: {exc}", 2)
    except Stopped:
        return 0
    except OSError as exc:
        return _fail(f"configuration error: cannot write state file {config.state_file}: {exc.strerror}", 2)

    from agent.engines import adopt_orphan_spools

    try:
        adopt_orphan_spools(config.spool_dir, config.engines)
    except OSError as exc:
        return _fail(f"configuration error: the spool folder {config.spool_dir} is not usable: {exc.strerror}", 2)
    if config.engines > 1:
        return _supervise(config, api, identity, state, capabilities, run_check, checks, runner_box, stop, lock)
    queue = TaskQueue(config.redis_url, state.agent_id, consumer=config.name)
    runner = Runner(
        config,
        api,
        queue,
        Spool(config.spool_dir),
        run_check,
        capabilities,
        state.agent_id,
        preload=lambda: checks.preload(capabilities),
    )
    runner_box.append(runner)
    if config.metrics_address:
        from agent.metrics import serve

        try:
            serve(runner.metrics, config.metrics_address)
        except OSError as exc:
            return _fail(
                f"configuration error: HC_METRICS_ADDRESS / --metrics-address "
                f"{config.metrics_address[0]}:{config.metrics_address[1]} cannot be served: {exc.strerror}",
                2,
            )
        log.info(
            "metrics served",
            extra={"fields": {"url": f"http://{config.metrics_address[0]}:{config.metrics_address[1]}/metrics"}},
        )
    if stop.is_set():
        return 0

    identity.stop_on_new_agent_id(runner.request_stop)
    _log_starting(config, state, capabilities)
    try:
        code = runner.run()
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback; systemd restarts us
        log.error("agent failed", exc_info=exc)
        code = 1
    finally:
        queue.close()
        lock.close()
    return 1 if identity.agent_id_changed.is_set() else code


def _log_starting(config: AgentConfig, state, capabilities: list[str]) -> None:
    log.info(
        "agent starting",
        extra={
            "fields": {
                "agent_id": state.agent_id,
                "name": config.name,
                "version": config.version,
                "capabilities": ",".join(capabilities),
                "concurrency": config.concurrency,
                "engines": config.engines,
                "state_dir": str(config.state_dir),
                "allow_private_targets": config.allow_private_targets,
            }
        },
    )


def _supervise(config, api, identity, state, capabilities, run_check, checks, runner_box, stop, lock) -> int:
    """Several engine processes (agent/engines.py): the supervisor stands where the runner would."""
    from agent.engines import Supervisor

    supervisor = Supervisor(
        config, api, identity, state, capabilities, run_check, preload=lambda: checks.preload(capabilities)
    )
    runner_box.append(supervisor)
    if stop.is_set():
        return 0
    _log_starting(config, state, capabilities)
    try:
        return supervisor.run()
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback; systemd restarts us
        log.error("agent failed", exc_info=exc)
        return 1
    finally:
        lock.close()


if __name__ == "__main__":
    sys.exit(main())
