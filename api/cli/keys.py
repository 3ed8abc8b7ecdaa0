"""``promise keys``: create, revoke and list API keys."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli.common import exit_on_engine_error, sessions
from engine.keys import create_key, list_keys, revoke
from engine.settings import Settings

keys_app = typer.Typer(
    help="Manage API keys (stored hashed; shown once, at creation).", no_args_is_help=True
)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="A name to recognise the key by, e.g. crm.")],
    scopes: Annotated[str, typer.Option(help="Comma-separated: ingest, read, admin.")],
    team: Annotated[
        str | None, typer.Option(help="Restrict a read key to this team's promises.")
    ] = None,
) -> None:
    """Create a key and print it alone on stdout (it is never shown again).

    Example: `promise keys create crm --scopes ingest,read --team contact-centre`
    """
    with exit_on_engine_error():
        key = create_key(
            sessions(Settings().database_url),
            name,
            [s.strip() for s in scopes.split(",") if s.strip()],
            team,
        )
    typer.echo(key)


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke a key: it stops working at once.

    Example: `promise keys revoke crm`
    """
    with exit_on_engine_error():
        revoke(sessions(Settings().database_url), name)


@keys_app.command("list")
def keys_list() -> None:
    """List keys: name, scopes, team, and whether revoked (never the keys themselves).

    Example: `promise keys list`
    """
    for name, scopes, team, revoked in list_keys(sessions(Settings().database_url)):
        typer.echo(
            f"{name}\t{','.join(scopes)}\t{team or '-'}\t{'revoked' if revoked else 'active'}"
        )
