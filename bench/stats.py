"""Pure helpers: percentiles and summaries of samples (no I/O, unit-tested)."""

from __future__ import annotations

import math
import statistics


def percentile(values: list[float], pct: float) -> float:
    """Nearest rank (the value at or above `pct` percent of the samples)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def summary(values: list[float], digits: int = 2) -> dict:
    """n, p50, p95, mean, min and max of `values`, rounded."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), digits),
        "p95": round(percentile(values, 95), digits),
        "mean": round(statistics.fmean(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def ratio(a: float, b: float, digits: int = 2) -> float | None:
    """a / b, or None when b is zero or missing."""
    if not b or a is None:
        return None
    return round(a / b, digits)
