"""The pure protocol module (chalicelib/protocol.py): check types, options with their
defaults and bounds. The one place the CLI reads them from, so its flags never drift
from what the API accepts.

`chalicelib` is not part of the `hostchecker` distribution (pyproject.toml packages only
`cli`), so when it is not importable (the console script run from outside the checkout)
the module is loaded from the checkout this editable install points at. Only that one
file is loaded, never the rest of chalicelib.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _load():
    try:
        from chalicelib import protocol  # noqa: PLC0415 - inside the checkout (tests, python -m cli)

        return protocol
    except ImportError:
        pass
    path = Path(__file__).resolve().parent.parent / "chalicelib" / "protocol.py"
    spec = importlib.util.spec_from_file_location("_hostchecker_protocol", path)
    if spec is None or not path.exists():
        raise ImportError(f"hostchecker needs the checkout's chalicelib/protocol.py; not found at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


_protocol = _load()

CHECK_TYPES: tuple[str, ...] = _protocol.CHECK_TYPES
OPTION_SPECS = _protocol.OPTION_SPECS
OptionError = _protocol.OptionError
normalize_options = _protocol.normalize_options
# The protocol names either the terminal statuses or the open ones (it has had both).
TERMINAL_TASK_STATUSES: tuple[str, ...] = getattr(_protocol, "TERMINAL_TASK_STATUSES", None) or tuple(
    s for s in _protocol.TASK_STATUSES if s not in _protocol.OPEN_TASK_STATUSES
)
TERMINAL_CHECK_STATUSES = ("completed", "failed")
