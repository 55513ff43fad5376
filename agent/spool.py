"""Results the API has not accepted yet, kept on disk until it does.

One file per task, `STATE_DIR/spool/<task_id>.json`:

    {"task_id": "...", "entry_ids": ["1700000000000-0"], "result": {envelope},
     "check_type": "http", "spooled_at_ms": 1700000000000}

Each file is written atomically (temporary file, fsync, rename, fsync of the
folder), so after `put` returns the result survives a crash or power loss, and
a half-written file can never be mistaken for a result. A file is removed only
after the API accepted the result and the stream entries were acknowledged. If
the agent dies between the two, the replay posts the result again; the API's
result endpoint is idempotent, so it is still stored exactly once.

One file per result rather than an append-only log: delivery order does not
matter, removal is a single unlink, and there is nothing to compact.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agent.state import fsync_dir, write_private_file

log = logging.getLogger("agent.spool")

_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


@dataclass
class SpooledResult:
    task_id: str
    result: dict
    entry_ids: list[str] = field(default_factory=list)
    check_type: str = ""
    spooled_at_ms: int = 0


class Spool:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._task_ids: set[str] = set()

    def open(self) -> list[SpooledResult]:
        """Create the folder, drop leftover temporary files, and return what is spooled."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        entries = []
        for path in sorted(self.directory.iterdir()):
            if path.name.startswith("."):  # an interrupted write: never renamed, so never a result
                path.unlink(missing_ok=True)
                continue
            if path.suffix != ".json":
                continue
            try:
                doc = json.loads(path.read_bytes())
                entry = SpooledResult(**{k: doc[k] for k in SpooledResult.__dataclass_fields__ if k in doc})
                if not entry.task_id or not isinstance(entry.result, dict):
                    raise ValueError("missing task_id or result")
            except (OSError, ValueError, TypeError) as exc:
                bad = path.with_suffix(".corrupt")
                log.error("spool file %s is unreadable (%s); moved to %s", path.name, exc, bad.name)
                path.rename(bad)
                continue
            entries.append(entry)
        with self._lock:
            self._task_ids = {e.task_id for e in entries}
        return entries

    def _path(self, task_id: str) -> Path:
        if _SAFE_ID.match(task_id):
            return self.directory / f"{task_id}.json"
        return self.directory / f"x{hashlib.sha256(task_id.encode()).hexdigest()[:40]}.json"

    def put(self, entry: SpooledResult) -> None:
        """Store durably; returns only once the file and its name are on disk."""
        if not entry.spooled_at_ms:
            entry.spooled_at_ms = int(time.time() * 1000)
        payload = json.dumps(asdict(entry), separators=(",", ":")).encode()
        write_private_file(self._path(entry.task_id), payload)
        with self._lock:
            self._task_ids.add(entry.task_id)

    def remove(self, task_id: str) -> None:
        path = self._path(task_id)
        try:
            path.unlink()
            fsync_dir(self.directory)
        except FileNotFoundError:
            pass
        with self._lock:
            self._task_ids.discard(task_id)

    def __contains__(self, task_id: str) -> bool:
        with self._lock:
            return task_id in self._task_ids

    def __len__(self) -> int:
        with self._lock:
            return len(self._task_ids)

    def load(self, task_id: str) -> SpooledResult | None:
        try:
            doc = json.loads(self._path(task_id).read_bytes())
        except (OSError, ValueError):
            return None
        return SpooledResult(**{k: doc[k] for k in SpooledResult.__dataclass_fields__ if k in doc})

    def task_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._task_ids)
