"""From a ``calendars.yaml`` entry to a :class:`BusinessCalendar`, with author-facing errors.

Hours are written per day or day range (``mon-fri: "09:00-12:00, 13:00-17:30"``); a value
may also be a list of intervals. ``24:00`` ends a day.
"""

from __future__ import annotations

from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from rules.business_time import BusinessCalendar
from rules.documents import CalendarDoc
from rules.matches import did_you_mean
from rules.yaml_source import Location

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

Errors = list[tuple[Location, str, bool]]
"""(location inside the calendar entry, message, at_key)."""


def _days(spec: str) -> list[int]:
    """``mon-fri`` -> [0..4]; ``sat,sun`` -> [5, 6]; ``wed`` -> [2]."""
    result: list[int] = []
    for part in spec.replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            bad = first if first not in DAYS else last
            raise ValueError(
                f"unknown day '{bad}'{did_you_mean(bad, DAYS)} in '{spec}'; "
                "write days as mon..sun, ranges as mon-fri, lists as sat,sun"
            )
        start, end = DAYS.index(first), DAYS.index(last or first)
        if end < start:
            raise ValueError(f"day range '{part}' runs backwards; write it as {last}-{first}")
        result.extend(range(start, end + 1))
    return result


def _clock(text: str, *, end: bool) -> time:
    hours, sep, minutes = text.strip().partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"bad time '{text.strip()}': write HH:MM, e.g. 09:00")
    h, m = int(hours), int(minutes)
    if end and (h, m) == (24, 0):
        return time(0, 0)  # BusinessCalendar's spelling of the midnight that ends a day
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ValueError(f"bad time '{text.strip()}': hours run 00-23 (24:00 only as an end)")
    return time(h, m)


def _intervals(value: str | list[str]) -> list[tuple[time, time]]:
    parts = value if isinstance(value, list) else value.split(",")
    result = []
    for part in parts:
        start_text, dash, end_text = part.partition("-")
        if not dash:
            raise ValueError(f"bad hours '{part.strip()}': write an interval, e.g. 09:00-17:30")
        start, end = _clock(start_text, end=False), _clock(end_text, end=True)
        if end != time(0, 0) and end <= start:
            raise ValueError(
                f"hours '{part.strip()}' end before they start; split a night shift into "
                "22:00-24:00 and 00:00-06:00 on the next day"
            )
        result.append((start, end))
    return result


def _overlaps(intervals: list[tuple[time, time]]) -> bool:
    ordered = sorted(intervals)
    ends = [time.max if e == time(0, 0) else e for _, e in ordered]
    return any(ordered[i + 1][0] < ends[i] for i in range(len(ordered) - 1))


def zone_problem(name: str) -> str | None:
    """Why ``name`` is no time zone (a calendar's or a team's), or None when it is one."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone '{name}': use an IANA name such as Europe/London"
    return None


def build_calendar(doc: CalendarDoc) -> tuple[BusinessCalendar | None, Errors]:
    """Validate the parts pydantic cannot (zone, days, hours, holiday country) and build."""
    errors: Errors = []
    if (unknown := zone_problem(doc.timezone)) is not None:
        errors.append((("timezone",), unknown, False))
    hours: dict[int, list[tuple[time, time]]] = {}
    for spec, value in doc.hours.items():
        try:
            days, intervals = _days(spec), _intervals(value)
        except ValueError as exc:
            errors.append((("hours", spec), str(exc), False))
            continue
        for day in days:
            if day in hours:
                errors.append((("hours", spec), f"{DAYS[day]} is given hours twice", True))
            hours[day] = intervals
            if _overlaps(intervals):
                errors.append((("hours", spec), "intervals overlap", False))
    if not hours and not errors:
        errors.append((("hours",), "a calendar needs opening hours on at least one day", False))
    if doc.holidays:
        supported = holidays.list_supported_countries()
        country, subdiv = doc.holidays.country, doc.holidays.subdiv
        if country not in supported:
            errors.append(
                (
                    ("holidays", "country"),
                    f"no public holidays known for country "
                    f"'{country}'{did_you_mean(country, list(supported))}; use an ISO "
                    "code such as GB, US, IT",
                    False,
                )
            )
        elif subdiv is not None and subdiv not in supported[country]:
            errors.append(
                (
                    ("holidays", "subdiv"),
                    f"'{subdiv}' is not a subdivision of "
                    f"{country}; known: {', '.join(supported[country])}",
                    False,
                )
            )
    if errors:
        return None, errors
    calendar = BusinessCalendar(
        timezone=doc.timezone,
        hours={day: tuple(sorted(iv)) for day, iv in hours.items()},
        country=doc.holidays.country if doc.holidays else None,
        subdiv=doc.holidays.subdiv if doc.holidays else None,
        closed=frozenset(doc.closed),
    )
    return calendar, []
