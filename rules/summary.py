"""A promise in plain words, generated from its definition (for the API and the docs)."""

from __future__ import annotations

from rules.durations import format_duration
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


def summarise(promise: Promise) -> str:
    """One paragraph a customer-experience lead can check against what was meant."""
    within = format_duration(promise.within) if promise.within else None
    if isinstance(promise, DeadlinePromise):
        hours = (
            f"business time on the {promise.calendar} calendar"
            if promise.calendar
            else "around the clock"
        )
        text = (
            f"{promise.title}. Within {within} ({hours}), per {_field(promise.scope)}: "
            f"the clock starts when a record's {describe_match(promise.start)}, and stops "
            f"when a record's {describe_match(promise.stop)}"
        )
        if promise.pause and promise.resume:
            text += (
                f"; it pauses when a record's {describe_match(promise.pause)} and runs "
                f"again when a record's {describe_match(promise.resume)}"
            )
        if promise.cancel:
            text += f"; it is cancelled when a record's {describe_match(promise.cancel)}"
        if promise.warn_at:
            text += f". At risk once {promise.warn_at:.0%} of the time has gone"
    elif isinstance(promise, LimitPromise):
        window = f" within any {within}" if within else ""
        text = (
            f"{promise.title}. At most {promise.max} records whose "
            f"{describe_match(promise.count)} per {_field(promise.scope)}{window}"
        )
    else:
        window = f" within {within}" if within else ""
        same = ", ".join(_field(f) for f in promise.same) or "anything"
        text = (
            f"{promise.title}. Once a record's {describe_match(promise.first)}, no later "
            f"record of the same {_field(promise.scope)} whose "
            f"{describe_match(promise.then)} may concern the same {same}{window}"
        )
    owner = f". Owned by {promise.owner}"
    objective = f"; target {promise.objective:.0%} kept" if promise.objective else ""
    return text + owner + objective + "."
