"""What the database holds about a customer or a scope: the SQL that erasure, export and
retention share.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.orm import Session

from engine.records import Interaction
from engine.storage.bulk import chunked
from engine.storage.schema import (
    BacklogRow,
    BreachActionRow,
    InteractionRow,
    OutcomeRow,
    PendingRow,
    ScopeKeyRow,
)

# --- SQL helpers ---------------------------------------------------------------------------------


def scope_filter(field_name: str, value: str) -> Any:
    """Records of one scope, as a WHERE clause on interactions."""
    column = getattr(InteractionRow, field_name, None) if "." not in field_name else None
    if column is not None:
        return column == value
    keys = select(ScopeKeyRow.record_id).where(
        ScopeKeyRow.field == field_name, ScopeKeyRow.value == value
    )
    return InteractionRow.id.in_(keys)


def latest_in_scope(session: Session, field_name: str, value: str) -> int | None:
    return session.scalar(
        select(func.max(InteractionRow.at_us)).where(scope_filter(field_name, value))
    )


def scope_is_empty(session: Session, field_name: str, value: str) -> bool:
    query = select(InteractionRow.id).where(scope_filter(field_name, value)).limit(1)
    return session.scalar(query) is None


def records_of(session: Session, customer_id: str) -> list[tuple[Interaction, datetime]]:
    columns = [getattr(InteractionRow, f.name) for f in dataclasses.fields(Interaction)]
    rows = session.execute(
        select(*columns, InteractionRow.received_at)
        .where(InteractionRow.customer_id == customer_id)
        .order_by(InteractionRow.at_us, InteractionRow.id)
    )
    return [(Interaction(*row[:-1]), row[-1]) for row in rows]


def delete_records(session: Session, ids: list[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for chunk in chunked(ids):
        for name, table, column in (
            ("pending_records", PendingRow, PendingRow.record_id),
            ("scope_keys", ScopeKeyRow, ScopeKeyRow.record_id),
            ("interactions", InteractionRow, InteractionRow.id),
        ):
            counts[name] += session.execute(delete(table).where(column.in_(chunk))).rowcount or 0
    return counts


def outcomes_in(session: Session, pairs: Iterable[tuple[str, str]]) -> list[OutcomeRow]:
    by_promise: dict[str, set[str]] = defaultdict(set)
    for promise_id, scope in pairs:
        by_promise[promise_id].add(scope)
    rows: dict[int, OutcomeRow] = {}
    for promise_id, scopes in sorted(by_promise.items()):
        for chunk in chunked(sorted(scopes)):
            query = select(OutcomeRow).where(
                OutcomeRow.promise_id == promise_id, OutcomeRow.scope.in_(chunk)
            )
            rows.update((row.id, row) for row in session.scalars(query))
    return [rows[i] for i in sorted(rows)]


def erase_notes(session: Session, outcome_ids: list[int]) -> int:
    """Empty the free-text notes on these outcomes' breach handling: a note may say anything
    about the customer, and no rewriting of ids can find all of it."""
    erased = 0
    for chunk in chunked(outcome_ids):
        erased += (
            session.execute(
                update(BreachActionRow)
                .where(BreachActionRow.outcome_id.in_(chunk), BreachActionRow.note.is_not(None))
                .values(note=None)
            ).rowcount
            or 0
        )
    return erased


def drop_backlog(session: Session, pairs: list[tuple[str, str]]) -> int:
    """Take (promise, scope) pairs off the quarantine backlog: scopes whose records are gone
    have nothing left to evaluate, and the scope value names the customer."""
    dropped = 0
    for chunk in chunked(sorted(pairs)):
        query = delete(BacklogRow).where(tuple_(BacklogRow.promise_id, BacklogRow.scope).in_(chunk))
        dropped += session.execute(query).rowcount or 0
    return dropped
