"""Dates as the feature files write them: ``Fri 2024-03-01 10:00 Europe/London``.

A moment is ``<Weekday> YYYY-MM-DD HH:MM`` with an optional zone: an IANA name
(``Europe/London``), ``UTC``, or an offset (``+01:00``, ``-05:00``). Without a zone it is UTC.
The weekday must be the date's own: it is there so a reader can check the calendar at a
glance, and a wrong one is an error, never silently ignored. A day is the same without the
time (``Fri 2024-03-01``).

The step library (``engine.authoring.steps``) reads every date of a feature with these.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_FULL = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_NAMES = {name.lower(): i for i, name in enumerate(WEEKDAYS)} | {
    name.lower(): i for i, name in enumerate(_FULL)
}

_MOMENT = re.compile(
    r"(?P<weekday>[A-Za-z]+) (?P<date>\d{4}-\d{2}-\d{2}) (?P<time>\d{2}:\d{2})"
    r"(?: (?P<zone>[A-Za-z_]+(?:/[A-Za-z_+\-]+)*|[+-]\d{2}:\d{2}))?"
)
_DAY = re.compile(r"(?P<weekday>[A-Za-z]+) (?P<date>\d{4}-\d{2}-\d{2})")
_OFFSET = re.compile(r"(?P<sign>[+-])(?P<hours>\d{2}):(?P<minutes>\d{2})")

FORMAT = "<Weekday> YYYY-MM-DD HH:MM [zone], e.g. 'Fri 2024-03-01 10:00 Europe/London'"


def parse_moment(text: str, zone: str = "UTC") -> datetime:
    """An aware datetime; ``ValueError`` naming ``text`` when it is not exactly that form.
    A moment written without a zone is in ``zone`` (a table's "times in <zone>")."""
    found = _MOMENT.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"{text!r} is not a moment: write {FORMAT} (no zone means UTC)")
    day = _checked_day(found["weekday"], found["date"], text)
    try:
        clock = datetime.strptime(found["time"], "%H:%M").time()
    except ValueError:
        raise ValueError(f"{text!r}: {found['time']} is not a time of day (00:00-23:59)") from None
    return datetime.combine(day, clock, tzinfo=parse_zone(found["zone"] or zone))


def parse_day(text: str) -> date:
    """A calendar date written ``<Weekday> YYYY-MM-DD``, weekday checked."""
    found = _DAY.fullmatch(text.strip())
    if found is None:
        raise ValueError(
            f"{text!r} is not a day: write <Weekday> YYYY-MM-DD, e.g. 'Fri 2024-03-01'"
        )
    return _checked_day(found["weekday"], found["date"], text)


def parse_zone(text: str) -> tzinfo:
    """``UTC``, an IANA zone name, or a ``+HH:MM`` / ``-HH:MM`` offset."""
    if text in ("UTC", "Z"):
        return UTC
    offset = _OFFSET.fullmatch(text)
    if offset is not None:
        hours, minutes = int(offset["hours"]), int(offset["minutes"])
        if hours > 23 or minutes > 59:
            raise ValueError(f"{text!r} is not a UTC offset")
        delta = timedelta(hours=hours, minutes=minutes)
        return timezone(-delta if offset["sign"] == "-" else delta)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {text!r}: use an IANA name such as Europe/London, UTC, "
            "or an offset such as +01:00"
        ) from None


def format_day(day: date) -> str:
    return f"{WEEKDAYS[day.weekday()]} {day.isoformat()}"


def _checked_day(weekday: str, iso: str, text: str) -> date:
    try:
        day = date.fromisoformat(iso)
    except ValueError:
        raise ValueError(f"{text!r}: {iso} is not a date") from None
    number = _NAMES.get(weekday.lower())
    if number is None:
        raise ValueError(
            f"{text!r}: {weekday!r} is not a weekday; write Mon, Tue, Wed, Thu, Fri, Sat or Sun"
        )
    if number != day.weekday():
        raise ValueError(f"{weekday} {iso} is a {_FULL[day.weekday()]}")
    return day
