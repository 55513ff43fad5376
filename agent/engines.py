"""Several engine processes for one agent (`HC_ENGINES` / `--engines N`, default 1).

One Python process runs its checks on one core (its interpreter lock), however many the host has. With
N engines the agent runs N whole runners (agent/runner.py), each over its share of the concurrency, in
processes forked from one supervisor (the process started, `python -m agent`):

- The supervisor holds the state folder's lock and the identity, heartbeats for all of them (their
  tasks in flight summed, read from shared memory), and shares its estimate of the API's clock with
  them the same way. The checks' modules are imported before the fork, so the engines share them.
- Engine i reads the agent's one stream as consumer `engine_consumer(name, i)` (agent/queue.py) and
  spools into a folder of its own (engine 0 the spool folder itself, engine i `spool/engine-i`), so a
  restart finds each engine's pending entries and spooled results where it left them. Engine 0 also
  takes what an earlier start's engines left that this start has none of (fewer engines now): their
  pending entries (claimed, never a live sibling's) and their spooled results (moved to its folder).
- SIGTERM or SIGINT to the supervisor: every engine stops taking tasks and drains as one agent does
  (the grace period, then every result delivered or spooled), and the supervisor exits 0 once all have;
  a second signal fails the checks still running. The engines ignore SIGINT (a terminal's Ctrl-C
  reaches the whole process group) and take their stop from the supervisor: a SIGTERM that also
  reaches them from elsewhere (systemd stops a control group) is the same first stop, never a second.
- An engine that exits on its own stops the agent: the others drain and the supervisor exits 1, for
  its service manager to start it again (the new engines take their pending entries back). An engine
  whose supervisor is gone (SIGKILL) gets SIGTERM from the kernel (PR_SET_PDEATHSIG) and drains too.
- `HC_METRICS_ADDRESS` serves one engine's figures, so it is refused with more than one (agent/config.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from multiprocessing.sharedctypes import RawArray
from pathlib import Path

from agent.clock import ClockOffset
from agent.config import AgentConfig
from agent.state import fsync_dir

log = logging.getLogger("agent.engines")

_PR_SET_PDEATHSIG = 1
# How often an engine publishes its tasks in flight for the supervisor's heartbeat.
PUBLISH_S = 0.2


def shares(concurrency: int, engines: int) -> list[int]:
    """Each engine's part of the concurrency: as even as it divides, the first ones one more."""
    base, extra = divmod(concurrency, engines)
    return [base + (1 if i < extra else 0) for i in range(engines)]


def spool_folder(spool_dir: Path, index: int) -> Path:
    return spool_dir if index == 0 else spool_dir / f"engine-{index}"


def adopt_orphan_spools(spool_dir: Path, engines: int) -> int:
    """Move the results spooled by engines this start does not have (an earlier start ran more) into
    engine 0's folder, where its replay delivers them. Returns how many moved."""
    moved = 0
    if not spool_dir.is_dir():
        return 0
    for folder in sorted(spool_dir.glob("engine-*")):
        try:
            index = int(folder.name.removeprefix("engine-"))
        except ValueError:
            continue
        if index < engines or not folder.is_dir():
            continue
        for path in folder.glob("*.json"):
            os.replace(path, spool_dir / path.name)  # same file system: atomic, the result is never lost
            moved += 1
        for leftover in folder.iterdir():  # interrupted writes (never results) and .corrupt files
            if leftover.name.startswith("."):
                leftover.unlink(missing_ok=True)
        try:
            folder.rmdir()
        except OSError:
            log.warning("left %s in place: it holds files that are not results", folder)
    if moved:
        fsync_dir(spool_dir)
        log.info("took over results spooled by engines this start does not run", extra={"fields": {"count": moved}})
    return moved


class Shared:
    """Memory the supervisor and its engines share (mapped before the fork)."""

    def __init__(self, engines: int):
        self.in_flight = RawArray("q", engines)  # engine i's tasks in flight
        self.clock = RawArray("d", 2)  # [1.0 once there is an estimate, the offset in ms]
        self.abort = RawArray("b", 1)  # 1: the second stop (fail the running checks)

    def publish_clock(self, offset_ms: float | None) -> None:
        if offset_ms is not None:
            self.clock[1] = offset_ms
            self.clock[0] = 1.0

    def tasks(self) -> int:
        return sum(self.in_flight)


class SharedClock(ClockOffset):
    """The supervisor's clock estimate (agent/clock.py), as an engine's runner reads it: ClockOffset's
    server time and refusal, over the offset the supervisor publishes instead of samples of its own."""

    def __init__(self, shared: Shared):
        super().__init__()
        self._shared = shared.clock

    @property
    def offset_ms(self) -> float | None:
        return self._shared[1] if self._shared[0] else None


def _die_with_parent() -> None:
    """SIGTERM to this process when its parent exits (Linux); elsewhere a no-op."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        pass


class Supervisor:
    """Forks the engines, heartbeats for them, passes stops on, and waits for them (the docstring above)."""

    def __init__(
        self,
        config: AgentConfig,
        api,
        identity,
        state,
        capabilities: list[str],
        run_check: Callable,
        preload: Callable[[], object] | None,
    ):
        self.config = config
        self.api = api
        self.identity = identity
        self.state = state
        self.capabilities = capabilities
        self.run_check = run_check
        self.preload = preload
        self.shared = Shared(config.engines)
        self.pids: dict[int, int] = {}  # pid -> engine index, while it runs
        self.stopping = False
        self._stops = 0
        self._pid = os.getpid()

    # -- the supervisor's side ---------------------------------------------------

    def request_stop(self) -> None:
        """First call: every engine drains. Second call: they fail their running checks."""
        self._stops += 1
        self.stopping = True
        if self._stops > 1:
            log.warning("second stop request: the engines fail their running checks now")
            self.shared.abort[0] = 1
        self._signal_all(signal.SIGTERM)

    def _signal_all(self, signum: int) -> None:
        for pid in list(self.pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def run(self) -> int:
        """Run the engines until they have all exited; 0 after a requested stop, 1 if one failed."""
        from agent.heartbeat import Heartbeat

        if self.preload is not None:
            self.preload()  # imported (and frozen) once, before the fork: the engines share those pages
        for index, share in enumerate(shares(self.config.concurrency, self.config.engines)):
            self._fork(index, share)
        if self.stopping:  # a stop came while they were being forked: pass it on to them all
            self._signal_all(signal.SIGTERM)
        done = threading.Event()
        heartbeat = Heartbeat(
            self.api,
            self.config.heartbeat_interval_s,
            self.config.version,
            self.capabilities,
            self.shared.tasks,
            done,
            on_recovery=lambda: self._signal_all(signal.SIGUSR1),  # the engines try their spools now
            on_accepted=lambda: self.shared.publish_clock(heartbeat.clock.offset_ms),
        )
        heartbeat.start()
        self.identity.stop_on_new_agent_id(self.request_stop)
        code = 0
        try:
            while self.pids:
                pid, status = os.waitpid(-1, 0)
                index = self.pids.pop(pid, None)
                if index is None:
                    continue
                exit_code = os.waitstatus_to_exitcode(status)
                if not self.stopping or exit_code != 0:
                    log.error(
                        "engine %d exited (%s); stopping the agent",
                        index,
                        f"code {exit_code}" if exit_code >= 0 else signal.Signals(-exit_code).name,
                    )
                    code = 1
                    if not self.stopping:
                        self.request_stop()
        finally:
            done.set()
        return 1 if self.identity.agent_id_changed.is_set() else code

    def _fork(self, index: int, share: int) -> None:
        pid = os.fork()
        if pid:
            self.pids[pid] = index
            return
        code = 1
        try:
            code = self._engine(index, share)
        except BaseException:  # noqa: BLE001 - the child must never return into the supervisor's stack
            log.exception("engine %d failed", index)
        finally:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    # -- an engine's side (in the forked child) ----------------------------------

    def _engine(self, index: int, share: int) -> int:
        from agent.api import ApiClient
        from agent.identity import Identity
        from agent.queue import TaskQueue, engine_consumer
        from agent.runner import Runner
        from agent.spool import Spool

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # until the runner exists (below)
        _die_with_parent()
        if os.getppid() != self._pid:
            return 0  # the supervisor was gone before the line above
        config, shared = self.config, self.shared
        user_agent = f"host-checker-agent/{config.version}"
        api = ApiClient(config.api_url, registration_token=config.registration_token, user_agent=user_agent)
        stop = threading.Event()
        identity = Identity(config, api, self.capabilities, stop)
        identity._adopt(self.state)
        api.reauthenticate = identity.reauthenticate
        names = [engine_consumer(config.name, i) for i in range(config.engines)]
        queue = TaskQueue(
            config.redis_url,
            self.state.agent_id,
            consumer=names[index],
            siblings=frozenset(names) - {names[index]},
            claim_foreign=index == 0,
        )
        runner = Runner(
            dataclasses.replace(config, concurrency=share),
            api,
            queue,
            Spool(spool_folder(config.spool_dir, index)),
            self.run_check,
            self.capabilities,
            self.state.agent_id,
            heartbeat=False,
            clock=SharedClock(shared),
        )

        def on_term(_signum, _frame):
            if not runner.stop.is_set():
                runner.request_stop()
            elif shared.abort[0] and not runner.abort.is_set():
                runner.request_stop()  # the second stop: fail the running checks

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGUSR1, lambda *_: runner.wake_spool())
        identity.stop_on_new_agent_id(runner.request_stop)
        finished = threading.Event()

        def publish():
            while not finished.wait(PUBLISH_S):
                shared.in_flight[index] = runner.current_tasks()

        threading.Thread(target=publish, name="publish", daemon=True).start()
        log.info(
            "engine starting",
            extra={"fields": {"engine": index, "consumer": names[index], "concurrency": share}},
        )
        try:
            code = runner.run()
        finally:
            finished.set()
            queue.close()
            shared.in_flight[index] = 0
        return 1 if identity.agent_id_changed.is_set() else code
