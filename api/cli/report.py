"""``promise report``: a team's breach report, as the API's ``GET /reports/{team}``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import exit_on_engine_error, period_time, runtime_or_exit
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
    start, end = period_time(since, "--from"), period_time(until, "--to")
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
