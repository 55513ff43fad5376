"""The agent's identity on disk: `{agent_id, api_token, name, api_url}`.

The API shows the token only once, at registration, so losing it means
re-registering. The file is written atomically (temporary file in the same
folder, fsync, rename, fsync of the folder) with mode 0600 from the start, so
the token is never readable by others, not even for a moment.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path


class StateError(RuntimeError):
    """The state file exists but cannot be used; the message says why."""


@dataclass(frozen=True)
class AgentState:
    agent_id: str
    api_token: str
    name: str
    api_url: str


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private_file(path: Path, payload: bytes) -> None:
    """Atomically replace `path` with `payload`, mode 0600, durable on return."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask can only remove bits; be explicit anyway
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def load_state(path: Path) -> AgentState | None:
    """The stored identity, or None when there is no state file yet."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read state file {path}: {exc.strerror}") from None
    try:
        doc = json.loads(raw)
        return AgentState(**{k: str(doc[k]) for k in AgentState.__dataclass_fields__})
    except (ValueError, KeyError, TypeError):
        raise StateError(f"state file {path} is not valid agent state; move it away to register again") from None


def save_state(path: Path, state: AgentState) -> None:
    write_private_file(path, json.dumps(asdict(state), indent=2).encode() + b"\n")
