"""Durations as rule authors write them: ``90s``, ``15m``, ``8h``, ``5d`` or ``1d12h``; and
business days, ``5bd``, which are not a length of time (docs/semantics.md, "Business time").

At most ``MAX_DURATION`` (100 years): a due time, or a window's end, must stay inside what
calendar arithmetic holds (Python's dates end in year 9999; a business calendar is built
one year at a time, so each year a deadline spans costs time at evaluation). A longer
duration is refused where it is written, not at the first record it would apply to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

_UNIT_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)([dhms])")
_WHOLE = re.compile(r"(?:\d+[dhms])+")
MAX_DURATION = timedelta(days=36_525)
"""The longest duration a definition may name: 100 years of 365.25 days."""
_BUSINESS_DAYS = re.compile(r"(\d+)bd")
MAX_BUSINESS_DAYS = 10_000
"""About 40 years of five-day weeks: far beyond any promise, well inside the calendar's years."""


@dataclass(frozen=True)
class BusinessDays:
    """``within: 5bd``: due at the close of business on the 5th business day after the date
    the deadline started; only meaningful with a business calendar."""

    days: int

    def __str__(self) -> str:
        return f"{self.days}bd"


def parse_business_days(text: object) -> BusinessDays | None:
    """``5bd`` as :class:`BusinessDays`; None when ``text`` does not use the ``bd`` unit."""
    if not isinstance(text, str) or "bd" not in text:
        return None
    match = _BUSINESS_DAYS.fullmatch(text.replace(" ", ""))
    if match is None:
        raise ValueError(
            f"bad duration {text!r}: business days stand alone, e.g. '5bd' "
            "(not mixed with d, h, m or s)"
        )
    days = int(match[1])
    if not 1 <= days <= MAX_BUSINESS_DAYS:
        raise ValueError(f"{text!r}: business days run from 1bd to {MAX_BUSINESS_DAYS}bd")
    return BusinessDays(days)


def parse_duration(text: object) -> timedelta:
    """Parse a positive duration; raise ValueError with a message a rule author can act on."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise ValueError(f"a duration must be text such as '8h' or '5d', not {text!r}")
    if isinstance(text, int):
        raise ValueError(f"duration {text} has no unit: write e.g. '{text}h' (units: s, m, h, d)")
    compact = text.replace(" ", "")
    if not _WHOLE.fullmatch(compact):
        raise ValueError(
            f"bad duration {text!r}: write a number and a unit (s, m, h, d), e.g. '8h' or '1d12h'"
        )
    numbers = [(n.lstrip("0") or "0", u) for n, u in _PART.findall(compact)]
    # 12 digits of seconds already exceed 100 years (and int() refuses 4,300 digits).
    if (
        any(len(n) > 12 for n, _ in numbers)
        or (seconds := sum(int(n) * _UNIT_SECONDS[u] for n, u in numbers))
        > MAX_DURATION.total_seconds()
    ):
        raise ValueError(
            f"duration {text!r} is longer than the limit of 100 years "
            f"({format_duration(MAX_DURATION)})"
        )
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be longer than zero")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest text that parses back to ``value``, for summaries and normalised forms."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
