"""SQL for records, outcomes and engine state; no business rules here (see service.py)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from engine.outcomes import Outcome
from engine.records import Interaction, from_micros, to_micros
from engine.schema import (
    EngineStateRow,
    InteractionRow,
    OutcomeRow,
    PendingRow,
    PromiseVersionRow,
    RevisionRow,
    ScopeKeyRow,
)

CLOCK = "clock"
_RECORD_COLUMNS = [getattr(InteractionRow, f.name) for f in dataclasses.fields(Interaction)]
_COLUMNS = {
    name: getattr(InteractionRow, name)
    for name in ("id", "customer_id", "case_id", "channel", "direction", "type", "team", "agent")
}


def now() -> datetime:
    return datetime.now(UTC)


# --- records -----------------------------------------------------------------------------------


def fingerprints(session: Session, ids: Iterable[str]) -> dict[str, str]:
    wanted = list(set(ids))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), 500):
        rows = session.execute(
            select(InteractionRow.id, InteractionRow.fingerprint).where(
                InteractionRow.id.in_(wanted[start : start + 500])
            )
        )
        found.update({record_id: fingerprint for record_id, fingerprint in rows.tuples()})
    return found


def add_records(session: Session, records: list[Interaction], scope_fields: Iterable[str]) -> None:
    """Bulk insert (Core, not ORM units of work: a replay stores a million of these)."""
    received = now()
    session.execute(
        insert(InteractionRow),
        [
            {
                "id": r.id,
                "occurred_at": r.occurred_at,
                "at_us": r.at,
                "customer_id": r.customer_id,
                "case_id": r.case_id,
                "channel": r.channel,
                "direction": r.direction,
                "type": r.type,
                "team": r.team,
                "agent": r.agent,
                "attributes": r.attributes,
                "fingerprint": r.fingerprint(),
                "received_at": received,
            }
            for r in records
        ],
    )
    fields = indexed_fields(scope_fields)
    keys = [
        {"field": field, "value": value, "record_id": r.id}
        for r in records
        for field in fields
        if (value := scope_value(r.fields(), field)) is not None
    ]
    if keys:
        _bulk_insert(session, ScopeKeyRow, keys)


def _bulk_insert(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Core executemany: no ORM unit of work per row (a replay stores millions of rows)."""
    if rows:
        session.execute(insert(table), rows)


def scope_value(fields: dict[str, Any], field: str) -> str | None:
    value = fields.get(field)
    return None if value is None or value == "" else str(value)


def indexed_fields(scope_fields: Iterable[str]) -> list[str]:
    """Scope fields that need scope keys: attribute paths (record columns have indexes)."""
    return [name for name in scope_fields if name not in _COLUMNS]


def _in_scope(field: str, value: str) -> Any:
    """The scope's records, as the columns of :class:`Interaction` in its field order."""
    if field in _COLUMNS:
        return select(*_RECORD_COLUMNS).where(_COLUMNS[field] == value)
    return (
        select(*_RECORD_COLUMNS)
        .join(ScopeKeyRow, ScopeKeyRow.record_id == InteractionRow.id)
        .where(ScopeKeyRow.field == field, ScopeKeyRow.value == value)
    )


def scope_records(session: Session, field: str, value: str) -> list[Interaction]:
    query = _in_scope(field, value).order_by(InteractionRow.at_us, InteractionRow.id)
    return [Interaction(*row) for row in session.execute(query)]


def scopes_records(
    session: Session, keys: Iterable[tuple[str, str]], chunk: int = 500
) -> dict[tuple[str, str], list[Interaction]]:
    """The records of many scopes (field, value), each in event-time order: one query per
    field and chunk of values instead of one per scope (the worker's hot path)."""
    by_field: dict[str, set[str]] = {}
    for field, value in keys:
        by_field.setdefault(field, set()).add(value)
    found: dict[tuple[str, str], list[Interaction]] = {
        (f, v): [] for f, values in by_field.items() for v in values
    }
    for field, values in by_field.items():
        wanted = sorted(values)
        for start in range(0, len(wanted), chunk):
            part = wanted[start : start + chunk]
            if field in _COLUMNS:
                column = _COLUMNS[field]
                query = select(column, *_RECORD_COLUMNS).where(column.in_(part))
            else:
                query = (
                    select(ScopeKeyRow.value, *_RECORD_COLUMNS)
                    .join(ScopeKeyRow, ScopeKeyRow.record_id == InteractionRow.id)
                    .where(ScopeKeyRow.field == field, ScopeKeyRow.value.in_(part))
                )
            for value, *columns in session.execute(query):
                found[(field, str(value))].append(Interaction(*columns))
    for records in found.values():
        records.sort(key=lambda r: r.order)
    return found


def records_by_id(session: Session, ids: Iterable[str], chunk: int = 500) -> dict[str, Interaction]:
    """Stored records by id (evidence), read in chunks under the databases' parameter limits."""
    unique = sorted(set(ids))
    found: dict[str, Interaction] = {}
    for start in range(0, len(unique), chunk):
        query = select(*_RECORD_COLUMNS).where(InteractionRow.id.in_(unique[start : start + chunk]))
        found.update((row.id, Interaction(*row)) for row in session.execute(query))
    return found


def customer_records(
    session: Session, customer_id: str, limit: int
) -> tuple[list[Interaction], int]:
    """The customer's latest ``limit`` records in event-time order, and how many are stored."""
    rows = session.execute(
        select(*_RECORD_COLUMNS)
        .where(InteractionRow.customer_id == customer_id)
        .order_by(InteractionRow.at_us.desc(), InteractionRow.id.desc())
        .limit(limit)
    )
    latest = [Interaction(*row) for row in rows]
    total = session.scalar(select(func.count()).where(InteractionRow.customer_id == customer_id))
    return latest[::-1], total or 0


def queued(session: Session, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` are still waiting in the queue (accepted, not yet evaluated)."""
    wanted = sorted(set(ids))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        found.update(
            session.scalars(
                select(PendingRow.record_id).where(
                    PendingRow.record_id.in_(wanted[start : start + 500])
                )
            )
        )
    return found


def enqueue(session: Session, records: list[Interaction]) -> None:
    _bulk_insert(session, PendingRow, [{"record_id": r.id} for r in records])


def take_pending(session: Session, limit: int) -> list[Interaction]:
    """The oldest queued records, locked so that another worker skips them (PostgreSQL)."""
    ids = select(PendingRow.record_id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        ids = ids.with_for_update(skip_locked=True)
    chosen = list(session.scalars(ids))
    query = select(*_RECORD_COLUMNS).where(InteractionRow.id.in_(chosen))
    return sorted((Interaction(*row) for row in session.execute(query)), key=lambda r: r.order)


def dequeue(session: Session, ids: list[str]) -> None:
    for start in range(0, len(ids), 500):
        session.execute(
            delete(PendingRow).where(PendingRow.record_id.in_(ids[start : start + 500]))
        )


def pending_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(PendingRow)) or 0


def all_records(session: Session, batch: int = 5_000) -> Iterator[Interaction]:
    """Every stored record in event-time order, streamed (plain rows, no ORM objects)."""
    rows = session.execute(
        select(*_RECORD_COLUMNS)
        .order_by(InteractionRow.at_us, InteractionRow.id)
        .execution_options(yield_per=batch)
    )
    for row in rows:
        yield Interaction(*row)


def count_records(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(InteractionRow)) or 0


def index_scope_field(session: Session, field: str) -> None:
    """Add scope keys for ``field`` to records stored before a promise used it."""
    if field in _COLUMNS:
        return
    marker = f"scope_field:{field}"
    if session.get(EngineStateRow, marker) is not None:
        return
    session.execute(delete(ScopeKeyRow).where(ScopeKeyRow.field == field))
    for record in all_records(session):
        value = scope_value(record.fields(), field)
        if value is not None:
            session.add(ScopeKeyRow(field=field, value=value, record_id=record.id))
    session.add(EngineStateRow(name=marker, value=1))
    session.flush()


# --- engine state ------------------------------------------------------------------------------


def get_clock(session: Session) -> int | None:
    row = session.get(EngineStateRow, CLOCK)
    return row.value if row else None


def set_clock(session: Session, micros: int) -> None:
    """Move the stored clock forward (never back), safely against concurrent workers."""
    if session.get(EngineStateRow, CLOCK) is None:
        session.add(EngineStateRow(name=CLOCK, value=micros))
        session.flush()
        return
    value = EngineStateRow.value
    session.execute(
        update(EngineStateRow)
        .where(EngineStateRow.name == CLOCK)
        .values(value=case((value < micros, micros), else_=value))
        .execution_options(synchronize_session=False)
    )


def lock_scopes(session: Session, keys: Iterable[tuple[str, str]]) -> None:
    """Serialise evaluation of each (promise, scope) across workers (PostgreSQL advisory
    locks, released at commit), all in one statement, taken in ascending lock order so that
    workers cannot deadlock."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite serialises writers itself
    locks = sorted(
        {
            int.from_bytes(
                hashlib.blake2b(f"{promise}\x00{scope}".encode(), digest_size=8).digest(),
                "big",
                signed=True,
            )
            for promise, scope in keys
        }
    )
    if locks:
        session.execute(
            text(
                "SELECT count(pg_advisory_xact_lock(k)) FROM "
                "(SELECT k FROM unnest(CAST(:locks AS bigint[])) AS t(k) ORDER BY k) AS ordered"
            ),
            {"locks": locks},
        )


def beat(session: Session, name: str) -> None:
    """Record that ``name`` (a worker) is alive now."""
    set_state(session, name, to_micros(now()))


def last_beat(session: Session, name: str) -> datetime | None:
    row = session.get(EngineStateRow, name)
    return from_micros(row.value) if row else None


def states_named(session: Session, prefix: str) -> dict[str, int]:
    """Engine-state values whose names start with ``prefix``."""
    rows = session.execute(
        select(EngineStateRow.name, EngineStateRow.value).where(
            EngineStateRow.name.startswith(prefix, autoescape=True)
        )
    )
    return dict(rows.tuples().all())


def set_state(session: Session, name: str, value: int) -> None:
    row = session.get(EngineStateRow, name)
    if row is None:
        session.add(EngineStateRow(name=name, value=value))
    else:
        row.value = value


def delete_state(session: Session, name: str) -> None:
    session.execute(delete(EngineStateRow).where(EngineStateRow.name == name))


def record_versions(session: Session, versions: Iterable[PromiseVersionRow]) -> None:
    for version in versions:
        if session.get(PromiseVersionRow, (version.promise_id, version.version)) is None:
            session.add(version)


# --- outcomes ----------------------------------------------------------------------------------


def outcomes_in_scope(session: Session, promise_id: str, scope: str) -> dict[str, OutcomeRow]:
    rows = session.scalars(
        select(OutcomeRow).where(OutcomeRow.promise_id == promise_id, OutcomeRow.scope == scope)
    )
    return {row.key: row for row in rows}


def outcomes_in_scopes(
    session: Session, keys: Iterable[tuple[str, str]], chunk: int = 500
) -> dict[tuple[str, str], dict[str, OutcomeRow]]:
    """The outcomes of many (promise, scope) pairs, by key: one query per promise and chunk."""
    by_promise: dict[str, set[str]] = {}
    for promise_id, scope in keys:
        by_promise.setdefault(promise_id, set()).add(scope)
    found: dict[tuple[str, str], dict[str, OutcomeRow]] = {
        (p, s): {} for p, scopes in by_promise.items() for s in scopes
    }
    for promise_id, scopes in by_promise.items():
        wanted = sorted(scopes)
        for start in range(0, len(wanted), chunk):
            rows = session.scalars(
                select(OutcomeRow).where(
                    OutcomeRow.promise_id == promise_id,
                    OutcomeRow.scope.in_(wanted[start : start + chunk]),
                )
            )
            for row in rows:
                found[(promise_id, row.scope)][row.key] = row
    return found


def outcomes_of(session: Session, promise_id: str) -> dict[str, OutcomeRow]:
    rows = session.scalars(select(OutcomeRow).where(OutcomeRow.promise_id == promise_id))
    return {row.key: row for row in rows}


def all_outcomes(session: Session) -> dict[tuple[str, str], OutcomeRow]:
    return {(row.promise_id, row.key): row for row in session.scalars(select(OutcomeRow))}


def open_scopes_due(session: Session, micros_now: datetime) -> list[tuple[str, str]]:
    """(promise, scope) of open outcomes whose due time passed or warning point was reached."""
    rows = session.execute(
        select(OutcomeRow.promise_id, OutcomeRow.scope)
        .where(
            OutcomeRow.state.in_(("pending", "at_risk")),
            ((OutcomeRow.due_at < micros_now) | (OutcomeRow.warn_at <= micros_now)),
        )
        .distinct()
    )
    return [(p, s) for p, s in rows.tuples()]


def _outcome_columns(outcome: Outcome) -> dict[str, Any]:
    return {
        "version": outcome.version,
        "scope": outcome.scope,
        "customer_id": outcome.customer_id,
        "channel": outcome.channel,
        "state": outcome.state,
        "opened_at": outcome.opened_at,
        "due_at": outcome.due_at,
        "warn_at": outcome.warn_at,
        "decided_at": outcome.decided_at,
        "evidence": list(outcome.evidence),
        "updated_at": now(),
    }


def add_outcomes(session: Session, outcomes: list[Outcome], owner: str) -> None:
    """Insert new outcomes (a creation is not a change, so it has no revision)."""
    rows = [
        {"promise_id": o.promise, "key": o.key, "owner": owner, **_outcome_columns(o)}
        for o in outcomes
    ]
    _bulk_insert(session, OutcomeRow, rows)


def apply_outcome(row: OutcomeRow, outcome: Outcome) -> None:
    for column, value in _outcome_columns(outcome).items():
        setattr(row, column, value)


def row_to_outcome(row: OutcomeRow) -> Outcome:
    return Outcome(
        promise=row.promise_id,
        version=row.version,
        key=row.key,
        scope=row.scope,
        customer_id=row.customer_id,
        state=row.state,  # type: ignore[arg-type]
        opened_at=row.opened_at,
        due_at=row.due_at,
        decided_at=row.decided_at,
        evidence=list(row.evidence),
        warn_at=row.warn_at,
        channel=row.channel,
        sealed=row.sealed_at is not None,
    )


def add_revision(
    session: Session,
    promise_id: str,
    key: str,
    before: Outcome | None,
    after: Outcome | None,
    reason: str,
) -> None:
    session.add(
        RevisionRow(
            promise_id=promise_id,
            key=key,
            old_state=before.state if before else None,
            new_state=after.state if after else None,
            reason=reason[:1024],
            changed_at=now(),
            before=before.to_json() if before else None,
            after=after.to_json() if after else None,
        )
    )


def revisions(session: Session, promise_id: str | None = None) -> list[RevisionRow]:
    query = select(RevisionRow).order_by(RevisionRow.id)
    if promise_id is not None:
        query = query.where(RevisionRow.promise_id == promise_id)
    return list(session.scalars(query))
