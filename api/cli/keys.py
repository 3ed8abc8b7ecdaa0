"""``promise keys``: create, revoke and list API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from api.cli.common import catalog_or_exit, exit_on_engine_error, sessions
from engine.clock import now
from engine.keys import create_key, list_keys, revoke
from engine.settings import Settings
from rules.durations import parse_duration

keys_app = typer.Typer(
    help="Manage API keys (stored hashed; shown once, at creation).", no_args_is_help=True
)


def expiry(text: str | None) -> datetime | None:
    """``--expires``: a time with offset (2025-06-30T00:00:00Z) or a duration from now (90d)."""
    if text is None:
        return None
    try:
        return now() + parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a duration (e.g. 90d) nor an ISO 8601 time "
            "(e.g. 2025-06-30T00:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        raise typer.BadParameter("the time needs a UTC offset or Z, e.g. 2025-06-30T00:00:00Z")
    return moment


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="A name to recognise the key by, e.g. crm.")],
    scopes: Annotated[
        str,
        typer.Option(
            help="Comma-separated: ingest (send records), read (outcomes, reports, dashboard), "
            "metrics (scrape /metrics only), admin (everything, every team)."
        ),
    ],
    team: Annotated[
        str | None,
        typer.Option(
            help="Restrict a read key to this team of teams.yaml (not with admin or metrics)."
        ),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(help="When the key stops working: a duration (90d) or a time with offset."),
    ] = None,
) -> None:
    """Create a key and print it alone on stdout (it is never shown again).

    Example: `promise keys create crm --scopes ingest,read --team contact-centre --expires 90d`

    For Prometheus: `promise keys create prometheus --scopes metrics`
    """
    settings = Settings()
    teams = catalog_or_exit(settings.dir).teams if team else None
    with exit_on_engine_error():
        key = create_key(
            sessions(settings.database_url),
            name,
            [s.strip() for s in scopes.split(",") if s.strip()],
            team,
            teams=teams,
            expires_at=expiry(expires),
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
    """List keys: name, scopes, team, expiry and status (never the keys themselves).

    Example: `promise keys list`
    """
    for key in list_keys(sessions(Settings().database_url)):
        expires = key.expires_at.isoformat() if key.expires_at else "-"
        fields = [key.name, ",".join(key.scopes), key.team or "-", expires, key.status]
        typer.echo("\t".join(fields))
