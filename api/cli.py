"""The ``promise`` command: what rule authors and operators type.

Like the HTTP service, this is an edge: it parses arguments, calls ``rules`` and ``engine``,
and prints. Each subcommand's help ends with an example.
"""

from __future__ import annotations

import json
import os
import signal
from datetime import UTC, date, datetime, time
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

from engine.docs import site
from engine.docs.features import coverage
from engine.docs.results import load_results
from engine.ingest.dedup import IngestResult
from engine.ingest.sources import BadLine
from engine.keys import KeyProblem, create_key, list_keys, revoke
from engine.outcomes import STATES
from engine.privacy import erasure, export, pseudonyms, retention
from engine.reading.reports import build, render
from engine.records import Interaction, RecordLimits
from engine.sandbox.replay import ReplayResult, load_records, replay
from engine.service import PromiseService
from engine.settings import Settings
from engine.storage.database import make_engine, migrate, session_factory
from rules.compiler import compile_promise
from rules.errors import DefinitionError
from rules.loader import check_directory, load_catalog
from rules.models import Catalog

app = typer.Typer(
    name="promise",
    help=(
        "Customer-promise compliance: write promises as YAML, check them, and evaluate "
        "interaction records against them.\n\n"
        "Start with: promise check promises/"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)


def default_promise_dir() -> Path:
    return Path(os.environ.get("PROMISE_DIR", "promises"))


PromiseDir = Annotated[
    Path | None,
    typer.Argument(
        help="Directory of promise YAML files [default: $PROMISE_DIR, else ./promises]",
        show_default=False,
    ),
]


@app.command()
def check(
    directory: PromiseDir = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Treat warnings as errors (use in CI).")
    ] = False,
    features: Annotated[
        Path | None,
        typer.Option(
            "--features",
            help="Living documentation to check for coverage [default: "
            "$PROMISE_FEATURES_DIR, else ./features]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Validate every promise, team and calendar definition in DIR.

    Prints each problem as FILE:LINE: message and exits 1 if there is any error
    (or any warning, with --strict); exits 0 when the catalog is valid. A promise
    without a feature file, or whose feature lacks a @kept or a @broken scenario, is
    a warning.

    Example: `promise check promises/`
    """
    result = check_directory(directory or default_promise_dir())
    if result.catalog is not None:
        features_dir = features or Settings().features_dir
        result.problems += coverage(
            result.catalog, directory or default_promise_dir(), features_dir
        )
    for problem in result.problems:
        typer.echo(str(problem))
    failed = result.errors or (strict and result.warnings)
    if failed:
        typer.echo(f"{len(result.errors)} error(s), {len(result.warnings)} warning(s)", err=True)
        raise typer.Exit(1)
    catalog = result.catalog
    assert catalog is not None  # no errors means the catalog loaded
    typer.echo(
        f"OK: {len(catalog.promises)} promises, {len(catalog.teams)} teams, "
        f"{len(catalog.calendars)} calendars, {len(result.warnings)} warning(s)",
        err=True,
    )


@app.command("compile")
def compile_(
    directory: PromiseDir = None,
    promise_id: Annotated[
        str | None, typer.Option("--promise", "-p", help="Only this promise's ruleset.")
    ] = None,
) -> None:
    """Print the durable-rules rulesets compiled from the promises in DIR, as JSON.

    For reviewing what the engine will run; the output is generated, never edited.

    Example: `promise compile promises/ --promise ask-once`
    """
    catalog = _load(directory)
    chosen = [p for p in catalog.promises.values() if promise_id in (None, p.id)]
    if not chosen:
        typer.echo(f"no promise '{promise_id}'; known: {', '.join(catalog.promises)}", err=True)
        raise typer.Exit(1)
    rulesets = {c.name: c.rules for c in map(compile_promise, chosen)}
    typer.echo(json.dumps(rulesets, indent=2, sort_keys=True))


@app.command("replay")
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
            "e.g. sqlite:///promise.db); records already there count too.",
        ),
    ] = None,
    alerts: Annotated[
        bool,
        typer.Option(
            help="With --db: queue alerts for at-risk and broken outcomes (--no-alerts "
            "backfills history without paging anyone)."
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
    catalog = _load(promises)
    clock = _parse_until(until) if until else None
    limits = RecordLimits.from_settings(Settings())
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
            result = _replay_into(db, catalog, records, clock, alerts)
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
    url: str, catalog: Catalog, records: list[Interaction], until: datetime | None, alerts: bool
) -> ReplayResult:
    """Store the records (idempotently) and evaluate everything the database holds."""
    engine = make_engine(url)
    migrate(engine)
    erasure_key = Settings().erasure_key  # erased record ids stay erased
    service = PromiseService(
        catalog, session_factory(engine), alerts=alerts, erasure_key=erasure_key
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


@app.command("import")
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
            help="Queue alerts for what the history breaks (off by default: an import "
            "backfills history nobody needs to be paged about)."
        ),
    ] = False,
) -> None:
    """Import CSV exports through a mapping into the database, then evaluate the promises.

    Idempotent: record ids come from the rows (the mapping's `id`), so importing the same
    file again stores nothing new and changes no outcome. Prints how many rows were read,
    mapped, skipped and rejected, and why (counts per reason), then the compliance table.

    Example: `promise import helpdesk.csv --mapping promises/examples/helpdesk/mapping.yaml
    --promises promises/examples/helpdesk --db sqlite:///promise.db`
    """
    import time as clock

    catalog = _load(promises)
    console = Console(stderr=True)
    started = clock.perf_counter()
    with _progress(console) as bar:
        reading = bar.add_task("reading rows", total=None)
        settings = Settings()
        limits = RecordLimits.from_settings(settings)
        records, _, rows = _mapped_records(files, mapping, bar, reading, limits)
        mapped_at = clock.perf_counter()
        engine = make_engine(db or settings.database_url)
        migrate(engine)
        service = PromiseService(
            catalog, session_factory(engine), alerts=alerts, erasure_key=settings.erasure_key
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
            if stored == len(records):  # then backfill evaluates everything
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


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    live: Annotated[
        bool,
        typer.Option(
            help="Advance the clock with the wall clock, so deadlines fall due without new records."
        ),
    ] = True,
    interval: Annotated[float, typer.Option(help="Worker poll interval, seconds.")] = 0.5,
) -> None:
    """Run the HTTP API, with an evaluation worker and an alert dispatcher process beside it
    (each restarted if it dies).

    Uses $PROMISE_DATABASE_URL (default: sqlite:///promise.db in this directory) and
    $PROMISE_DIR (default: ./promises). OpenAPI at /docs and /openapi.json.

    Example: `promise serve --port 8000`
    """
    import uvicorn

    from api.app import create_app
    from api.worker import Supervisor

    application = create_app(Settings())  # migrates and loads the catalog before the worker
    supervisors = [
        Supervisor("worker", "--interval", str(interval), "--live" if live else "--no-live"),
        Supervisor("dispatcher", "--interval", str(interval)),
    ]
    for supervisor in supervisors:
        supervisor.start()

    def reload_on_hangup(_signal: int, _frame: object) -> None:
        try:
            changed = application.state.engine.reload()
            typer.echo(f"reloaded promises; changed: {', '.join(changed) or 'none'}", err=True)
        except DefinitionError as exc:
            typer.echo(f"promise files are invalid; keeping the running promises:\n{exc}", err=True)

    signal.signal(signal.SIGHUP, reload_on_hangup)
    try:
        uvicorn.run(application, host=host, port=port, log_level="info")
    finally:
        for supervisor in supervisors:
            supervisor.stop()


@app.command()
def worker(
    live: Annotated[bool, typer.Option(help="Advance the clock with the wall clock.")] = True,
    interval: Annotated[float, typer.Option(help="Poll interval when idle, seconds.")] = 0.5,
    once: Annotated[bool, typer.Option("--once", help="Drain the queue, then exit.")] = False,
    batch: Annotated[int, typer.Option(min=1, help="Records per transaction.")] = 2_000,
) -> None:
    """Evaluate accepted records from the database queue (started by `promise serve`).

    Run several against one PostgreSQL database to share the work.

    Example: `promise worker --no-live --once`
    """
    import logging

    from api.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    evaluated = run_worker(Settings(), live=live, interval=interval, once=once, batch=batch)
    typer.echo(f"evaluated {evaluated} records", err=True)


@app.command()
def dispatcher(
    interval: Annotated[float, typer.Option(help="Poll interval when idle, seconds.")] = 0.5,
    once: Annotated[bool, typer.Option("--once", help="Send what is due now, then exit.")] = False,
) -> None:
    """Deliver queued alerts to the owning teams' routes (started by `promise serve`).

    Retries with exponential backoff ($PROMISE_ALERT_BACKOFF_SECONDS, doubling) and marks a
    delivery dead after $PROMISE_ALERT_MAX_ATTEMPTS; applies silences and digests from
    teams.yaml and the API. Webhook secrets and SMTP settings come from the environment.

    Example: `CC_WEBHOOK_SECRET=s3cret promise dispatcher --once`
    """
    import logging

    from api.worker import run_dispatcher

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    attempted = run_dispatcher(Settings(), interval=interval, once=once)
    typer.echo(f"attempted {attempted} deliveries", err=True)


keys_app = typer.Typer(
    help="Manage API keys (stored hashed; shown once, at creation).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")


def _sessions():
    engine = make_engine(Settings().database_url)
    migrate(engine)
    return session_factory(engine)


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
    try:
        key = create_key(
            _sessions(), name, [s.strip() for s in scopes.split(",") if s.strip()], team
        )
    except KeyProblem as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(key)


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke a key: it stops working at once.

    Example: `promise keys revoke crm`
    """
    try:
        revoke(_sessions(), name)
    except KeyProblem as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@keys_app.command("list")
def keys_list() -> None:
    """List keys: name, scopes, team, and whether revoked (never the keys themselves).

    Example: `promise keys list`
    """
    for name, scopes, team, revoked in list_keys(_sessions()):
        typer.echo(
            f"{name}\t{','.join(scopes)}\t{team or '-'}\t{'revoked' if revoked else 'active'}"
        )


customer_app = typer.Typer(
    help="Customers' data: export everything held about one, or erase it.", no_args_is_help=True
)
app.add_typer(customer_app, name="customer")


@customer_app.command("export")
def customer_export(
    customer_id: Annotated[str, typer.Argument(help="The customer's id.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of standard output.")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="json, or zip (one CSV file per kind).")
    ] = "json",
) -> None:
    """Export everything held about one customer: records, outcomes with evidence and
    revisions, alerts that named them, breach handling notes.

    Example: `promise customer export C-1 --format zip --out c-1.zip`
    """

    if fmt not in ("json", "zip"):
        raise typer.BadParameter("must be json or zip", param_hint="--format")
    document = export.export_customer(_sessions(), _load(Settings().dir), customer_id)
    data = (
        export.export_zip(document)
        if fmt == "zip"
        else (json.dumps(document, indent=2) + "\n").encode()
    )
    if out is None:
        typer.get_binary_stream("stdout").write(data)
    else:
        out.write_bytes(data)
        typer.echo(f"wrote {out} ({len(document['interactions'])} records)", err=True)


@customer_app.command("erase")
def customer_erase(
    customer_id: Annotated[str, typer.Argument(help="The customer's id.")],
    reason: Annotated[str, typer.Option(help="Why; kept in the erasure log.")],
) -> None:
    """Erase a customer: delete their records, pseudonymise their ids everywhere (keyed
    with $PROMISE_ERASURE_KEY), cancel their open opportunities; compliance stays.

    Example: `PROMISE_ERASURE_KEY=... promise customer erase C-1 --reason "customer request"`
    """

    settings = Settings()
    try:
        report = erasure.erase_customer(
            _sessions(),
            _load(settings.dir),
            customer_id,
            reason=reason,
            actor="cli",
            key=settings.erasure_key,
        )
    except pseudonyms.PrivacyError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    counts = ", ".join(f"{name} {n}" for name, n in report.counts.items() if n)
    typer.echo(f"erasure {report.id}: {counts or 'nothing was held'}")


quarantine_app = typer.Typer(
    help="Promises whose evaluation crashed and that are not evaluated for now.",
    no_args_is_help=True,
)
app.add_typer(quarantine_app, name="quarantine")


@quarantine_app.command("list")
def quarantine_list() -> None:
    """List quarantined promise versions: id, version, since, reason. A worker quarantines
    a promise whose evaluation raises, or that killed it 3 times in a row.

    Example: `promise quarantine list`
    """
    from engine.evaluation import quarantine

    with _sessions()() as session:
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

    with _sessions().begin() as session:
        released = quarantine.release(session, promise_id)
    if not released:
        typer.echo(f"error: promise {promise_id!r} is not quarantined", err=True)
        raise typer.Exit(1)
    typer.echo(f"released {promise_id}: the worker evaluates the scopes it skipped")


retention_app = typer.Typer(help="Delete records kept longer than needed.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")


@retention_app.command("apply")
def retention_apply(
    days: Annotated[
        int | None,
        typer.Option(min=1, help="Keep this many days [default: $PROMISE_RETENTION_DAYS]."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; delete nothing.")
    ] = False,
) -> None:
    """Delete records older than the retention period once no open outcome needs them;
    outcomes keep their verdicts, with evidence ids marked expired:<id>.

    Example: `promise retention apply --days 365 --dry-run`
    """

    settings = Settings()
    days = days or settings.retention_days
    if days is None:
        typer.echo("no retention period (set PROMISE_RETENTION_DAYS or --days): nothing removed")
        return
    report = retention.apply_retention(_sessions(), _load(settings.dir), days, dry_run=dry_run)
    typer.echo(report.summary())


@app.command()
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
    try:
        built = build.build_report(_sessions(), _load(settings.dir), team, start, end)
    except build.UnknownTeam as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    text = render.render(built, fmt)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out} ({len(built.breaches)} breaches)", err=True)


@app.command()
def docs(
    directory: PromiseDir = None,
    out: Annotated[
        Path, typer.Option("--out", help="Directory to write the site into (made if missing).")
    ] = Path("build/living-docs"),
    results: Annotated[
        Path | None,
        typer.Option(
            "--results",
            help="pytest-bdd cucumber JSON of the last test run [default: "
            "$PROMISE_DOCS_RESULTS, else .reports/cucumber.json]",
            show_default=False,
        ),
    ] = None,
    features: Annotated[
        Path | None,
        typer.Option(
            "--features",
            help="The feature files [default: $PROMISE_FEATURES_DIR, else ./features]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Build the living documentation as a static HTML site.

    An index, a page per promise (in plain words, its owner, its scenarios with their
    steps and examples, and each scenario's result in the last test run) and a page per
    team. Run `pytest` first for results; without them the pages say "not run yet".

    Example: `promise docs --out build/living-docs`
    """
    settings = Settings()
    catalog = _load(directory)
    found = load_results(results or settings.docs_results)
    written = site.build_site(catalog, features or settings.features_dir, found, out)
    state = f"results of {found.ran_at:%Y-%m-%d %H:%M} UTC" if found.ran_at else "not run yet"
    typer.echo(f"wrote {len(written)} files to {out} ({state}); open {out / 'index.html'}")


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


def summary_table(result: ReplayResult) -> Table:
    table = Table(title=f"{result.records} records, {len(result.rejected)} rejected")
    table.add_column("promise")
    for state in STATES:
        table.add_column(state.replace("_", " "), justify="right")
    table.add_column("compliance", justify="right")
    table.add_column("objective", justify="right")
    for pid, counts in result.summary().items():
        decided = counts["kept"] + counts["broken"]
        compliance = f"{100 * counts['kept'] / decided:.1f}%" if decided else "-"
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


def _load(directory: Path | None) -> Catalog:
    """The catalog, or its problems printed and exit 1."""
    try:
        return load_catalog(directory or default_promise_dir())
    except DefinitionError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


if __name__ == "__main__":
    app()
