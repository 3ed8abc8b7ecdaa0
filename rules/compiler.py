"""Compile a promise into a durable-rules ruleset definition (a JSON-able dict). Pure.

What the engine posts (as facts; ``t`` is every pattern's positive discriminator):

Every fact also carries ``"ok": 1`` (see ``_guard``).

- ``{"t": "rec", "id", "at", "seq", "scope", <record fields>, "attributes.<path>": ...}``
  one interaction record. ``at`` is integer epoch microseconds (exact for any ISO 8601
  time and well inside durable-rules' exact integer range), ``seq`` its rank in event-time
  order (``occurred_at``, then ``id``), ``scope`` the promise's scope value.
- ``{"t": "due" | "warn", "id", "at", "scope", "opp"}``: a deadline opportunity's due and
  at-risk instants, computed in Python from the business calendar.
- ``{"t": "clock", "id", "now"}``: event time; the engine advances it by replacing it.
- ``{"t": "counted", "id", "at", "k", "scope", "rec"}``: the k-th counted record of a
  ``limit`` scope, numbered by the engine in event-time order.

Rule names become action names ``<ruleset>:<rule>``. The shapes follow
``durable-rules-notes.md``: at most two patterns per rule, inequality joins only between
those two, integer times, no negation (the engine decides absence from what fired), and
a pattern's joins before its conditions, the always-true guard last among them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from rules.models import (
    Compare,
    Condition,
    DeadlinePromise,
    Equals,
    Exists,
    LimitPromise,
    Match,
    Matches,
    NeverPromise,
    Not,
    OneOf,
    Promise,
)

RECORD, DUE, WARN, CLOCK, COUNTED = "rec", "due", "warn", "clock", "counted"
GUARD = "ok"
"""A field every posted fact carries with the value 1; see ``_guard``."""
DEADLINE_ROLES = ("start", "stop", "pause", "resume", "cancel")
MICROSECOND = timedelta(microseconds=1)

_COMPARE = {"gte": "$gte", "gt": "$gt", "lte": "$lte", "lt": "$lt", "ne": "$neq"}
_OPPOSITE = {"gte": "lt", "gt": "lte", "lte": "gt", "lt": "gte"}


@dataclass(frozen=True)
class CompiledPromise:
    """A ruleset ready for ``Host.register_rulesets({name: rules})`` (pass a deep copy)."""

    name: str
    rules: dict[str, Any]


def record_types(compiled: CompiledPromise) -> frozenset[str] | None:
    """The record ``type`` values any rule of ``compiled`` can match, or None if unbounded.

    Read from the compiled patterns themselves, so the engine can skip posting a record to
    a ruleset none of whose rules could take it (most records concern one or two promises).
    """
    types: set[str] = set()
    for rule in compiled.rules.values():
        for pattern in rule["all"]:
            ((_, body),) = pattern.items()
            terms = body.get("$and", [body])
            if terms[0] != {"t": RECORD}:
                continue
            allowed = _type_values(terms)
            if allowed is None:
                return None
            types |= allowed
    return frozenset(types)


def _type_values(terms: list[dict[str, Any]]) -> set[str] | None:
    for term in terms:
        if isinstance(term.get("type"), str):
            return {term["type"]}
        alternatives = term.get("$or")
        if alternatives and all(
            isinstance(a.get("type"), str) and len(a) == 1 for a in alternatives
        ):
            return {a["type"] for a in alternatives}
    return None


def ruleset_name(promise: Promise) -> str:
    """Versioned, so a changed definition never collides with the one it replaces."""
    return f"{promise.id}@{promise.version}"


def compile_promise(promise: Promise) -> CompiledPromise:
    name = ruleset_name(promise)
    if isinstance(promise, DeadlinePromise):
        rules = _deadline(promise)
    elif isinstance(promise, NeverPromise):
        rules = _never(promise)
    else:
        rules = _limit(promise)
    for rule_name, rule in rules.items():
        rule["run"] = f"{name}:{rule_name}"
    return CompiledPromise(name, rules)


# --- kinds -------------------------------------------------------------------------------------


def _deadline(promise: DeadlinePromise) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    for role in DEADLINE_ROLES:
        match = getattr(promise, role)
        if match is not None:
            rules[role] = {"all": [{"r": record_pattern(match)}]}
    if promise.warn_at is not None:
        rules["warn"] = _clock_passes(WARN, "$gte")
    rules["expire"] = _clock_passes(DUE, "$gt")
    return rules


def _clock_passes(fact: str, op: str) -> dict[str, Any]:
    """Fires for every ``fact`` whose instant the clock has reached (warn) or passed (due)."""
    return {
        "all": [
            {"d": {"t": fact}},
            {"k": {"$and": [{"t": CLOCK}, {op: {"now": {"d": "at"}}}, _guard("d")]}},
        ]
    }


def _never(promise: NeverPromise) -> dict[str, Any]:
    joins: list[dict[str, Any]] = [{"scope": {"a": "scope"}}]
    joins += [{field: {"a": field}} for field in promise.same]
    joins.append({"$gt": {"seq": {"a": "seq"}}})
    if promise.within is not None:
        joins.append(_within("a", promise.within))
    joins.append(_guard("a"))
    return {
        "first": {"all": [{"a": record_pattern(promise.first)}]},
        "then": {"all": [{"b": record_pattern(promise.then)}]},
        "repeat": {
            "all": [
                {"a": record_pattern(promise.first)},
                {"b": record_pattern(promise.then, joins)},
            ]
        },
    }


def _limit(promise: LimitPromise) -> dict[str, Any]:
    rules: dict[str, Any] = {"count": {"all": [{"r": record_pattern(promise.count)}]}}
    if promise.max == 0:
        rules["over"] = {"all": [{"c": {"t": COUNTED}}]}
        return rules
    # The (k - max)-th counted record lies inside the window of the k-th exactly when the
    # window holds more than ``max``: one equality and one inequality join, two patterns.
    joins: list[dict[str, Any]] = [
        {"t": COUNTED},
        {"scope": {"a": "scope"}},
        {"k": {"$add": {"$l": {"a": "k"}, "$r": promise.max}}},
    ]
    if promise.within is not None:
        joins.append(_within("a", promise.within))
    joins.append(_guard("a"))
    rules["over"] = {"all": [{"a": {"t": COUNTED}}, {"c": {"$and": joins}}]}
    return rules


def _guard(alias: str) -> dict[str, Any]:
    """An always-true join, placed last in every pattern that joins with another.

    durable-rules 2.0.28 reads past the end of a pattern's join expressions when the last
    one is false (an off-by-one in ``reduceExpressionSequence``): valgrind shows invalid
    reads, and in a busy process it segfaults. Every fact carries ``GUARD: 1``, so this
    join is always true and a false one before it stays inside the array.
    """
    return {GUARD: {alias: GUARD}}


def _within(alias: str, window: timedelta) -> dict[str, Any]:
    return {"$lte": {"at": {"$add": {"$l": {alias: "at"}, "$r": window // MICROSECOND}}}}


# --- matches -----------------------------------------------------------------------------------


def record_pattern(match: Match, joins: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A pattern over record facts: the discriminator, any joins, then the match.

    The joins come first: durable-rules 2.0.28 stops reading a pattern's joins at the end
    of its first ``$or`` (a one-of list, a ``not``), so a join placed after one is never
    tested and always holds (docs/durable-rules-findings.md).
    """
    terms = [{"t": RECORD}, *(joins or [])]
    terms += [compile_condition(field, cond) for field, cond in match.conditions]
    return {"$and": terms}


def core_value(value: Any) -> Any:
    """``value`` as durable-rules can read it. Its JSON parser takes an exponent only after
    a fraction: 1e-07 or 1e+16 ("1e-07") makes it refuse the ruleset or the fact (error
    204). Such a float becomes an int when it is one (as record values do), else the
    nearest float toward zero, which prints with a fraction. Records' attribute values get
    the same treatment (``Interaction.fields``), so equal values stay equal."""
    if not isinstance(value, float):
        return value
    if value.is_integer() and abs(value) < 2**63:
        text = repr(value)
        return int(value) if "e" in text else value
    while "e" in (text := repr(value)) and "." not in text:
        value = math.nextafter(value, 0.0)
    return value


def compile_condition(field: str, condition: Condition) -> dict[str, Any]:
    """One condition; a missing field fails every test except ``exists: false`` and ``not``."""
    if isinstance(condition, Equals):
        return {field: core_value(condition.value)}
    if isinstance(condition, OneOf):
        return {"$or": [{field: core_value(v)} for v in condition.values]}
    if isinstance(condition, Compare):
        return {_COMPARE[condition.op]: {field: core_value(condition.value)}}
    if isinstance(condition, Exists):
        return {"$ex" if condition.present else "$nex": {field: 1}}
    if isinstance(condition, Matches):
        op = "$imt" if condition.core.ignore_case else "$mt"
        return {op: {field: condition.core.pattern}}
    return _negate(field, condition.inner)


def _negate(field: str, inner: Condition) -> dict[str, Any]:
    missing = {"$nex": {field: 1}}
    if isinstance(inner, Not):
        return compile_condition(field, inner.inner)
    if isinstance(inner, Exists):
        return compile_condition(field, Exists(not inner.present))
    if isinstance(inner, Equals):
        return {"$or": [missing, {"$neq": {field: core_value(inner.value)}}]}
    if isinstance(inner, OneOf):
        return {
            "$or": [missing, {"$and": [{"$neq": {field: core_value(v)}} for v in inner.values]}]
        }
    if isinstance(inner, Compare):
        if inner.op == "ne":
            return {"$or": [missing, {field: core_value(inner.value)}]}
        value = core_value(inner.value)
        return {"$or": [missing, {_COMPARE[_OPPOSITE[inner.op]]: {field: value}}]}
    raise ValueError("'not' around 'matches' cannot be expressed in the rules core")
