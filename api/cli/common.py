"""What several ``promise`` commands share: the promise-directory argument, how a command
opens the catalog and the database, and how it reports an engine error (on stderr, exit 1)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import PromiseEngineError
from engine.evaluation.core_check import check_catalog
from engine.runtime import Runtime, connect
from engine.settings import Settings
from rules.errors import DefinitionError
from rules.models import Catalog

PromiseDir = Annotated[
    Path | None,
    typer.Argument(
        help="Directory of promise YAML files [default: $PROMISE_DIR, else ./promises]",
        show_default=False,
    ),
]


def catalog_or_exit(directory: Path) -> Catalog:
    """The catalog as ``promise check`` accepts it, or its problems printed and exit 1."""
    result = check_catalog(directory)
    if result.catalog is None:
        typer.echo(str(DefinitionError(result.errors)), err=True)
        raise typer.Exit(1)
    return result.catalog


def runtime_or_exit(settings: Settings) -> Runtime:
    """The migrated database and the catalog of ``settings``, or the catalog's problems
    printed and exit 1."""
    try:
        return Runtime.open(settings)
    except DefinitionError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


def sessions(url: str) -> sessionmaker[Session]:
    """Sessions on the database at ``url``, migrated first."""
    return connect(url)[1]


@contextmanager
def exit_on_engine_error() -> Iterator[None]:
    """An engine error the user must hear about: ``error: <message>`` on stderr, exit 1."""
    try:
        yield
    except PromiseEngineError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def period_time(text: str, hint: str) -> datetime:
    """``YYYY-MM-DD`` is that day's UTC midnight; anything else needs a UTC offset."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither YYYY-MM-DD nor an ISO 8601 time", param_hint=hint
        ) from None
    if moment.tzinfo is None:
        raise typer.BadParameter(
            "give a UTC offset or Z, e.g. 2024-03-01T00:00:00Z, or a day", param_hint=hint
        )
    return moment
