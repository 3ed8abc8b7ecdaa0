"""Customers' data: ``promise customer export|erase`` and ``promise retention apply``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import exit_on_engine_error, runtime_or_exit
from engine.privacy import erasure, export, retention
from engine.settings import Settings

customer_app = typer.Typer(
    help="Customers' data: export everything held about one, or erase it.", no_args_is_help=True
)


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
    runtime = runtime_or_exit(Settings())
    document = export.export_customer(runtime.sessions, runtime.catalog, customer_id)
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
    with exit_on_engine_error():
        runtime = runtime_or_exit(settings)
        report = erasure.erase_customer(
            runtime.sessions,
            runtime.catalog,
            customer_id,
            reason=reason,
            actor="cli",
            key=settings.erasure_key,
        )
    counts = ", ".join(f"{name} {n}" for name, n in report.counts.items() if n)
    typer.echo(f"erasure {report.id}: {counts or 'nothing was held'}")


retention_app = typer.Typer(help="Delete records kept longer than needed.", no_args_is_help=True)


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
    runtime = runtime_or_exit(settings)
    report = retention.apply_retention(runtime.sessions, runtime.catalog, days, dry_run=dry_run)
    typer.echo(report.summary())
