"""Compile a promise into a durable-rules ruleset definition (a JSON-able dict). Pure.

What the engine posts (as facts; ``t`` is every pattern's positive discriminator):

Every fact also carries ``"ok": 1`` (see ``_guard``).

- ``{"t": "rec", "id", "at", "seq", "scope", <record fields>, "attributes.<path>": ...}``
  one interaction record. ``at`` is integer epoch microseconds (exact for any ISO 8601
  time and well inside durable-rules' exact integer range), ``seq`` its rank in event-time
  order (``occurred_at``, then ``id``), ``scope`` the promise's scope value; and for each
  attribute path the promise names, ``"?attributes.<path>"``: the kind of its value
  (``type_tags``), so that values compare as JSON values do.
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

import json
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
    roles,
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
    joins: list[dict[str, Any]] = [{"scope": {"a": "scope"}}, *same_joins("a", promise.same)]
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
# Values compare as JSON values do (docs/semantics.md, "Matching"): text never equals a number,
# `gte`..`lt` hold only between numbers, `matches` tests only text. The rules core compares
# across types its own way ("3" <= 6, 1 == "1", true == 1), so every record fact carries, for
# each attribute path its promise names, the kind of the value there (``TAG`` + path, see
# ``type_tags``), and each condition on an attribute tests that kind as well as the value.
# Record fields (``type``, ``channel``, ...) are text whenever present: a condition on one
# is decided against a value of another kind here, at compile time.

TAG = "?"
"""Prefix of the field holding the kind of an attribute's value (``?attributes.item``)."""
MAX_TYPED_FIELDS = 20
"""Attribute paths one promise may name: each adds up to two fields to a record's fact (its
kind, an object's text), and durable-rules refuses a fact of more than 254 fields (error
302): 200 attribute values (``engine.records.MAX_ATTRIBUTE_FIELDS``), 8 record fields, 6 of
the engine's and 2 x 20 make 254."""
TEXT, NUMBER, BOOL, OBJECT, LIST = "text", "number", "bool", "object", "list"
_TRUE: dict[str, Any] = {"t": RECORD}  # every record fact's discriminator
_FALSE: dict[str, Any] = {"$nex": {"t": 1}}


def value_kind(value: object) -> str | None:
    """The JSON kind of ``value``; None for null (absent)."""
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int | float):
        return NUMBER
    if isinstance(value, str):
        return TEXT
    if isinstance(value, dict):
        return OBJECT
    if isinstance(value, list | tuple):
        return LIST
    return None


def typed_fields(promise: Promise) -> tuple[str, ...]:
    """The attribute paths whose values' kinds ``promise``'s rules test: those its matches
    and ``same`` name."""
    names = {name for match in roles(promise).values() for name, _ in match.conditions}
    names.update(getattr(promise, "same", ()))
    return tuple(sorted(n for n in names if _typed(n)))


def type_tags(attributes: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """The fields a record fact adds for ``paths`` (from ``typed_fields``): each present
    value's kind, and an object's or list's canonical JSON text under the path itself, so
    that ``same`` compares them whole (scalars are already in the fact)."""
    tags: dict[str, Any] = {}
    for path in paths:
        value: Any = attributes
        for key in path.split(".")[1:]:
            value = value.get(key) if isinstance(value, dict) else None
        kind = value_kind(value)
        if kind is not None:
            tags[TAG + path] = kind
        if kind in (OBJECT, LIST):
            tags[path] = json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"))
    return tags


def _canonical(value: Any) -> Any:
    """Equal JSON values write the same text: ``1.0`` as ``1``."""
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return value


def _typed(field: str) -> bool:
    return field.startswith("attributes.")


def _all(*terms: dict[str, Any]) -> dict[str, Any]:
    """Conjunction, simplified: constants folded, nested ``$and`` spliced."""
    if _FALSE in terms:
        return _FALSE
    kept = [u for t in terms if t != _TRUE for u in t.get("$and", [t])]
    return _TRUE if not kept else kept[0] if len(kept) == 1 else {"$and": kept}


def _any(*terms: dict[str, Any]) -> dict[str, Any]:
    """Disjunction, simplified: constants folded, nested ``$or`` spliced."""
    if _TRUE in terms:
        return _TRUE
    kept = [u for t in terms if t != _FALSE for u in t.get("$or", [t])]
    return _FALSE if not kept else kept[0] if len(kept) == 1 else {"$or": kept}


def _present(field: str) -> dict[str, Any]:
    return {"$ex": {(TAG + field if _typed(field) else field): 1}}


def _missing(field: str) -> dict[str, Any]:
    return {"$nex": {(TAG + field if _typed(field) else field): 1}}


def _is(field: str, kind: str | None) -> dict[str, Any]:
    """The field holds a value of ``kind`` (the caller tests presence through the value)."""
    if _typed(field):
        return {TAG + field: kind}
    return _TRUE if kind == TEXT else _FALSE


def _is_not(field: str, kind: str | None) -> dict[str, Any]:
    """The field is present with a value of another kind."""
    if _typed(field):
        return {"$neq": {TAG + field: kind}}
    return _FALSE if kind == TEXT else _present(field)


def record_pattern(match: Match, joins: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A pattern over record facts: the discriminator, any joins, then the match.

    The joins come first: durable-rules 2.0.28 stops reading a pattern's joins at the end
    of its first ``$or`` (a one-of list, a ``not``), so a join placed after one is never
    tested and always holds (docs/durable-rules-findings.md). A condition's own ``$and`` is
    spliced into the pattern's, so that ``record_types`` sees a ``type`` equality.
    """
    terms = [{"t": RECORD}, *(joins or [])]
    for field, condition in match.conditions:
        term = compile_condition(field, condition)
        terms += term.get("$and", [term])
    return {"$and": terms}


def same_joins(alias: str, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """Equality joins for ``same``: the values, and for attributes their kinds too."""
    joins: list[dict[str, Any]] = []
    for field in fields:
        joins.append({field: {alias: field}})
        if _typed(field):
            joins.append({TAG + field: {alias: TAG + field}})
    return joins


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
        return _all(_is(field, value_kind(condition.value)), {field: core_value(condition.value)})
    if isinstance(condition, OneOf):
        return _any(*(compile_condition(field, Equals(v)) for v in condition.values))
    if isinstance(condition, Compare):
        if condition.op == "ne":
            return _fails(field, Equals(condition.value))
        if value_kind(condition.value) != NUMBER:
            return _FALSE  # order holds only between numbers
        op = _COMPARE[condition.op]
        return _all(_is(field, NUMBER), {op: {field: core_value(condition.value)}})
    if isinstance(condition, Exists):
        return _present(field) if condition.present else _missing(field)
    if isinstance(condition, Matches):
        op = "$imt" if condition.core.ignore_case else "$mt"
        return _all(_is(field, TEXT), {op: {field: condition.core.pattern}})
    inner = condition.inner
    return _any(_FALSE if _holds_when_missing(inner) else _missing(field), _fails(field, inner))


def _holds_when_missing(condition: Condition) -> bool:
    if isinstance(condition, Exists):
        return not condition.present
    if isinstance(condition, Not):
        return not _holds_when_missing(condition.inner)
    return False


def _fails(field: str, condition: Condition) -> dict[str, Any]:
    """The field is present and ``condition`` does not hold."""
    if isinstance(condition, Equals):
        value = core_value(condition.value)
        return _any(_is_not(field, value_kind(value)), {"$neq": {field: value}})
    if isinstance(condition, OneOf):
        return _all(*(_fails(field, Equals(v)) for v in condition.values))
    if isinstance(condition, Compare):
        if condition.op == "ne":
            return compile_condition(field, Equals(condition.value))
        if value_kind(condition.value) != NUMBER:
            return _present(field)
        opposite = _COMPARE[_OPPOSITE[condition.op]]
        value = core_value(condition.value)
        return _any(_is_not(field, NUMBER), {opposite: {field: value}})
    if isinstance(condition, Exists):
        return _FALSE if condition.present else _present(field)
    if isinstance(condition, Not):
        return _all(_present(field), compile_condition(field, condition.inner))
    raise ValueError("'not' around 'matches' cannot be expressed in the rules core")
