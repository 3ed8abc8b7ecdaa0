"""``promise report``: a team's breach report, as the API's ``GET /reports/{team}``."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import exit_on_engine_error, runtime_or_exit
from engine.reading.period import Bounds
from engine.reading.reports import build, render
from engine.settings import Settings


def report(
    team: Annotated[str, typer.Option(help="The team whose promises are reported on.")],
    since: Annotated[
        str, typer.Option("--from", help="First day (YYYY-MM-DD, UTC) or ISO 8601 time.")
    ],
    until: Annotated[
        str, typer.Option("--to", help="Day or ISO 8601 time the period ends (exclusive).")
    ],
    fmt: Annotated[
        render.Format, typer.Option("--format", help="html, md (markdown) or csv.")
    ] = "html",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of standard output.")
    ] = None,
) -> None:
    """Report a team's breaches over outcomes decided in [--from, --to).

    Per promise: attainment and error budget, a weekly trend, every breach with its
    evidence explained; then what is at risk now and the top breach drivers. Reads
    $PROMISE_DATABASE_URL and $PROMISE_DIR.

    Example: `promise report --team contact-centre --from 2024-03-01 --to 2024-04-01 --format md`
    """
    start, end = _report_time(since, "--from"), _report_time(until, "--to")
    if start >= end:
        raise typer.BadParameter("must be after --from", param_hint="--to")
    settings = Settings()
    runtime = runtime_or_exit(settings)
    with exit_on_engine_error():
        bounds = Bounds.from_settings(settings)
        built = build.build_report(
            runtime.sessions, runtime.catalog, team, start, end, bounds=bounds
        )
    text = render.render(built, fmt)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        more = f", {built.not_shown} more not shown" if built.not_shown else ""
        typer.echo(f"wrote {out} ({len(built.breaches)} breaches{more})", err=True)


def _report_time(text: str, hint: str) -> datetime:
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
