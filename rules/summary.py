"""A promise in plain words, generated from its definition (for the API and the docs)."""

from __future__ import annotations

from datetime import time, timedelta

from rules.business_time import BusinessCalendar
from rules.durations import BusinessDays, format_duration
from rules.models import (
    Compare,
    Condition,
    DeadlinePromise,
    Equals,
    Exists,
    LimitPromise,
    Match,
    Matches,
    Not,
    OneOf,
    Promise,
)

_COMPARE_WORDS = {
    "gte": "at least",
    "gt": "more than",
    "lte": "at most",
    "lt": "less than",
    "ne": "not",
}


def describe_match(match: Match) -> str:
    return " and ".join(f"{_field(name)} {_condition(c)}" for name, c in match.conditions)


def _field(name: str) -> str:
    return name.removeprefix("attributes.").replace("_", " ")


def _condition(condition: Condition) -> str:
    if isinstance(condition, Equals):
        return f"is {condition.value}"
    if isinstance(condition, OneOf):
        return "is " + " or ".join(map(str, condition.values))
    if isinstance(condition, Compare):
        return f"is {_COMPARE_WORDS[condition.op]} {condition.value}"
    if isinstance(condition, Exists):
        return "is given" if condition.present else "is not given"
    if isinstance(condition, Matches):
        return f"matches {condition.source!r}"
    assert isinstance(condition, Not)
    return f"is not ({_condition(condition.inner)})"


_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def spoken_duration(value: timedelta, *, business: bool = False) -> str:
    """``8 business hours``, ``48 hours``, ``30 days``, ``90 minutes``; else the short form."""
    seconds = int(value.total_seconds())
    unit = "business hour" if business else "hour"
    if not business and seconds >= 3 * 86_400 and seconds % 86_400 == 0:
        count, unit = seconds // 86_400, "day"
    elif seconds % 3_600 == 0:
        count = seconds // 3_600
    elif seconds % 60 == 0 and seconds < 3_600:
        count, unit = seconds // 60, "business minute" if business else "minute"
    else:
        return format_duration(value) + (" of business time" if business else "")
    return f"{count} {unit}{'' if count == 1 else 's'}"


def describe_calendar(calendar: BusinessCalendar) -> str:
    """``Europe/London: Mon-Fri 09:00-17:30; closed on GB-ENG public holidays``."""

    def wall(moment: time) -> str:
        return "24:00" if moment == time(0, 0) else moment.strftime("%H:%M")

    groups: list[tuple[int, int, str]] = []
    for day in range(7):
        intervals = calendar.hours.get(day)
        if not intervals:
            continue
        text = ", ".join(f"{wall(a)}-{wall(b)}" for a, b in intervals)
        if groups and groups[-1][1] == day - 1 and groups[-1][2] == text:
            groups[-1] = (groups[-1][0], day, text)
        else:
            groups.append((day, day, text))
    hours = "; ".join(
        f"{_DAY_NAMES[a]}{'-' + _DAY_NAMES[b] if b != a else ''} {text}" for a, b, text in groups
    )
    closed = []
    if calendar.country:
        region = calendar.country + (f"-{calendar.subdiv}" if calendar.subdiv else "")
        closed.append(f"{region} public holidays")
    closed.extend(d.isoformat() for d in sorted(calendar.closed))
    shut = f"; closed on {' and '.join(closed)}" if closed else ""
    return f"{calendar.timezone}: {hours}{shut}"


def summarise(promise: Promise, calendar: BusinessCalendar | None = None) -> str:
    """One paragraph a customer-experience lead can check against what was meant.

    ``calendar``, the promise's business calendar when it names one, adds its opening hours.
    """
    if isinstance(promise, DeadlinePromise):
        within = (
            f"{promise.within.days} business day{'s' if promise.within.days > 1 else ''} "
            "(by the close of business on the last of them; the day the clock starts does "
            "not count)"
            if isinstance(promise.within, BusinessDays)
            else spoken_duration(promise.within, business=bool(promise.calendar))
        )
        if promise.calendar:
            detail = f" ({describe_calendar(calendar)})" if calendar is not None else ""
            hours = f"on the {promise.calendar} calendar{detail}"
        else:
            hours = "around the clock"
        text = (
            f"{promise.title}. Within {within} {hours}, per {_field(promise.scope)}: "
            f"the clock starts when a record's {describe_match(promise.start)}, and stops "
            f"when a record's {describe_match(promise.stop)}"
        )
        if promise.pause and promise.resume:
            text += (
                f"; it pauses (the time does not run) when a record's "
                f"{describe_match(promise.pause)}, and runs again when a record's "
                f"{describe_match(promise.resume)}"
            )
        if promise.cancel:
            text += f"; it is cancelled when a record's {describe_match(promise.cancel)}"
        if promise.warn_at:
            text += f". At risk once {promise.warn_at:.0%} of the time has gone"
    elif isinstance(promise, LimitPromise):
        window = (
            f" within any {spoken_duration(promise.within)}; each record over that breaks it"
            if promise.within
            else ""
        )
        text = (
            f"{promise.title}. At most {promise.max} records whose "
            f"{describe_match(promise.count)} per {_field(promise.scope)}{window}"
        )
    else:
        window = f" within {spoken_duration(promise.within)}" if promise.within else ""
        same = ", ".join(_field(f) for f in promise.same) or "anything"
        text = (
            f"{promise.title}. Once a record's {describe_match(promise.first)}, no later "
            f"record of the same {_field(promise.scope)} whose "
            f"{describe_match(promise.then)} may concern the same {same}{window}"
        )
    owner = f". Owned by {promise.owner}"
    objective = f"; target {promise.objective:.0%} kept" if promise.objective else ""
    return text + owner + objective + "."
