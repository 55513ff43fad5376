"""JSON as the agent writes it, to the API (agent/api.py, agent/delivery.py) and to its log (agent/logs.py).

orjson, because the agent encodes every result it sends (twice: the batch's size check, then the
body) and logs a line per task; the stdlib's encoder was 7 % of its CPU per HTTP probe in bench
scenario 3. Compact, like json.dumps with separators (",", ":"); keys that are not strings are
written as strings; NaN and infinity are written as null (json.dumps with allow_nan=False refused the
whole body). orjson has no form for an integer beyond 64 bits, which a check can carry (an http
`expect` rule shows the JSON value a server sent): such a document goes by the stdlib's encoder.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import orjson


def dumps(doc: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """`doc` as compact JSON; `default` gives a form for what JSON has none for, as json.dumps's does."""
    try:
        return orjson.dumps(doc, default=default, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(_finite(doc), default=default, separators=(",", ":"), allow_nan=False).encode()


def _finite(value: Any) -> Any:
    """`value` with NaN and infinity as None, as orjson writes them (for the stdlib's encoder)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
