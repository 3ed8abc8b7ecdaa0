"""Parsing of match expressions (``{type: message, channel: [email, chat]}``) and field names.

Hand-written rather than left to pydantic so that each problem points at the exact nested
key or value, and the messages speak the rule author's language.
"""

from __future__ import annotations

import difflib
import math
import re
from datetime import date
from typing import Protocol

from rules.models import (
    CHANNELS,
    DIRECTIONS,
    RECORD_FIELDS,
    Compare,
    Condition,
    Equals,
    Exists,
    Match,
    Matches,
    Not,
    OneOf,
)
from rules.regex import translate
from rules.yaml_source import Location


class Report(Protocol):
    """Where parsing tells the loader about a problem; the loader adds file and line."""

    def __call__(
        self, location: Location, message: str, *, at_key: bool = False, warning: bool = False
    ) -> None: ...


OPERATORS = ("gte", "gt", "lte", "lt", "ne", "exists", "matches", "not")
_ATTRIBUTE_PATH = re.compile(r"attributes(\.[A-Za-z0-9_\-]+)+")


def did_you_mean(word: str, choices: tuple[str, ...] | list[str], cutoff: float = 0.6) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return f" (did you mean '{close[0]}'?)" if close else ""


def field_problem(name: object) -> str | None:
    """Why ``name`` cannot be used as a field, or None when it can."""
    if not isinstance(name, str):
        return f"field names are text, not {name!r}"
    if name in RECORD_FIELDS or _ATTRIBUTE_PATH.fullmatch(name):
        return None
    if name == "occurred_at":
        return "'occurred_at' cannot be matched: time is handled by 'within' and 'calendar'"
    if name == "attributes":
        return "name an attribute path such as 'attributes.item', not 'attributes' itself"
    hint = did_you_mean(name, RECORD_FIELDS, cutoff=0.8)
    if not hint and _ATTRIBUTE_PATH.fullmatch(f"attributes.{name}"):
        hint = f" (did you mean 'attributes.{name}'?)"
    return (
        f"'{name}' is not a record field{hint}; "
        f"use one of {', '.join(RECORD_FIELDS)} or attributes.<path>"
    )


def _is_scalar(value: object) -> bool:
    if isinstance(value, float | int) and _number_problem(value):
        return False
    return isinstance(value, str | int | float | bool) and not isinstance(value, date)


def _number_problem(value: float) -> str | None:
    """Numbers the rules core cannot hold (YAML reads .inf, .nan and any size of integer)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"numbers must be finite, got {value}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        return f"integers must fit in 64 bits, got {value}"
    return None


def _scalar_problem(value: object) -> str:
    if isinstance(value, float | int) and (problem := _number_problem(value)):
        return problem
    if isinstance(value, date):
        return f"{value} was read as a date; put it in quotes to compare text"
    return f"expected a single value (text, number or true/false), got {value!r}"


def parse_match(raw: object, location: Location, report: Report) -> Match | None:
    """Parse one match; report every problem and return None if there was any."""
    if not isinstance(raw, dict):
        report(location, "a match is a mapping of field to condition, e.g. {type: message}")
        return None
    if not raw:
        report(location, "empty match: it would match every record; name at least one field")
        return None
    conditions: list[tuple[str, Condition]] = []
    ok = True
    for name, value in raw.items():
        where = (*location, name)
        problem = field_problem(name)
        if problem:
            report(where, problem, at_key=True)
            ok = False
            continue
        condition = _parse_condition(value, where, report)
        if condition is None:
            ok = False
            continue
        _warn_unknown_values(name, condition, where, report)
        _warn_not_text(name, condition, where, report)
        conditions.append((name, condition))
    # Sorted: all conditions must hold, so their order carries no meaning (nor version).
    return Match(tuple(sorted(conditions, key=lambda item: item[0]))) if ok else None


def condition_location(condition: Condition) -> Location:
    """Where ``condition`` is written below its field's key: a value or a one-of list is the
    key's own value, an operator a key of its own (``not`` holds another condition)."""
    if isinstance(condition, Equals | OneOf):
        return ()
    if isinstance(condition, Compare):
        return (condition.op,)
    if isinstance(condition, Exists):
        return ("exists",)
    if isinstance(condition, Matches):
        return ("matches",)
    return ("not", *condition_location(condition.inner))


def _parse_condition(value: object, where: Location, report: Report) -> Condition | None:
    if value is None:
        report(where, "no condition given; to require that a field is absent write {exists: false}")
        return None
    if isinstance(value, list):
        if not value:
            report(where, "empty list: a one-of condition needs at least one value")
            return None
        bad = [v for v in value if not _is_scalar(v)]
        if bad:
            report(where, _scalar_problem(bad[0]))
            return None
        return OneOf(tuple(value))
    if isinstance(value, dict):
        return _parse_operator(value, where, report)
    if not _is_scalar(value):
        report(where, _scalar_problem(value))
        return None
    return Equals(value)


def _parse_operator(value: dict, where: Location, report: Report) -> Condition | None:
    if len(value) != 1:
        report(
            where,
            f"a condition has exactly one operator ({', '.join(OPERATORS)}), got {len(value)}",
        )
        return None
    ((op, arg),) = value.items()
    inner = (*where, op)
    if op not in OPERATORS:
        report(
            inner,
            f"unknown operator '{op}'{did_you_mean(str(op), OPERATORS)}; "
            f"operators: {', '.join(OPERATORS)}",
            at_key=True,
        )
        return None
    if op == "not":
        parsed = _parse_condition(arg, inner, report)
        if isinstance(parsed, Matches):
            report(
                inner,
                "'not' around 'matches' cannot be expressed in the rules core; write "
                "the values you do want, e.g. with [^...] or a one-of list",
            )
            return None
        return Not(parsed) if parsed else None
    if op == "exists":
        if not isinstance(arg, bool):
            report(inner, f"exists takes true or false, got {arg!r}")
            return None
        return Exists(arg)
    if op == "matches":
        if not isinstance(arg, str):
            report(inner, f"matches takes a regular expression in quotes, got {arg!r}")
            return None
        try:
            return Matches(arg, translate(arg))
        except ValueError as exc:
            report(inner, str(exc))
            return None
    if op == "ne":
        if not _is_scalar(arg):
            report(inner, _scalar_problem(arg))
            return None
        return Compare("ne", arg)
    if isinstance(arg, bool) or not isinstance(arg, int | float):
        report(inner, f"{op} compares numbers, got {arg!r}")
        return None
    if problem := _number_problem(arg):
        report(inner, problem)
        return None
    return Compare(op, arg)


def _warn_unknown_values(name: str, condition: Condition, where: Location, report: Report) -> None:
    """Channels outside the list are legal but usually a typo; directions are a closed set."""
    known = {"channel": CHANNELS, "direction": DIRECTIONS}.get(name)
    if known is None:
        return
    values: tuple = ()
    if isinstance(condition, Equals):
        values = (condition.value,)
    elif isinstance(condition, OneOf):
        values = condition.values
    for value in values:
        if value not in known:
            hint = f"{did_you_mean(str(value), known)}; known: {', '.join(known)}"
            if name == "direction":
                report(where, f"unknown direction '{value}'{hint}")
            else:
                report(where, f"channel '{value}' is not a standard channel{hint}", warning=True)


def _warn_not_text(name: str, condition: Condition, where: Location, report: Report) -> None:
    """A record field is always text, and text never equals a number or true/false nor
    compares with a number (docs/semantics.md, "Matching"): such a test never holds."""
    if name not in RECORD_FIELDS:
        return
    while isinstance(condition, Not):
        condition = condition.inner
    if isinstance(condition, Compare) and condition.op != "ne":
        report(where, f"'{name}' is text: '{condition.op}' compares numbers", warning=True)
        return
    values = (
        condition.values
        if isinstance(condition, OneOf)
        else (condition.value,)
        if isinstance(condition, Equals | Compare)
        else ()
    )
    for value in values:
        if not isinstance(value, str):
            text = str(value).lower() if isinstance(value, bool) else str(value)
            report(
                where,
                f"'{name}' is text, never equal to {text} (not text): "
                f"write '\"{text}\"' in quotes if the text is meant",
                warning=True,
            )
