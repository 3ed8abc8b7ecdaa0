"""Bulk statements: one helper for chunking long IN lists and one for executemany inserts
(a replay stores millions of rows; an ORM unit of work per row would dominate).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Index, any_, bindparam, insert
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


def insert_rows(session: Session, table: Any, rows: list[dict[str, Any]], **shared: Any) -> None:
    """Insert ``rows`` (dicts with the same keys), each with the ``shared`` column values too,
    in one executemany on the driver.

    Values are converted by each column type's own bind processor, as SQLAlchemy would,
    but column by column (a ``shared`` value once) and handed to the driver as prepared
    parameter sets: SQLAlchemy's per-row parameter handling was most of a bulk load's time
    (docs/PERFORMANCE.md). Columns left out get their scalar Python default, or NULL.
    """
    if not rows:
        return
    table = getattr(table, "__table__", table)
    session.flush()  # what the session holds goes first, as its own execute would do
    connection = session.connection()
    dialect = connection.dialect
    names = [*rows[0], *shared]
    compiled = insert(table).inline().compile(dialect=dialect, column_keys=names)
    keys = compiled.positiontup if dialect.positional else list(compiled.params)
    assert keys is not None
    columns: list[list[Any]] = []
    values: list[Any]
    for key in keys:
        column = table.c[key]
        if key in rows[0]:
            values = [row[key] for row in rows]
        elif key in shared:
            values = [shared[key]]
        else:  # a column the compiler added: it has a Python default
            assert column.default is not None and column.default.is_scalar, key
            values = [column.default.arg]
        process = column.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            values = [process(value) for value in values]
        columns.append(values if key in rows[0] else values * len(rows))
    parameters: list[Any] = list(zip(*columns, strict=True))
    if not dialect.positional:
        parameters = [dict(zip(keys, values, strict=True)) for values in parameters]
    connection.exec_driver_sql(str(compiled), parameters)


def _secondary(table: Any) -> list[Index]:
    """The indexes of ``table`` that only speed reads up (a unique one is a constraint)."""
    indexes = getattr(table, "__table__", table).indexes
    return sorted((i for i in indexes if not i.unique), key=lambda i: str(i.name))


def drop_indexes(session: Session, table: Any) -> None:
    """Drop the secondary indexes of ``table`` (those that exist) before a bulk load: each
    row would otherwise go into every index's B-tree at a random place, while building an
    index afterwards sorts once (docs/PERFORMANCE.md). The caller must
    :func:`build_indexes` again, also after a crash part-way."""
    for index in _secondary(table):
        index.drop(session.connection(), checkfirst=True)


def build_indexes(session: Session, table: Any) -> None:
    """Create the secondary indexes of ``table`` where missing, as models and migrations
    have them."""
    for index in _secondary(table):
        index.create(session.connection(), checkfirst=True)


def among(session: Session, column: Any, values: list[Any]) -> ColumnElement[bool]:
    """``column IN (values)``; on PostgreSQL ``column = ANY(:array)``, one parameter: a
    statement with hundreds of placeholders is expanded by SQLAlchemy and parsed again by
    psycopg on every execution (its parse cache skips long statements)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)
