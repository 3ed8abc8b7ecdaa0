"""The ``promise`` command: what rule authors and operators type.

Like the HTTP service, this is an edge: it parses arguments, calls ``rules`` and ``engine``,
and prints. Each subcommand's help ends with an example.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from rules.compiler import compile_promise
from rules.loader import check_directory, load_catalog

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
) -> None:
    """Validate every promise, team and calendar definition in DIR.

    Prints each problem as FILE:LINE: message and exits 1 if there is any error
    (or any warning, with --strict); exits 0 when the catalog is valid.

    Example: `promise check promises/`
    """
    result = check_directory(directory or default_promise_dir())
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


def _load(directory: Path | None):
    """The catalog, or the problems printed and exit 1."""
    try:
        return load_catalog(directory or default_promise_dir())
    except Exception as exc:
        from rules.errors import DefinitionError

        if not isinstance(exc, DefinitionError):
            raise
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
