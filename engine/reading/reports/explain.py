"""A breach in plain words, from its promise and the records that decided it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from engine.records import Interaction
from engine.storage.schema import OutcomeRow
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

# --- plain-language explanations ---------------------------------------------------------------


def explain(
    row: OutcomeRow, promise: Promise, zone: ZoneInfo, records: dict[str, Interaction]
) -> str:
    missing = [i for i in row.evidence if i not in records]
    if missing or not row.evidence:
        return f"evidence records not found: {', '.join(missing) or 'none recorded'}"
    evidence = [records[i] for i in row.evidence]
    if isinstance(promise, DeadlinePromise):
        return _explain_deadline(row, promise, zone, list(zip(_roles(row), evidence, strict=True)))
    if isinstance(promise, NeverPromise):
        return _explain_never(promise, zone, evidence)
    return _explain_limit(promise, zone, evidence)


def _roles(row: OutcomeRow) -> list[str]:
    """What each evidence record did, as the runner stored it. An outcome stored before roles
    were (migration 0006) is read by position (docs/semantics.md): a deadline's first record
    started it and a later one closed it, as a cancel when it was cancelled, else as a stop
    (so a cancel after a breach reads as a late stop until its scope is evaluated again)."""
    if row.roles is not None:
        return list(row.roles)
    closer = "cancel" if row.state == "cancelled" else "stop"
    return ["start"] + [closer] * (len(row.evidence) - 1)


def _explain_deadline(
    row: OutcomeRow,
    promise: DeadlinePromise,
    zone: ZoneInfo,
    evidence: list[tuple[str, Interaction]],
) -> str:
    start = evidence[0][1]
    stops = [r for role, r in evidence if role == "stop"]
    cancels = [r for role, r in evidence if role == "cancel"]
    hours = f"{_calendar_words(promise.calendar)} hours" if promise.calendar else "around the clock"
    parts = [f"{_happened(start)} {when(start.occurred_at, zone)}"]
    if row.due_at is not None:
        parts.append(f"due {when(row.due_at, zone)}, {hours}")
    if stops:
        stop = stops[0]
        late = f", {_span(stop.occurred_at - row.due_at)} late" if row.due_at else ""
        came = "first reply" if stop.type == "message" else _happened(stop)
        parts.append(f"{came} {when(stop.occurred_at, zone, row.due_at)}{late}")
    elif row.decided_at is not None:
        parts.append(f"{_missing(promise.stop)} by {when(row.decided_at, zone)}")
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
