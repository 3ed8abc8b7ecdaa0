"""Commands for a promise repository: run its features (``promise test``) and start a new
promise from a template (``promise new``)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import PromiseDir, catalog_or_exit
from engine.authoring.reports import write_cucumber, write_junit
from engine.authoring.run import FeatureResult, ScenarioResult, feature_files, run_features
from engine.authoring.scaffold import Kind, scaffold
from engine.docs.features import features_dir
from engine.settings import Settings
from rules.loader import TEAMS_FILE
from rules.yaml_source import YamlDocument, read_yaml

_MARK = {"passed": "PASS", "failed": "FAIL", "undefined": "UNDEFINED"}


def _where(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _print_scenario(feature: FeatureResult, scenario: ScenarioResult) -> None:
    line = scenario.example_line or scenario.line
    typer.echo(f"  {_MARK[scenario.status]:<9} {scenario.name}  ({_where(feature.path)}:{line})")
    for result in scenario.steps:
        if result.status in ("failed", "undefined"):
            step = result.step
            typer.echo(f"      {_where(feature.path)}:{step.line}: {step.keyword} {step.text}")
            typer.echo(textwrap.indent(result.message or "", " " * 8))


def test(
    directory: PromiseDir = None,
    features: Annotated[
        Path | None,
        typer.Option(
            "--features",
            help="A feature file or folder [default: $PROMISE_FEATURES_DIR, else DIR/features, "
            "else the features folder beside DIR]",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("-k", "--name", help="Run only the scenarios whose name contains this."),
    ] = None,
    junit_xml: Annotated[
        Path | None, typer.Option("--junit-xml", help="Write a JUnit XML report here.")
    ] = None,
    cucumber_json: Annotated[
        Path | None,
        typer.Option(
            "--cucumber-json",
            help="Write a Cucumber JSON report here (`promise docs --results` reads it).",
        ),
    ] = None,
) -> None:
    """Run the Gherkin features of the catalog in DIR against it, with the shipped steps.

    Each scenario runs the real engine on a fresh SQLite database. Prints every scenario
    with PASS or FAIL; a failing step is shown at FILE:LINE with what it expected beside
    what the engine decided (state, times, evidence, alerts). A step no library step reads
    is UNDEFINED, with the nearest known steps. A feature is named after its promise:
    features/<promise-id>.feature. Exits 1 on any failure, undefined step, unreadable
    feature, or when there are no features at all.

    Example: `promise test promises/ --junit-xml reports/promises.xml`
    """
    settings = Settings()
    directory = directory or settings.dir
    catalog = catalog_or_exit(directory)
    where = features_dir(directory, features or settings.features_dir)
    paths = [where] if where.is_file() else feature_files(where) if where.is_dir() else []
    if not paths:
        typer.echo(
            f"no feature files in {where}: write <promise-id>.feature files there "
            "(`promise new` starts one)",
            err=True,
        )
        raise typer.Exit(1)
    current: list[Path] = []

    def show(feature: FeatureResult, scenario: ScenarioResult) -> None:
        if current[-1:] != [feature.path]:
            current.append(feature.path)
            typer.echo(f"{_where(feature.path)}: {feature.name}")
        _print_scenario(feature, scenario)

    results = run_features(catalog, paths, show, name)
    for feature in results:
        if feature.error is not None:
            typer.echo(f"ERROR {_where(feature.path)}:{feature.line}: {feature.error}")
    if junit_xml is not None:
        write_junit(results, junit_xml)
    if cucumber_json is not None:
        write_cucumber(results, cucumber_json)
    scenarios = [s for f in results for s in f.scenarios]
    counts = {s: sum(1 for x in scenarios if x.status == s) for s in _MARK}
    broken_files = sum(1 for f in results if f.error is not None)
    summary = f"{len(scenarios)} scenarios: " + ", ".join(
        f"{n} {status}" for status, n in counts.items() if n or status == "passed"
    )
    if broken_files:
        summary += f"; {broken_files} feature file(s) could not run"
    typer.echo(summary)
    if broken_files or counts["failed"] or counts["undefined"] or not scenarios:
        raise typer.Exit(1)


def _teams(catalog_dir: Path) -> list[str] | None:
    """The team keys of the catalog's teams.yaml; None when it has none (or unreadable)."""
    document = read_yaml(catalog_dir / TEAMS_FILE) if (catalog_dir / TEAMS_FILE).is_file() else None
    if not isinstance(document, YamlDocument) or not isinstance(document.data, dict):
        return None
    teams = document.data.get("teams")
    return list(teams) if isinstance(teams, dict) else None


def new(
    promise_id: Annotated[str, typer.Argument(help="The new promise's id, e.g. first-reply-4h.")],
    kind: Annotated[
        Kind, typer.Option("--kind", help="deadline (X within a time), never, or limit.")
    ],
    directory: PromiseDir = None,
    owner: Annotated[
        str | None,
        typer.Option(
            "--owner",
            help="The owning team [default: the first team of DIR/teams.yaml, else my-team]",
            show_default=False,
        ),
    ] = None,
    features: Annotated[
        Path | None,
        typer.Option(
            "--features",
            help="Where the feature goes [default: $PROMISE_FEATURES_DIR, else DIR/features, "
            "else the features folder beside DIR]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start a promise: write DIR/ID.yaml, commented, and its feature with one @kept and
    one @broken scenario (generic table steps), plus DIR/teams.yaml when DIR has none.

    The files pass `promise check --strict` and `promise test` as written; rename the
    record types and times in both, then run both again. Never overwrites a file.

    Example: `promise new first-reply-4h --kind deadline promises/`
    """
    settings = Settings()
    directory = directory or settings.dir
    teams = _teams(directory)
    owner = owner or (teams[0] if teams else "my-team")
    if teams is not None and owner not in teams:
        typer.echo(
            f"error: --owner: no team {owner!r} in {directory / TEAMS_FILE}; its teams: "
            + ", ".join(teams),
            err=True,
        )
        raise typer.Exit(1)
    where = features_dir(directory, features or settings.features_dir)
    try:
        files = scaffold(promise_id, kind, directory, where, owner).files
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {path}")
    typer.echo(
        f"next: edit them, then `promise check --strict {directory}` and `promise test {directory}`"
    )
