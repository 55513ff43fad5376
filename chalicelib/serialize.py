"""JSON-ready values for responses and published events."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(value: datetime | None) -> str | None:
    """UTC, ISO 8601 with milliseconds and a Z."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def now_iso() -> str:
    return iso(datetime.now(UTC))
