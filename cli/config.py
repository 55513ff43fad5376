"""Where the API is: `--api-url`, else HOSTCHECKER_API_URL, else the local stack's
`.local/stack.env` when run inside a checkout (the nearest one above the current
folder, then the checkout this client is installed from).

The WebSocket and UI URLs come from HOSTCHECKER_WS_URL / HOSTCHECKER_UI_URL, else from
that stack.env, but only when it describes the same API: a WS_URL of one stack is no use
for another stack's checks.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

STACK_ENV = Path(".local") / "stack.env"


@dataclass(frozen=True)
class Endpoints:
    api_url: str
    ws_url: str = ""
    ui_url: str = ""
    source: str = ""  # where api_url came from, for error messages


def read_env_file(path: Path) -> dict[str, str]:
    """The values of a stack.env file (`export KEY=value` lines), as `source` would set them."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("export "):
            line = line.removeprefix("export ")
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier():
            continue
        try:
            parts = shlex.split(value, comments=True)
        except ValueError:
            continue
        values[key] = parts[0] if parts else ""
    return values


def find_stack_env(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents, Path(__file__).resolve().parent.parent):
        candidate = folder / STACK_ENV
        if candidate.is_file():
            return candidate
    return None


def _stack_values(stack_env: Path | None) -> dict[str, str]:
    if stack_env is None:
        return {}
    try:
        return read_env_file(stack_env)
    except OSError:
        return {}


def resolve(
    api_url: str | None, environ: dict[str, str] | None = None, stack_env: Path | None | bool = None
) -> Endpoints:
    """The endpoints to use. `stack_env=False` disables the stack.env lookup (tests)."""
    env = os.environ if environ is None else environ
    path = None if stack_env is False else (stack_env or find_stack_env())
    stack = _stack_values(path)
    source = "--api-url"
    if not api_url:
        api_url, source = env.get("HOSTCHECKER_API_URL", ""), "HOSTCHECKER_API_URL"
    if not api_url and stack.get("API_URL"):
        api_url, source = stack["API_URL"], str(path)
    if not api_url:
        raise UsageError(
            "no API URL: pass --api-url URL, set HOSTCHECKER_API_URL, "
            "or run inside a checkout whose stack is up (make up writes .local/stack.env)"
        )
    api_url = api_url.rstrip("/")
    if not api_url.startswith(("http://", "https://")):
        raise UsageError(f"--api-url: {api_url!r} is not an http(s) URL (from {source})")
    same_stack = stack.get("API_URL", "").rstrip("/") == api_url
    ws_url = env.get("HOSTCHECKER_WS_URL") or (stack.get("WS_URL", "") if same_stack else "")
    ui_url = env.get("HOSTCHECKER_UI_URL") or (stack.get("UI_URL", "") if same_stack else "")
    return Endpoints(api_url=api_url, ws_url=ws_url, ui_url=ui_url.rstrip("/"), source=source)


def share_url(endpoints: Endpoints, check_id: str) -> str | None:
    """The UI permalink of a check, when the UI's address is known."""
    return f"{endpoints.ui_url}/results/{check_id}" if endpoints.ui_url else None
