"""``promise backtest``: what a draft catalog would change, judged over stored history, for
a pull request to show its impact (the command-line form of ``POST /promises/backtest``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from api.cli.common import catalog_or_exit, period_time, sessions
from engine.outcomes import STATES
from engine.sandbox.backtest import Impact, impact
from engine.settings import Settings

Format = Literal["table", "json", "md"]


def backtest(
    draft_dir: Annotated[
        Path, typer.Argument(help="The draft catalog: a promises directory, as in a branch.")
    ],
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="The database holding the history and current outcomes "
            "[default: $PROMISE_DATABASE_URL]",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--from", help="Count outcomes opened from this day (UTC) or ISO time."),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--to", help="... and before this one (exclusive).")
    ] = None,
    fmt: Annotated[
        Format, typer.Option("--format", help="table, json, or md (for a pull request).")
    ] = "table",
    examples: Annotated[int, typer.Option(help="Opportunity keys shown per change.")] = 3,
) -> None:
    """Judge a draft catalog over the stored history and print, per promise, what would
    change against the current outcomes: kept→broken, broken→kept, new and gone
    opportunities, with counts and examples. Nothing is stored and nobody is alerted.

    A promise the draft adds is a "new promise"; one with stored outcomes that the draft
    no longer has is "removed". Exits 1 when the draft is invalid (FILE:LINE problems).

    Example: `promise backtest ../branch/promises --db sqlite:///promise.db --format md`
    """
    start = period_time(since, "--from") if since else None
    end = period_time(until, "--to") if until else None
    if start and end and start >= end:
        raise typer.BadParameter("must be after --from", param_hint="--to")
    draft = catalog_or_exit(draft_dir)
    console = Console(stderr=True)
    with console.status("judging the draft over the stored history"):
        found = impact(draft, sessions(db or Settings().database_url), start, end)
    if fmt == "json":
        typer.echo(json.dumps([asdict(i) for i in found], indent=2, ensure_ascii=False))
    elif fmt == "md":
        typer.echo(markdown(found, examples))
    else:
        out = Console() if Console().is_terminal else Console(width=160)
        out.print(_table(found, examples))


def _counts(summary: dict[str, int]) -> str:
    return ", ".join(f"{summary[s]} {s.replace('_', ' ')}" for s in STATES if summary.get(s))


def _changes(
    found: Impact, examples: int, quote: Callable[[str], str] = lambda key: key
) -> list[str]:
    return [
        f"{name}: {len(keys)}"
        + (f" (e.g. {', '.join(map(quote, keys[:examples]))})" if examples else "")
        for name, keys in sorted(found.transitions.items(), key=lambda item: -len(item[1]))
    ]


def _code(text: str) -> str:
    """``text`` as a markdown code span, in a table cell: nothing in it renders (a key holds
    what senders wrote: customer ids, record ids)."""
    return "`" + text.replace("`", "'").replace("|", "\\|") + "`"


def _table(found: list[Impact], examples: int) -> Table:
    table = Table(title="what the draft would change")
    for column in ("promise", "status", "now", "with the draft", "changes"):
        table.add_column(column)
    for item in found:
        table.add_row(
            item.promise,
            item.status,
            _counts(item.current) or "-",
            _counts(item.draft) or "-",
            "\n".join(_changes(item, examples)) or "-",
        )
    return table


def markdown(found: list[Impact], examples: int) -> str:
    """A table for a pull request comment; ids are code spans, so nothing in them renders."""
    lines = [
        "| promise | status | now | with the draft | changes |",
        "|---|---|---|---|---|",
    ]
    for item in found:
        changes = "<br>".join(_changes(item, examples, _code))
        lines.append(
            f"| {_code(item.promise)} | {item.status} | {_counts(item.current) or '-'} | "
            f"{_counts(item.draft) or '-'} | {changes or '-'} |"
        )
    return "\n".join(lines)
