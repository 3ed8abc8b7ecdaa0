"""Reference evaluator: docs/semantics.md written out as plain, slow, obvious Python.

It is the oracle for property tests against the durable-rules engine, so it shares nothing
with it (no ``durable``, ``engine`` or ``rules.compiler``) and follows the document
literally rather than cleverly. Every clock step and every role of every record is applied
one at a time, in the order the document lists them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rules.business_time import AlwaysOpen, Calendar
from rules.models import (
    Catalog,
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

__all__ = ["ABSENT", "evaluate", "field_value", "match_holds", "scope_of"]

ABSENT: Any = object()
"""What :func:`field_value` returns for a field the record does not have."""


# --- fields and matching -----------------------------------------------------------------------


def field_value(record: dict, name: str) -> Any:
    """The value of ``name`` in ``record``, or :data:`ABSENT`.

    A missing key, a path through something that is not a dict, and ``None`` (JSON null)
    are all absent: the document uses "absent" and "null" together for scopes, and a
    condition can only meaningfully test a value that is there. So is a record field (not
    an attribute) given as empty text.
    """
    if name.startswith("attributes."):
        current: Any = record.get("attributes")
        for key in name.split(".")[1:]:
            if not isinstance(current, dict) or key not in current:
                return ABSENT
            current = current[key]
    else:
        current = record.get(name, ABSENT)
        if current == "":
            return ABSENT
    return ABSENT if current is None else current


def _is_number(value: Any) -> bool:
    # bool is an int in Python, but true/false are not numbers to a rule author.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _condition_holds(condition: Condition, value: Any) -> bool:
    """Whether ``condition`` holds for ``value`` (``ABSENT`` when the field is missing)."""
    present = value is not ABSENT
    if isinstance(condition, Exists):
        return present == condition.present
    if isinstance(condition, Not):
        return not _condition_holds(condition.inner, value)
    if not present:
        return False
    if isinstance(condition, Equals):
        return value == condition.value
    if isinstance(condition, OneOf):
        return any(value == option for option in condition.values)
    if isinstance(condition, Matches):
        return re.fullmatch(condition.source, str(value), flags=re.ASCII) is not None
    if isinstance(condition, Compare):
        if condition.op == "ne":
            return value != condition.value
        if not (_is_number(value) and _is_number(condition.value)):
            return False
        if condition.op == "gte":
            return value >= condition.value
        if condition.op == "gt":
            return value > condition.value
        if condition.op == "lte":
            return value <= condition.value
        if condition.op == "lt":
            return value < condition.value
    raise TypeError(f"unknown condition {condition!r}")


def match_holds(match: Match | None, record: dict) -> bool:
    """Every condition holds; a role that is not defined (``None``) never matches."""
    if match is None:
        return False
    return all(
        _condition_holds(condition, field_value(record, name))
        for name, condition in match.conditions
    )


def scope_of(promise: Promise, record: dict) -> str | None:
    """The record's scope value as text, or None when the promise ignores the record."""
    value = field_value(record, promise.scope)
    if value is ABSENT or value == "":
        return None
    return str(value)


# --- records and time ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Record:
    id: str
    at: datetime  # UTC: same-zone comparison and subtraction in Python use wall time
    data: dict


def _ordered(records: list[dict]) -> list[_Record]:
    """Distinct records in event-time order: by occurred_at, then id (string order)."""
    by_id: dict[str, dict] = {}
    for record in records:
        seen = by_id.get(record["id"])
        if seen is None:
            by_id[record["id"]] = record
        elif seen != record:
            # Keeping either one would make the result depend on input order.
            raise ValueError(f"two different records share the id {record['id']!r}")
    ordered = [_Record(r["id"], r["occurred_at"].astimezone(UTC), r) for r in by_id.values()]
    ordered.sort(key=lambda r: (r.at, r.id))
    return ordered


def _customer(record: dict) -> Any:
    value = field_value(record, "customer_id")
    return None if value is ABSENT else value


def _outcome(
    promise: Promise,
    scope: str,
    customer_id: Any,
    state: str,
    opened_at: datetime,
    due_at: datetime | None,
    decided_at: datetime | None,
    evidence: list[str],
) -> dict:
    return {
        "promise": promise.id,
        "version": promise.version,
        "scope": scope,
        "customer_id": customer_id,
        "state": state,
        "opened_at": opened_at.astimezone(UTC),
        "due_at": None if due_at is None else due_at.astimezone(UTC),
        "decided_at": None if decided_at is None else decided_at.astimezone(UTC),
        "evidence": list(evidence),
    }


# --- deadline ------------------------------------------------------------------------------------


@dataclass
class _Opportunity:
    scope: str
    number: int
    customer_id: Any
    opened_at: datetime
    due_at: datetime | None
    warn_point: datetime | None
    state: str = "pending"
    decided_at: datetime | None = None
    evidence: list[str] = field(default_factory=list)
    paused: bool = False
    remaining: timedelta | None = None
    warn_remaining: timedelta | None = None


def _advance(opportunity: _Opportunity, clock: datetime) -> None:
    """Move one open opportunity's clock: at risk once warned, broken once overdue."""
    if opportunity.paused or opportunity.state == "broken":
        return
    if opportunity.warn_point is not None and clock >= opportunity.warn_point:
        opportunity.state = "at_risk"
    assert opportunity.due_at is not None  # only a paused opportunity has no due time
    if clock > opportunity.due_at:
        opportunity.state = "broken"
        opportunity.decided_at = opportunity.due_at


def _warn_offset(promise: DeadlinePromise) -> timedelta | None:
    if promise.warn_at is None:
        return None
    return timedelta(seconds=round(promise.within.total_seconds() * promise.warn_at))


def _evaluate_deadline(
    promise: DeadlinePromise, calendar: Calendar, records: list[_Record], final_clock: datetime
) -> list[dict]:
    opened: list[_Opportunity] = []
    open_by_scope: dict[str, _Opportunity] = {}
    count_by_scope: dict[str, int] = {}

    for record in records:
        t = record.at
        for opportunity in open_by_scope.values():
            _advance(opportunity, t)

        scope = scope_of(promise, record.data)
        if scope is None:
            continue

        # 1. cancel
        current = open_by_scope.get(scope)
        if current is not None and match_holds(promise.cancel, record.data):
            if current.state != "broken":
                current.state = "cancelled"
                current.decided_at = t
                current.evidence = [current.evidence[0], record.id]
            else:
                current.evidence.append(record.id)
            del open_by_scope[scope]

        # 2. stop
        current = open_by_scope.get(scope)
        if current is not None and match_holds(promise.stop, record.data):
            if current.state != "broken":
                current.state = "kept"
                current.decided_at = t
                current.evidence = [current.evidence[0], record.id]
            else:
                current.evidence.append(record.id)
            del open_by_scope[scope]

        # 3. resume
        current = open_by_scope.get(scope)
        if current is not None and current.paused and match_holds(promise.resume, record.data):
            assert current.remaining is not None
            current.due_at = calendar.add(t, current.remaining)
            if current.warn_remaining is not None:
                current.warn_point = calendar.add(t, current.warn_remaining)
            current.paused = False
            current.remaining = None
            current.warn_remaining = None

        # 4. pause
        current = open_by_scope.get(scope)
        if (
            current is not None
            and not current.paused
            and current.state != "broken"
            and match_holds(promise.pause, record.data)
        ):
            assert current.due_at is not None
            current.remaining = calendar.between(t, current.due_at)
            current.due_at = None
            if current.warn_point is not None and not t >= current.warn_point:
                current.warn_remaining = calendar.between(t, current.warn_point)
                current.warn_point = None
            current.paused = True

        # 5. start
        if scope not in open_by_scope and match_holds(promise.start, record.data):
            count_by_scope[scope] = count_by_scope.get(scope, 0) + 1
            offset = _warn_offset(promise)
            opportunity = _Opportunity(
                scope=scope,
                number=count_by_scope[scope],
                customer_id=_customer(record.data),
                opened_at=t,
                due_at=calendar.add(t, promise.within),
                warn_point=None if offset is None else calendar.add(t, offset),
                evidence=[record.id],
            )
            opened.append(opportunity)
            open_by_scope[scope] = opportunity

    for opportunity in open_by_scope.values():
        _advance(opportunity, final_clock)

    return [
        _outcome(
            promise,
            o.scope,
            o.customer_id,
            o.state,
            o.opened_at,
            o.due_at,
            o.decided_at,
            o.evidence,
        )
        for o in opened
    ]


# --- never ---------------------------------------------------------------------------------------


def _same_fields_equal(promise: NeverPromise, first: dict, then: dict) -> bool:
    for name in promise.same:
        a, b = field_value(first, name), field_value(then, name)
        if a is ABSENT or b is ABSENT or a != b:
            return False
    return True


def _evaluate_never(promise: NeverPromise, records: list[_Record]) -> list[dict]:
    outcomes = []
    for index, then in enumerate(records):
        scope = scope_of(promise, then.data)
        if scope is None or not match_holds(promise.then, then.data):
            continue
        witness: _Record | None = None
        for first in records[:index]:  # earlier in event-time order, never the record itself
            if (
                scope_of(promise, first.data) == scope
                and match_holds(promise.first, first.data)
                and _same_fields_equal(promise, first.data, then.data)
                and (promise.within is None or then.at - first.at <= promise.within)
            ):
                witness = first  # the last one kept is the most recent
        if witness is None:
            state, evidence = "kept", [then.id]
        else:
            state, evidence = "broken", [witness.id, then.id]
        outcomes.append(
            _outcome(promise, scope, _customer(then.data), state, then.at, None, then.at, evidence)
        )
    return outcomes


# --- limit ---------------------------------------------------------------------------------------


def _evaluate_limit(promise: LimitPromise, records: list[_Record]) -> list[dict]:
    counted_by_scope: dict[str, list[_Record]] = {}
    for record in records:
        scope = scope_of(promise, record.data)
        if scope is not None and match_holds(promise.count, record.data):
            counted_by_scope.setdefault(scope, []).append(record)

    outcomes = []
    for scope, counted in counted_by_scope.items():
        customer = _customer(counted[0].data)
        outcome = None
        # counted[i] is record k = i + 1; record k - max is counted[i - max].
        for i in range(promise.max, len(counted)):
            earlier = counted[i - promise.max]
            if promise.within is None or counted[i].at - earlier.at <= promise.within:
                evidence = [r.id for r in counted[i - promise.max : i + 1]]
                outcome = _outcome(
                    promise, scope, customer, "broken", counted[0].at, None, counted[i].at, evidence
                )
                break
        if outcome is None:
            outcome = _outcome(
                promise,
                scope,
                customer,
                "kept",
                counted[0].at,
                None,
                counted[-1].at,
                [r.id for r in counted],
            )
        outcomes.append(outcome)
    return outcomes


# --- entry point ---------------------------------------------------------------------------------


def evaluate(catalog: Catalog, records: list[dict], until: datetime | None = None) -> list[dict]:
    """Every opportunity of every promise in ``catalog``, decided as docs/semantics.md says.

    Sorted by (promise, scope, opened_at, evidence) so results compare with ``==``.
    """
    ordered = _ordered(records)
    instants = [r.at for r in ordered]
    if until is not None:
        instants.append(until.astimezone(UTC))
    if not instants:
        return []
    final_clock = max(instants)

    outcomes: list[dict] = []
    for promise in catalog.promises.values():
        if isinstance(promise, DeadlinePromise):
            calendar = catalog.calendar_for(promise) or AlwaysOpen()
            outcomes += _evaluate_deadline(promise, calendar, ordered, final_clock)
        elif isinstance(promise, NeverPromise):
            outcomes += _evaluate_never(promise, ordered)
        elif isinstance(promise, LimitPromise):
            outcomes += _evaluate_limit(promise, ordered)
        else:
            raise TypeError(f"unknown promise kind {promise!r}")
    outcomes.sort(key=lambda o: (o["promise"], o["scope"], o["opened_at"], o["evidence"]))
    return outcomes
