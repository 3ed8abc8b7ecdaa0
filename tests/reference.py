"""Reference evaluator: docs/semantics.md written out as plain, slow, obvious Python.

It is the oracle for property tests against the durable-rules engine, so it shares nothing
with it (no ``durable``, ``engine`` or ``rules.compiler``) and follows the document
literally rather than cleverly. Every clock step and every role of every record is applied
one at a time, in the order the document lists them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import holidays

from rules.business_time import BusinessCalendar
from rules.durations import BusinessDays
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

__all__ = ["ABSENT", "OpeningHours", "evaluate", "field_value", "match_holds", "scope_of"]

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


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if _is_number(value):
        return "number"
    return type(value).__name__  # str, dict, list


def _equal(a: Any, b: Any) -> bool:
    """Equal as JSON values: of one kind (text is never a number, true never 1) and equal,
    numbers by value (1 is 1.0), objects and lists element by element."""
    if _json_kind(a) != _json_kind(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


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
        return _equal(value, condition.value)
    if isinstance(condition, OneOf):
        return any(_equal(value, option) for option in condition.values)
    if isinstance(condition, Matches):  # text only
        return (
            isinstance(value, str) and re.fullmatch(condition.source, value, re.ASCII) is not None
        )
    if isinstance(condition, Compare):
        if condition.op == "ne":
            return not _equal(value, condition.value)
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


# --- business time -------------------------------------------------------------------------------

_US = timedelta(microseconds=1)


class _Calendar(Protocol):
    def add(self, start: datetime, duration: timedelta) -> datetime: ...

    def between(self, start: datetime, end: datetime) -> timedelta: ...


class _AroundTheClock:
    """No calendar: 24x7, business time is elapsed time."""

    def add(self, start: datetime, duration: timedelta) -> datetime:
        return start + duration

    def between(self, start: datetime, end: datetime) -> timedelta:
        return end - start


class OpeningHours:
    """A calendar read as the document says: an instant is open when the local wall clock
    shows a time inside the opening hours of the date it shows, that date being neither a
    holiday nor closed.

    Only the calendar's definition is taken from ``BusinessCalendar`` (zone, hours,
    holidays, closed dates), never its arithmetic. Time is walked in pieces over which
    nothing can change (the UTC offset is constant and the wall clock crosses no opening,
    closing or midnight), one at a time, which is slow and obvious.
    """

    def __init__(self, definition: BusinessCalendar) -> None:
        self.zone = ZoneInfo(definition.timezone)
        self.hours = {
            weekday: [(_since_midnight(a), _since_midnight(b) or timedelta(days=1)) for a, b in ivs]
            for weekday, ivs in definition.hours.items()
        }
        self.holidays = (
            holidays.country_holidays(definition.country, subdiv=definition.subdiv)
            if definition.country
            else {}
        )
        self.closed = set(definition.closed)

    def _wall(self, at: datetime) -> datetime:
        """What the local clock shows at ``at``, as a naive date and time."""
        return at.astimezone(self.zone).replace(tzinfo=None)

    def is_open(self, at: datetime) -> bool:
        wall = self._wall(at)
        day = wall.date()
        if day in self.closed or day in self.holidays:
            return False
        clock = wall - datetime.combine(day, time())
        return any(start <= clock < end for start, end in self.hours.get(day.weekday(), []))

    def _piece_end(self, at: datetime) -> datetime:
        """The end of the piece that begins at ``at``."""
        wall = self._wall(at)
        midnight = datetime.combine(wall.date(), time())
        edges = [midnight + edge for span in self.hours.get(wall.weekday(), []) for edge in span]
        edges.append(midnight + timedelta(days=1))
        end = at + (min(edge for edge in edges if edge > wall) - wall)
        offset = at.astimezone(self.zone).utcoffset()
        if (end - _US).astimezone(self.zone).utcoffset() == offset:
            return end
        # The offset changes first: the first instant with the new one ends the piece.
        before, after = at, end - _US
        while after - before > _US:
            middle = before + (after - before) // 2
            if middle.astimezone(self.zone).utcoffset() == offset:
                before = middle
            else:
                after = middle
        return after

    def between(self, start: datetime, end: datetime) -> timedelta:
        """The business time in [start, end); negative when end is before start."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if end < start:
            return -self.between(end, start)
        total, at = timedelta(0), start
        while at < end:
            piece_end = min(self._piece_end(at), end)
            if self.is_open(at):
                total += piece_end - at
            at = piece_end
        return total

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The earliest instant by which ``duration`` of business time has passed."""
        remaining, at = duration, start.astimezone(UTC)
        while remaining > timedelta(0):
            piece_end = self._piece_end(at)
            if self.is_open(at):
                if piece_end - at >= remaining:
                    return at + remaining
                remaining -= piece_end - at
            at = piece_end
        return at

    def close_of_business(self, start: datetime, days: int) -> datetime:
        """The end of the last open time the clock shows on the ``days``-th business day
        after the date it shows at ``start``."""
        after = self._wall(start).date()
        closes: dict[date, datetime] = {}  # business day -> end of its open time seen so far
        at = start.astimezone(UTC)
        while True:
            piece_end = self._piece_end(at)
            day = self._wall(at).date()
            if len(closes) >= days:
                target = sorted(closes)[days - 1]
                if day > target + timedelta(days=1):  # the clock is past that date for good
                    return closes[target]
            if day > after and self.is_open(at):
                closes[day] = piece_end
            at = piece_end


def _since_midnight(moment: time) -> timedelta:
    return timedelta(
        hours=moment.hour,
        minutes=moment.minute,
        seconds=moment.second,
        microseconds=moment.microsecond,
    )


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


def _times(
    promise: DeadlinePromise, calendar: _Calendar, opened_at: datetime
) -> tuple[datetime, datetime | None]:
    """Due time and warning point of an opportunity opened at ``opened_at``."""
    if isinstance(promise.within, BusinessDays):
        assert isinstance(calendar, OpeningHours), "business days need a calendar"
        due_at = calendar.close_of_business(opened_at, promise.within.days)
    else:
        due_at = calendar.add(opened_at, promise.within)
    if promise.warn_at is None:
        return due_at, None
    allowed = calendar.between(opened_at, due_at)
    warn = timedelta(seconds=round(allowed.total_seconds() * promise.warn_at))
    return due_at, calendar.add(opened_at, warn)


def _evaluate_deadline(
    promise: DeadlinePromise, calendar: _Calendar, records: list[_Record], final_clock: datetime
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
            due_at, warn_point = _times(promise, calendar, t)
            opportunity = _Opportunity(
                scope=scope,
                number=count_by_scope[scope],
                customer_id=_customer(record.data),
                opened_at=t,
                due_at=due_at,
                warn_point=warn_point,
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
        if a is ABSENT or b is ABSENT or not _equal(a, b):
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
        if promise.within is None:
            outcomes.append(_whole_scope(promise, scope, counted))
        else:
            outcomes += [
                _one_counted(promise, scope, counted, k) for k in range(1, len(counted) + 1)
            ]
    return outcomes


def _over(promise: LimitPromise, counted: list[_Record], k: int) -> bool:
    """Whether counted record k (1-based) takes its window over ``max``: record k - max
    exists and lies within the window ending at record k."""
    if k <= promise.max:
        return False
    earlier, record = counted[k - promise.max - 1], counted[k - 1]
    return promise.within is None or record.at - earlier.at <= promise.within


def _one_counted(promise: LimitPromise, scope: str, counted: list[_Record], k: int) -> dict:
    """With a window: counted record k is its own opportunity."""
    record = counted[k - 1]
    if _over(promise, counted, k):
        state, evidence = "broken", [r.id for r in counted[k - promise.max - 1 : k]]
    else:
        state, evidence = "kept", [record.id]
    customer = _customer(record.data)
    return _outcome(promise, scope, customer, state, record.at, None, record.at, evidence)


def _whole_scope(promise: LimitPromise, scope: str, counted: list[_Record]) -> dict:
    """Without a window: the scope is one opportunity, broken at its first excess."""
    customer = _customer(counted[0].data)
    for k in range(1, len(counted) + 1):
        if _over(promise, counted, k):
            evidence = [r.id for r in counted[k - promise.max - 1 : k]]
            at = counted[k - 1].at
            return _outcome(promise, scope, customer, "broken", counted[0].at, None, at, evidence)
    evidence = [r.id for r in counted]
    return _outcome(promise, scope, customer, "kept", counted[0].at, None, counted[-1].at, evidence)


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
            definition = catalog.calendar_for(promise)
            calendar: _Calendar
            if definition is None:
                calendar = _AroundTheClock()
            else:
                assert isinstance(definition, BusinessCalendar)
                calendar = OpeningHours(definition)
            outcomes += _evaluate_deadline(promise, calendar, ordered, final_clock)
        elif isinstance(promise, NeverPromise):
            outcomes += _evaluate_never(promise, ordered)
        elif isinstance(promise, LimitPromise):
            outcomes += _evaluate_limit(promise, ordered)
        else:
            raise TypeError(f"unknown promise kind {promise!r}")
    outcomes.sort(key=lambda o: (o["promise"], o["scope"], o["opened_at"], o["evidence"]))
    return outcomes
