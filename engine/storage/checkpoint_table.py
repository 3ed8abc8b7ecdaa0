"""SQL for scope checkpoints (what they hold: engine.evaluation.checkpoint); which ones are
valid is the service's to say."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from engine.storage.bulk import chunked
from engine.storage.schema import CheckpointRow

Pair = tuple[str, str]
"""(promise id, scope)"""


def load(session: Session, pairs: Iterable[Pair]) -> dict[Pair, CheckpointRow]:
    found: dict[Pair, CheckpointRow] = {}
    for chunk in chunked(sorted(set(pairs))):
        rows = session.scalars(
            select(CheckpointRow).where(
                tuple_(CheckpointRow.promise_id, CheckpointRow.scope).in_(chunk)
            )
        )
        found.update(((row.promise_id, row.scope), row) for row in rows)
    return found


def save(
    session: Session, saved: dict[Pair, CheckpointRow], pair: Pair, columns: dict[str, Any] | None
) -> None:
    """Keep a checkpoint's ``columns`` for ``pair`` (``saved`` holds the rows :func:`load`
    found), or drop the pair's old one when ``columns`` is None."""
    row = saved.get(pair)
    if columns is None:
        if row is not None:
            session.delete(row)
            del saved[pair]
        return
    if row is None:
        saved[pair] = row = CheckpointRow(promise_id=pair[0], scope=pair[1], **columns)
        session.add(row)
        return
    for name, value in columns.items():
        setattr(row, name, value)


def forget(session: Session, pairs: Iterable[Pair]) -> None:
    """Drop the checkpoints of ``pairs``: their scopes start afresh next time."""
    for chunk in chunked(sorted(set(pairs))):
        session.execute(
            delete(CheckpointRow).where(
                tuple_(CheckpointRow.promise_id, CheckpointRow.scope).in_(chunk)
            )
        )


def forget_all(session: Session, keeping: Iterable[str] | None = None) -> None:
    """Drop every checkpoint, or those of promises not in ``keeping``."""
    query = delete(CheckpointRow)
    if keeping is not None:
        query = query.where(CheckpointRow.promise_id.not_in(sorted(keeping)))
    session.execute(query)
