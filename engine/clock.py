"""The engine's time: aware UTC datetimes outside, integer epoch microseconds inside (the
rules core compares and adds those exactly; docs/durable-rules-findings.md).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICRO


def from_micros(micros: int) -> datetime:
    return _EPOCH + micros * _MICRO


def now() -> datetime:
    """The wall clock, aware and in UTC (every stored time is)."""
    return datetime.now(UTC)
