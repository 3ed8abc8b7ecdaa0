"""An outcome in plain words, from its promise and the records that decided it: the one
wording that breach reports, alerts and the dashboard's outcome page share.

Times are local to the zone a person reads the promise in (``Catalog.timezone_for``): the
explanation gives them bare (``Fri 1 Mar 16:00``), as a report does under a line naming the
zone; :func:`stamp` names it at each time, as a message read on its own must.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from engine.outcomes import OPEN_STATES, Outcome
from engine.records import Interaction
from rules.models import (
    DeadlinePromise,
    Equals,
    LimitPromise,
    Match,
    NeverPromise,
    OneOf,
    Promise,
)
from rules.summary import spoken_duration

ROLE_WORDS = {
    "start": "started the clock",
    "stop": "answered it",
    "cancel": "closed it",
    "first": "gave it first",
    "then": "asked again",
    "count": "counted",
}
"""What an evidence record did, by its role (``engine.outcomes.Role``), for a timeline."""


def explain(
    outcome: Outcome, promise: Promise, zone: ZoneInfo, records: dict[str, Interaction]
) -> str:
    """What happened, in the report's words: ``email received Fri 1 Mar 16:00; due Mon 4 Mar
    15:30, UK office hours; first reply Mon 16:40, 70 minutes late``."""
    missing = [i for i in outcome.evidence if i not in records]
    if missing or not outcome.evidence:
        return f"evidence records not found: {', '.join(missing) or 'none recorded'}"
    evidence = [records[i] for i in outcome.evidence]
    if isinstance(promise, DeadlinePromise):
        roles = roles_of(outcome)
        return _explain_deadline(outcome, promise, zone, list(zip(roles, evidence, strict=True)))
    if isinstance(promise, NeverPromise):
        return _explain_never(promise, zone, evidence)
    return _explain_limit(promise, zone, evidence)


def decided_by_clock(outcome: Outcome) -> bool:
    """Whether the clock, not a record, broke it: a deadline whose due time passed before any
    record answered it (its evidence is the start, and perhaps a later cancel)."""
    return (
        outcome.state == "broken" and outcome.due_at is not None and "stop" not in roles_of(outcome)
    )


def roles_of(outcome: Outcome) -> list[str]:
    """What each evidence record did, as the runner stored it. An outcome stored before roles
    were (migration 0006) is read by position (docs/semantics.md): a deadline's first record
    started it and a later one closed it, as a cancel when it was cancelled, else as a stop
    (so a cancel after a breach reads as a late stop until its scope is evaluated again)."""
    if outcome.roles is not None:
        return list(outcome.roles)
    closer = "cancel" if outcome.state == "cancelled" else "stop"
    return ["start"] + [closer] * (len(outcome.evidence) - 1)


def _explain_deadline(
    outcome: Outcome,
    promise: DeadlinePromise,
    zone: ZoneInfo,
    evidence: list[tuple[str, Interaction]],
) -> str:
    start = evidence[0][1]
    stops = [r for role, r in evidence if role == "stop"]
    cancels = [r for role, r in evidence if role == "cancel"]
    hours = f"{_calendar_words(promise.calendar)} hours" if promise.calendar else "around the clock"
    due = outcome.due_at
    parts = [f"{_happened(start)} {when(start.occurred_at, zone)}"]
    if due is not None and decided_by_clock(outcome):
        parts.append(f"{_missing(promise.stop)} by the due time {when(due, zone)}, {hours}")
    elif due is not None:
        parts.append(f"due {when(due, zone)}, {hours}")
    if stops:
        stop = stops[0]
        late = f", {_span(stop.occurred_at - due)} late" if due and stop.occurred_at > due else ""
        came = "first reply" if stop.type == "message" else _happened(stop)
        parts.append(f"{came} {when(stop.occurred_at, zone, due)}{late}")
    elif outcome.state in OPEN_STATES:
        parts.append(f"{_missing(promise.stop)} yet")
    parts += [f"closed by {_words(r.type)} {when(r.occurred_at, zone)}" for r in cancels]
    return "; ".join(parts)


def _explain_never(promise: NeverPromise, zone: ZoneInfo, evidence: list[Interaction]) -> str:
    first, then = evidence[0], evidence[-1]
    fields = then.fields()
    items = ", ".join(str(fields[f]) for f in promise.same if f in fields) or "it"
    given = f"{items} given by {first.channel}{_to(first.team)} {when(first.occurred_at, zone)}"
    asked = f"asked again by {then.channel}{_by(then.team)} {when(then.occurred_at, zone)}"
    return f"{given}; {asked}"


def _explain_limit(promise: LimitPromise, zone: ZoneInfo, evidence: list[Interaction]) -> str:
    """``3 handoffs within 30 days (at most 2 allowed): ...``: the ``max`` + 1 counted
    records that decided the breach, the last of them the one over the limit."""
    noun = _counted_noun(promise.count)
    window = f" within {spoken_duration(promise.within)}" if promise.within else ""
    counted = ", ".join(
        f"{when(r.occurred_at, zone)} by {r.team or r.agent or r.channel}" for r in evidence
    )
    return f"{len(evidence)} {noun}{window} (at most {promise.max} allowed): {counted}"


def when(moment: datetime, zone: ZoneInfo, same_day_as: datetime | None = None) -> str:
    """``Fri 1 Mar 16:00``; only ``Mon 16:40`` when on the same local day as ``same_day_as``."""
    local = moment.astimezone(zone)
    if same_day_as is not None and same_day_as.astimezone(zone).date() == local.date():
        return f"{local:%a %H:%M}"
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def stamp(moment: datetime, zone: ZoneInfo) -> str:
    """``Fri 1 Mar 16:00 GMT``: a local time with its zone named, to be read on its own."""
    return f"{when(moment, zone)} {moment.astimezone(zone).tzname()}"


def _span(delta: timedelta) -> str:
    minutes = max(0, round(delta.total_seconds() / 60))
    if minutes < 120:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} hours" + (f" {minutes} minutes" if minutes else "")
    days, hours = divmod(hours, 24)
    return f"{days} days" + (f" {hours} hours" if hours else "")


def _calendar_words(calendar_id: str) -> str:
    """``uk-office`` -> ``UK office``: short words read as abbreviations."""
    return " ".join(w.upper() if len(w) <= 2 else w for w in re.split(r"[-_ ]+", calendar_id))


def _words(name: str) -> str:
    return name.replace("_", " ")


def _happened(record: Interaction) -> str:
    """``email received``, ``chat sent`` or ``callback promised by phone``."""
    if record.type == "message":
        verb = {"inbound": "received", "outbound": "sent"}.get(record.direction, "noted")
        return f"{record.channel} {verb}"
    return f"{_words(record.type)} by {record.channel}"


def _missing(stop: Match) -> str:
    """``no reply``, ``not resolved`` or ``no reply, call or follow up``: the stop never came."""
    nouns = list(dict.fromkeys(_words(str(v)) for v in _values(stop, "type")))
    if len(nouns) == 1 and nouns[0].endswith("ed"):
        return f"not {nouns[0]}"
    nouns = ["reply" if n == "message" else n for n in nouns] or ["reply"]
    return "no " + (f"{', '.join(nouns[:-1])} or {nouns[-1]}" if len(nouns) > 1 else nouns[0])


def _counted_noun(count: Match) -> str:
    types = _values(count, "type")
    return f"{_words(str(types[0]))}s" if len(types) == 1 else "records"


def _values(match: Match, name: str) -> list[Any]:
    """The values the author gave ``name`` (equal, or one of) in ``match``: words for the
    report, never a test of a record (the runner decided the roles)."""
    for field_name, condition in match.conditions:
        if field_name == name and isinstance(condition, Equals):
            return [condition.value]
        if field_name == name and isinstance(condition, OneOf):
            return list(condition.values)
    return []


def _to(team: str | None) -> str:
    return f" to {team}" if team else ""


def _by(team: str | None) -> str:
    return f" by {team}" if team else ""
