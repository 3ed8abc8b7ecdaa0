"""SQL for scope checkpoints (what they hold: engine.evaluation.checkpoint); which ones are
valid is the service's to say. A checkpoint's place is its last record: (µs, id)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from engine.storage.bulk import among, chunked, insert_rows
from engine.storage.schema import CheckpointRow

Pair = tuple[str, str]
"""(promise id, scope)"""
Place = tuple[int, str]
"""A checkpoint's last record: (µs, id)."""


def _by_promise(pairs: Iterable[Pair]) -> Iterable[tuple[str, list[str]]]:
    """(promise, scopes) in chunks: ``promise_id = ? AND scope IN (...)`` is an index range
    on both databases, where PostgreSQL scans the table for a row-value IN list."""
    scopes: dict[str, set[str]] = {}
    for promise_id, scope in pairs:
        scopes.setdefault(promise_id, set()).add(scope)
    for promise_id, wanted in sorted(scopes.items()):
        for chunk in chunked(sorted(wanted)):
            yield promise_id, chunk


def latest(session: Session, pairs: Iterable[Pair]) -> dict[Pair, CheckpointRow]:
    """Each pair's checkpoint after its last evaluated record."""
    found: dict[Pair, CheckpointRow] = {}
    for promise_id, chunk in _by_promise(pairs):
        rows = session.scalars(
            select(CheckpointRow)
            .where(
                CheckpointRow.promise_id == promise_id,
                among(session, CheckpointRow.scope, chunk),
                CheckpointRow.latest,
            )
            .execution_options(populate_existing=True)  # drop() deletes behind the ORM
        )
        found.update(((row.promise_id, row.scope), row) for row in rows)
    return found


def _place() -> Any:
    return tuple_(CheckpointRow.last_at_us, CheckpointRow.last_id)


def _of(pair: Pair) -> Any:
    return (CheckpointRow.promise_id == pair[0]) & (CheckpointRow.scope == pair[1])


def kept_before(session: Session, pair: Pair, place: Place) -> CheckpointRow | None:
    """The pair's last kept checkpoint before ``place``."""
    query = (
        select(CheckpointRow)
        .where(_of(pair), CheckpointRow.kept, _place() < tuple_(*place))
        .order_by(CheckpointRow.last_at_us.desc(), CheckpointRow.last_id.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    )
    return session.scalars(query).first()


def after(session: Session, pair: Pair, place: Place) -> list[CheckpointRow]:
    """The pair's checkpoints after ``place``, in order."""
    query = (
        select(CheckpointRow)
        .where(_of(pair), _place() > tuple_(*place))
        .order_by(CheckpointRow.last_at_us, CheckpointRow.last_id)
        .execution_options(populate_existing=True)
    )
    return list(session.scalars(query))


def drop(
    session: Session, pair: Pair, *, after: Place | None = None, before: Place | None = None
) -> None:
    """Drop the pair's checkpoints after ``after`` and before ``before`` (each bound open;
    None: no bound)."""
    query = delete(CheckpointRow).where(_of(pair))
    if after is not None:
        query = query.where(_place() > tuple_(*after))
    if before is not None:
        query = query.where(_place() < tuple_(*before))
    session.execute(query.execution_options(synchronize_session=False))


def add(session: Session, rows: list[dict[str, Any]]) -> None:
    """Add checkpoints (CheckpointRow columns), in one statement."""
    insert_rows(session, CheckpointRow, rows)


def forget(session: Session, pairs: Iterable[Pair]) -> None:
    """Drop the checkpoints of ``pairs``: their scopes start afresh next time."""
    for promise_id, chunk in _by_promise(pairs):
        session.execute(
            delete(CheckpointRow).where(
                CheckpointRow.promise_id == promise_id, among(session, CheckpointRow.scope, chunk)
            )
        )


def forget_all(session: Session, keeping: Iterable[str] | None = None) -> None:
    """Drop every checkpoint, or those of promises not in ``keeping``."""
    query = delete(CheckpointRow)
    if keeping is not None:
        query = query.where(CheckpointRow.promise_id.not_in(sorted(keeping)))
    session.execute(query)
