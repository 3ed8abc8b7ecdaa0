"""Durations as rule authors write them: ``90s``, ``15m``, ``8h``, ``5d`` or ``1d12h``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNIT_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)([dhms])")
_WHOLE = re.compile(r"(?:\d+[dhms])+")


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
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(compact))
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
