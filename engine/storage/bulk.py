"""Bulk statements: one helper for chunking long IN lists and one for Core executemany
inserts (a replay stores millions of rows; an ORM unit of work per row would dominate).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, any_, bindparam, insert
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

_CHUNK = 500
_T = TypeVar("_T")


def chunked(items: Iterable[_T], size: int = _CHUNK) -> Iterator[list[_T]]:
    """``items`` in lists of at most ``size``: an IN list of each stays well under the
    databases' limits on bound parameters, however many values a caller has."""
    batch: list[_T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def insert_rows(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Core executemany: no ORM unit of work per row (a replay stores millions of rows)."""
    if rows:
        session.execute(insert(table), rows)


def among(session: Session, column: Any, values: list[Any]) -> ColumnElement[bool]:
    """``column IN (values)``; on PostgreSQL ``column = ANY(:array)``, one parameter: a
    statement with hundreds of placeholders is expanded by SQLAlchemy and parsed again by
    psycopg on every execution (its parse cache skips long statements)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)
