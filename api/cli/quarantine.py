"""``promise quarantine``: promises whose evaluation crashed, and their release."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli.common import sessions
from engine.settings import Settings

quarantine_app = typer.Typer(
    help="Promises whose evaluation crashed and that are not evaluated for now.",
    no_args_is_help=True,
)


@quarantine_app.command("list")
def quarantine_list() -> None:
    """List quarantined promise versions: id, version, since, reason. A worker quarantines
    a promise the rules core cannot compile, whose evaluation raises, or that killed it 3
    times in a row.

    Example: `promise quarantine list`
    """
    from engine.evaluation import quarantine

    with sessions(Settings().database_url)() as session:
        for held in quarantine.listed(session):
            since = f"{held.since:%Y-%m-%d %H:%M}Z"
            typer.echo(f"{held.promise_id}\t{held.version}\t{since}\t{held.reason}")


@quarantine_app.command("release")
def quarantine_release(
    promise_id: Annotated[str, typer.Argument(help="The promise's id.")],
) -> None:
    """Evaluate a quarantined promise again, once what made it crash is fixed; the scopes
    it skipped are evaluated first. (Loading a changed version of it does the same.)

    Example: `promise quarantine release ask-once`
    """
    from engine.evaluation import quarantine

    with sessions(Settings().database_url).begin() as session:
        released = quarantine.release(session, promise_id)
    if not released:
        typer.echo(f"error: promise {promise_id!r} is not quarantined", err=True)
        raise typer.Exit(1)
    typer.echo(f"released {promise_id}: the worker evaluates the scopes it skipped")
