"""Commands for rule authors: validate the catalog, print what it compiles to, build its
living documentation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import PromiseDir, catalog_or_exit
from engine.docs import site
from engine.docs.features import coverage, features_dir
from engine.docs.results import load_results
from engine.evaluation.core_check import check_catalog
from engine.settings import Settings
from rules.compiler import compile_promise


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
            "$PROMISE_FEATURES_DIR, else DIR/features, else the features folder beside DIR]",
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
    settings = Settings()
    directory = directory or settings.dir
    result = check_catalog(directory)
    if result.catalog is not None:
        where = features_dir(directory, features or settings.features_dir)
        result.problems += coverage(result.catalog, directory, where)
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
    catalog = catalog_or_exit(directory or Settings().dir)
    chosen = [p for p in catalog.promises.values() if promise_id in (None, p.id)]
    if not chosen:
        typer.echo(f"no promise '{promise_id}'; known: {', '.join(catalog.promises)}", err=True)
        raise typer.Exit(1)
    rulesets = {c.name: c.rules for c in map(compile_promise, chosen)}
    typer.echo(json.dumps(rulesets, indent=2, sort_keys=True))


def docs(
    directory: PromiseDir = None,
    out: Annotated[
        Path, typer.Option("--out", help="Directory to write the site into (made if missing).")
    ] = Path("build/living-docs"),
    results: Annotated[
        Path | None,
        typer.Option(
            "--results",
            help="Cucumber JSON of the last feature run, as `promise test --cucumber-json "
            "FILE` writes it [default: $PROMISE_DOCS_RESULTS, else .reports/cucumber.json]",
            show_default=False,
        ),
    ] = None,
    features: Annotated[
        Path | None,
        typer.Option(
            "--features",
            help="The feature files [default: $PROMISE_FEATURES_DIR, else DIR/features, "
            "else the features folder beside DIR]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Build the living documentation as a static HTML site.

    An index, a page per promise (in plain words, its owner, its scenarios with their
    steps and examples, and each scenario's result in the last test run) and a page per
    team. For results, run `promise test DIR --cucumber-json .reports/cucumber.json` first;
    without them the pages say "not run yet".

    Example: `promise docs --out build/living-docs`
    """
    settings = Settings()
    directory = directory or settings.dir
    catalog = catalog_or_exit(directory)
    found = load_results(results or settings.docs_results)
    where = features_dir(directory, features or settings.features_dir)
    written = site.build_site(catalog, where, found, out)
    state = f"results of {found.ran_at:%Y-%m-%d %H:%M} UTC" if found.ran_at else "not run yet"
    typer.echo(f"wrote {len(written)} files to {out} ({state}); open {out / 'index.html'}")
