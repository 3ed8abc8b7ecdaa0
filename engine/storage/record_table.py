"""SQL for interaction records, their scope keys and the evaluation queue; no business rules
here (see :mod:`engine.service`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from engine import shards
from engine.clock import now, to_micros
from engine.records import Interaction
from engine.storage.bulk import among, chunked, insert_rows
from engine.storage.schema import (
    EngineStateRow,
    InteractionRow,
    PendingRow,
    ScopeKeyRow,
)
from rules.models import RECORD_FIELDS

_RECORD_NAMES = [f.name for f in dataclasses.fields(Interaction)]
_RECORD_COLUMNS = [getattr(InteractionRow, name) for name in _RECORD_NAMES]
"""The columns of :class:`Interaction`, in its field order: ``Interaction(*row)``."""
_COLUMNS = {name: getattr(InteractionRow, name) for name in RECORD_FIELDS}
"""The record fields a scope may name that are columns (attribute paths are scope keys)."""


# --- records -----------------------------------------------------------------------------------


def fingerprints(session: Session, ids: Iterable[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in chunked(set(ids)):
        rows = session.execute(
            select(InteractionRow.id, InteractionRow.fingerprint).where(
                InteractionRow.id.in_(chunk)
            )
        )
        found.update({record_id: fingerprint for record_id, fingerprint in rows.tuples()})
    return found


def add_records(session: Session, records: list[Interaction], scope_fields: Iterable[str]) -> None:
    """Bulk insert (Core, not ORM units of work: a replay stores a million of these)."""
    insert_rows(
        session,
        InteractionRow,
        [
            {
                **{name: getattr(r, name) for name in _RECORD_NAMES},
                "at_us": r.at,
                "fingerprint": r.fingerprint(),
            }
            for r in records
        ],
        received_at=now(),
    )
    fields = indexed_fields(scope_fields)
    keys = [
        {"field": field, "value": value, "record_id": r.id}
        for r in records
        for field in fields
        if (value := scope_value(r.fields(), field)) is not None
    ]
    if keys:
        insert_rows(session, ScopeKeyRow, keys)


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
    session: Session, keys: Iterable[tuple[str, str]]
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
        for part in chunked(sorted(values)):
            if field in _COLUMNS:
                column = _COLUMNS[field]
                query = select(column, *_RECORD_COLUMNS).where(among(session, column, part))
            else:
                query = (
                    select(ScopeKeyRow.value, *_RECORD_COLUMNS)
                    .join(ScopeKeyRow, ScopeKeyRow.record_id == InteractionRow.id)
                    .where(ScopeKeyRow.field == field, among(session, ScopeKeyRow.value, part))
                )
            for value, *columns in session.execute(query):
                found[(field, str(value))].append(Interaction(*columns))
    for records in found.values():
        records.sort(key=lambda r: r.order)
    return found


def records_after(
    session: Session, after: dict[tuple[str, str], tuple[int, str]]
) -> dict[tuple[str, str], list[Interaction]]:
    """The records of many scopes (field, value) that come after a point (µs, id) of each,
    in event-time order: a checkpoint's scope reads what follows it, not its history."""
    found: dict[tuple[str, str], list[Interaction]] = {key: [] for key in after}
    by_field: dict[str, list[tuple[str, int]]] = {}
    for (field, value), (at, _) in after.items():
        by_field.setdefault(field, []).append((value, at))
    for field, points in by_field.items():
        for part in chunked(sorted(points), 200):
            if field in _COLUMNS:
                column = _COLUMNS[field]
                query = select(column, *_RECORD_COLUMNS)
            else:
                column = ScopeKeyRow.value
                query = select(column, *_RECORD_COLUMNS).join(
                    ScopeKeyRow, ScopeKeyRow.record_id == InteractionRow.id
                )
                query = query.where(ScopeKeyRow.field == field)
            query = query.where(
                or_(*((column == value) & (InteractionRow.at_us >= at) for value, at in part))
            )
            for value, *columns in session.execute(query):
                record = Interaction(*columns)
                key = (field, str(value))
                if (record.at, record.id) > after[key]:
                    found[key].append(record)
    for records in found.values():
        records.sort(key=lambda r: r.order)
    return found


def scope_records_between(
    session: Session,
    field: str,
    value: str,
    after: tuple[datetime, str],
    through: tuple[datetime, str] | None,
) -> list[Interaction]:
    """A scope's records after one (occurred, id) and up to another (None: all after), in
    event-time order."""
    query = _in_scope(field, value).where(InteractionRow.at_us >= to_micros(after[0]))
    if through is not None:
        query = query.where(InteractionRow.at_us <= to_micros(through[0]))
    rows = session.execute(query.order_by(InteractionRow.at_us, InteractionRow.id))
    records = [Interaction(*row) for row in rows]
    return [r for r in records if r.order > after and (through is None or r.order <= through)]


def last_evaluated(
    session: Session, field: str, value: str, excluding: Iterable[str]
) -> tuple[datetime, str] | None:
    """The scope's latest record, in event time, that has left the queue (evaluated), other
    than ``excluding``: a new record before it arrived late."""
    waiting = select(PendingRow.record_id).where(PendingRow.record_id == InteractionRow.id)
    query = _in_scope(field, value).where(~waiting.exists())
    if excluding := sorted(excluding):
        query = query.where(InteractionRow.id.not_in(excluding))
    query = query.order_by(InteractionRow.at_us.desc(), InteractionRow.id.desc()).limit(1)
    row = session.execute(query).first()
    return None if row is None else Interaction(*row).order


def records_by_id(session: Session, ids: Iterable[str]) -> dict[str, Interaction]:
    """Stored records by id (evidence), read in chunks under the databases' parameter limits."""
    found: dict[str, Interaction] = {}
    for chunk in chunked(sorted(set(ids))):
        query = select(*_RECORD_COLUMNS).where(InteractionRow.id.in_(chunk))
        found.update((row.id, Interaction(*row)) for row in session.execute(query))
    return found


def teams_and_agents(
    session: Session, ids: Iterable[str]
) -> dict[str, tuple[str | None, str | None]]:
    """The team and agent of each of these records: who acted, without the whole record."""
    found: dict[str, tuple[str | None, str | None]] = {}
    for chunk in chunked(sorted(set(ids))):
        query = select(InteractionRow.id, InteractionRow.team, InteractionRow.agent).where(
            InteractionRow.id.in_(chunk)
        )
        found.update((i, (team, agent)) for i, team, agent in session.execute(query))
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
    found: set[str] = set()
    for chunk in chunked(sorted(set(ids))):
        found.update(
            session.scalars(
                select(PendingRow.record_id).where(among(session, PendingRow.record_id, chunk))
            )
        )
    return found


def enqueue(
    session: Session, records: list[Interaction], scope_fields: Iterable[str], *, backfill: bool
) -> None:
    """Queue each record once per shard its scopes fall in (a record with no scope, once:
    it still moves the clock)."""
    rows = []
    for record in records:
        flat = record.fields()
        scopes = [(f, v) for f in scope_fields if (v := scope_value(flat, f)) is not None]
        numbers = {shards.shard(f, v) for f, v in scopes} or {shards.shard("", record.id)}
        rows += [{"record_id": record.id, "shard": n} for n in numbers]
    insert_rows(session, PendingRow, rows, backfill=backfill)


@dataclasses.dataclass
class Taken:
    """Queued records a worker took: in event-time order, each with the shards it was taken
    for; whether they are backfilled history."""

    records: list[Interaction]
    shards: dict[str, set[int]]
    backfill: bool = False


def take_pending(session: Session, limit: int, share: range, per_record: int) -> Taken:
    """Up to ``limit`` queued records with all their rows of the shards in ``share`` (a
    record has up to ``per_record``), locked so that another worker skips them (PostgreSQL):
    each record is taken whole, once. Live records go first, and a round never mixes the
    two: history alerts by its own rule (engine.alerting.outbox)."""
    most = limit * per_record
    for backfill in (False, True):
        rows = (
            select(PendingRow.record_id, PendingRow.shard)
            .where(
                PendingRow.backfill == backfill,
                PendingRow.shard >= share.start,
                PendingRow.shard < share.stop,
            )
            .order_by(PendingRow.record_id, PendingRow.shard)
            .limit(most)
        )
        if session.get_bind().dialect.name == "postgresql":
            rows = rows.with_for_update(skip_locked=True)
        found = list(session.execute(rows))
        chosen: dict[str, set[int]] = {}
        for record_id, number in found:
            chosen.setdefault(record_id, set()).add(number)
        if len(found) == most and len(chosen) > 1:  # the last record may have more rows
            chosen.pop(found[-1][0])
        chosen = dict(list(chosen.items())[:limit])
        if chosen:
            query = select(*_RECORD_COLUMNS).where(among(session, InteractionRow.id, list(chosen)))
            records = [Interaction(*row) for row in session.execute(query)]
            return Taken(sorted(records, key=lambda r: r.order), chosen, backfill)
    return Taken([], {})


def dequeue(session: Session, taken: Taken) -> None:
    """Remove the rows of ``taken`` (one statement per shard: a list of row values would
    make PostgreSQL scan the table)."""
    by_shard: dict[int, list[str]] = {}
    for record_id, numbers in taken.shards.items():
        for number in numbers:
            by_shard.setdefault(number, []).append(record_id)
    for number, ids in by_shard.items():
        for chunk in chunked(ids):
            session.execute(
                delete(PendingRow).where(
                    PendingRow.shard == number, among(session, PendingRow.record_id, chunk)
                )
            )


def pending_count(session: Session) -> int:
    """Records queued in at least one shard."""
    return session.scalar(select(func.count(PendingRow.record_id.distinct()))) or 0


def queue_empty(session: Session) -> bool:
    return session.scalar(select(PendingRow.record_id).limit(1)) is None


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
