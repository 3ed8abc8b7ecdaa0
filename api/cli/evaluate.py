"""Commands that evaluate records from files: ``replay`` (in memory, or into a database)
and ``import`` (CSV exports through a mapping, into the database)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from api.cli.common import catalog_or_exit, sessions
from engine.ingest.dedup import IngestResult
from engine.ingest.sources import BadLine
from engine.outcomes import STATES, attainment
from engine.records import Interaction, RecordLimits
from engine.sandbox.in_memory import ReplayResult, load_records, replay
from engine.service import PromiseService
from engine.settings import Settings
from rules.models import Catalog

BACKFILL_ALERTS_HELP = (
    "Queue alerts for what is still open and for breaches decided within "
    "PROMISE_BACKFILL_ALERT_WINDOW (default 24h) of now (or of the latest record, if later); "
    "older breaches are "
    "history: stored and counted in reports as backfilled, not alerted. --no-alerts queues none."
)


def replay_(
    files: Annotated[list[Path], typer.Argument(help="JSONL or CSV files of interaction records.")],
    promises: Annotated[
        Path | None,
        typer.Option(
            "--promises",
            help="Promise directory [default: $PROMISE_DIR, else ./promises]",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="Advance the clock to this ISO 8601 time (with offset) after "
            "the last record, so deadlines due by then are decided.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document (outcomes and summary) only.")
    ] = False,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Store records and outcomes in this database (SQLAlchemy URL, "
            "e.g. sqlite:///promise.db); records already there count too, and only "
            "what the new records touch is evaluated again.",
        ),
    ] = None,
    alerts: Annotated[
        bool,
        typer.Option(
            help=BACKFILL_ALERTS_HELP.replace("Queue", "With --db: queue"),
        ),
    ] = True,
    mapping: Annotated[
        Path | None,
        typer.Option(
            "--mapping",
            help="Read the files as CSV exports mapped to records by this mapping file "
            "(docs/mapping.md); prints rows read, mapped and skipped on stderr.",
        ),
    ] = None,
) -> None:
    """Evaluate interaction records from files against the promises, in event time.

    Records may come in any order: they are evaluated by occurred_at (then id). Invalid
    records are reported on stderr with their line number and skipped. Prints a summary
    table per promise, or with --json the SPEC document with every outcome and its
    evidence. Exits 1 only when no record could be read.

    Example: `promise replay data/interactions.jsonl --until 2024-04-01T00:00:00Z --json`

    Example: `promise replay tickets.csv --mapping promises/examples/helpdesk/mapping.yaml
    --promises promises/examples/helpdesk`
    """
    settings = Settings()
    catalog = catalog_or_exit(promises or settings.dir)
    clock = _parse_until(until) if until else None
    limits = RecordLimits.from_settings(settings)
    console = Console(stderr=True)
    rejected: list[BadLine] = []

    def on_bad(bad: BadLine) -> None:
        rejected.append(bad)
        typer.echo(f"skipped {bad}", err=True)  # one unwrapped line per record

    with _progress(console) as bar:
        reading = bar.add_task("reading", total=None)
        if mapping is None:
            records, duplicates = load_records(
                files, on_bad, lambda n: bar.advance(reading, n), limits
            )
        else:
            records, duplicates, _ = _mapped_records(files, mapping, bar, reading, limits)
        if db is None:
            evaluating = bar.add_task("evaluating", total=len(records))
            result = replay(catalog, records, clock, lambda n: bar.advance(evaluating, n))
        else:
            bar.add_task("storing and evaluating", total=None)
            result = _replay_into(db, catalog, records, clock, alerts, settings)
    result.rejected, result.duplicates = rejected, duplicates
    if as_json:
        typer.echo(json.dumps(result.to_json()))
    else:
        out = Console()
        if not out.is_terminal:
            out = Console(width=160)
        out.print(summary_table(result))
        if duplicates:
            console.print(f"{duplicates} duplicate record(s) ignored")
    if not records:
        console.print("[red]no record could be read[/]")
        raise typer.Exit(1)


def _replay_into(
    url: str,
    catalog: Catalog,
    records: list[Interaction],
    until: datetime | None,
    alerts: bool,
    settings: Settings,
) -> ReplayResult:
    """Store the records (idempotently) and evaluate what they touch (everything, into an
    empty database), as history; with an erasure key, erased record ids stay erased."""
    service = PromiseService(
        catalog,
        sessions(url),
        alerts=alerts,
        erasure_key=settings.erasure_key,
        backfill_alert_window=settings.backfill_alert_window,
    )

    def on_answers(answers: list[IngestResult]) -> None:
        for answer in answers:
            if answer.status == "rejected":
                problems = "; ".join(map(str, answer.problems))
                typer.echo(f"skipped record {answer.id!r}: {problems}", err=True)

    service.backfill(records, until, on_answers)
    return ReplayResult(
        records=len(records), rejected=[], outcomes=service.outcomes(), catalog=catalog
    )


def _mapped_records(
    files: list[Path], mapping_file: Path, bar: Progress, task: TaskID, limits: RecordLimits
) -> tuple[list[Interaction], int, int]:
    """Records from CSV exports through a mapping, duplicates dropped, and rows read; the
    account of each file on stderr."""
    from engine.ingest.importer import import_files
    from engine.ingest.mapping import MappingError, load_mapping

    try:
        mapping = load_mapping(mapping_file)
        results = import_files(files, mapping, lambda n: bar.advance(task, n), limits)
    except MappingError as exc:
        bar.stop()
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        bar.stop()
        typer.echo(f"error: cannot read {exc.filename}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    for result in results:
        for line in result.lines():
            bar.console.print(line, markup=False, highlight=False, soft_wrap=True)
    records = sorted((r for result in results for r in result.records), key=lambda r: r.order)
    return records, sum(r.duplicates for r in results), sum(r.rows for r in results)


def import_(
    files: Annotated[list[Path], typer.Argument(help="CSV exports (ticket logs, CRM, ...).")],
    mapping: Annotated[
        Path,
        typer.Option(
            "--mapping", help="The mapping file: columns to record fields (docs/mapping.md)."
        ),
    ],
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database (SQLAlchemy URL) [default: $PROMISE_DATABASE_URL, else "
            "sqlite:///promise.db]",
            show_default=False,
        ),
    ] = None,
    promises: Annotated[
        Path | None,
        typer.Option(
            "--promises",
            help="Promises to evaluate the records with [default: $PROMISE_DIR, else ./promises]",
            show_default=False,
        ),
    ] = None,
    alerts: Annotated[
        bool,
        typer.Option(
            help=BACKFILL_ALERTS_HELP,
        ),
    ] = True,
) -> None:
    """Import CSV exports through a mapping into the database, then evaluate the promises.

    Idempotent: record ids come from the rows (the mapping's `id`), so importing the same
    file again stores nothing new and changes no outcome. Prints how many rows were read,
    mapped, skipped and rejected, and why (counts per reason), then the compliance table.

    Example: `promise import helpdesk.csv --mapping promises/examples/helpdesk/mapping.yaml
    --promises promises/examples/helpdesk --db sqlite:///promise.db`
    """
    import time as clock

    settings = Settings()
    catalog = catalog_or_exit(promises or settings.dir)
    console = Console(stderr=True)
    started = clock.perf_counter()
    with _progress(console) as bar:
        reading = bar.add_task("reading rows", total=None)
        records, _, rows = _mapped_records(
            files, mapping, bar, reading, RecordLimits.from_settings(settings)
        )
        mapped_at = clock.perf_counter()
        service = PromiseService(
            catalog,
            sessions(db or settings.database_url),
            alerts=alerts,
            erasure_key=settings.erasure_key,
            backfill_alert_window=settings.backfill_alert_window,
        )
        storing = bar.add_task("storing records", total=len(records))
        stored = 0

        def on_answers(answers: list[IngestResult]) -> None:
            nonlocal stored
            for answer in answers:
                if answer.status == "rejected":
                    problems = "; ".join(map(str, answer.problems))
                    bar.console.print(f"refused record {answer.id!r}: {problems}", markup=False)
            bar.advance(storing, len(answers))
            stored += len(answers)
            if stored == len(records):  # then backfill evaluates what they touch
                bar.add_task("evaluating", total=None)

        counts = service.backfill(records, on_answers=on_answers)
        result = ReplayResult(
            records=service.record_count(),
            rejected=[],
            outcomes=service.outcomes(),
            catalog=catalog,
        )
    elapsed = clock.perf_counter() - started
    console.print(
        f"stored {counts['accepted']} new records, {counts['duplicate']} already there, "
        f"{counts['rejected']} refused; {rows / max(mapped_at - started, 1e-9):,.0f} rows/s "
        f"read and mapped, {elapsed:.1f} s in all",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    out = Console() if Console().is_terminal else Console(width=160)
    out.print(summary_table(result))
    if not records:
        console.print("[red]no record could be read[/]")
        raise typer.Exit(1)


def summary_table(result: ReplayResult) -> Table:
    table = Table(title=f"{result.records} records, {len(result.rejected)} rejected")
    table.add_column("promise")
    for state in STATES:
        table.add_column(state.replace("_", " "), justify="right")
    table.add_column("compliance", justify="right")
    table.add_column("objective", justify="right")
    for pid, counts in result.summary().items():
        share = attainment(counts["kept"], counts["broken"])
        compliance = f"{100 * share:.1f}%" if share is not None else "-"
        objective = result.catalog.promises[pid].objective if result.catalog else None
        table.add_row(
            pid,
            *(str(counts[s]) for s in STATES),
            compliance,
            f"{100 * objective:.0f}%" if objective else "-",
        )
    return table


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def _parse_until(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 time", param_hint="--until"
        ) from None
    if moment.tzinfo is None:
        raise typer.BadParameter(
            "give a UTC offset or Z, e.g. 2024-04-01T00:00:00Z", param_hint="--until"
        )
    return moment
