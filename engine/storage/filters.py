"""The optional equality filters of a listing (outcomes, alerts), applied in SQL."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select

T = TypeVar("T", bound=tuple[Any, ...])


def where_given(
    query: Select[T], filters: Iterable[tuple[ColumnElement[Any], object | None]]
) -> Select[T]:
    """``query`` narrowed to the rows whose column equals each value given; a value of None
    was not asked for and narrows nothing."""
    return query.where(*(column == value for column, value in filters if value is not None))
