"""``promise test``: run a catalog's features against that catalog with the shipped steps.

The features are parsed with the official Gherkin parser (``engine.docs.features``, the
reader ``promise check`` and ``promise docs`` use), and the steps run here, in process,
rather than through a generated pytest plugin: every step result keeps its own file and
line, a mismatch keeps what was expected and what the engine decided as two texts, and the
author's repository needs no Python, conftest.py or marker registration. A Scenario Outline
runs once per Examples row, with ``<column>`` replaced in step texts and tables.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal

from engine.authoring.library import Mismatch, UndefinedStep
from engine.authoring.steps import LIBRARY
from engine.authoring.world import Databases, World
from engine.docs.features import Feature, FeatureError, Scenario, Step, read_feature
from engine.records import RecordLimits
from engine.service import PromiseService
from rules.models import Catalog

Status = Literal["passed", "failed", "undefined", "skipped"]

LIMITS = RecordLimits(max_future=timedelta(days=365 * 100))
"""A scenario may be set in any year: records are not checked against the wall clock."""


@dataclass
class StepResult:
    step: Step
    status: Status = "skipped"
    message: str | None = None
    seconds: float = 0.0


@dataclass
class ScenarioResult:
    feature: Path
    name: str
    line: int
    """The Scenario's line (results of one outline share it, as ``promise docs`` expects)."""
    tags: tuple[str, ...]
    steps: list[StepResult] = field(default_factory=list)
    example_line: int | None = None
    """The Examples row this run of an outline comes from."""

    @property
    def status(self) -> Status:
        for wanted in ("undefined", "failed"):
            if any(s.status == wanted for s in self.steps):
                return wanted  # type: ignore[return-value]
        return "passed"

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)


@dataclass
class FeatureResult:
    path: Path
    name: str = ""
    line: int = 1
    tags: tuple[str, ...] = ()
    scenarios: list[ScenarioResult] = field(default_factory=list)
    error: str | None = None
    """Why the feature could not run at all (not Gherkin, no such promise), at ``line``."""


def feature_files(features_dir: Path) -> list[Path]:
    return sorted(Path(features_dir).rglob("*.feature"))


def run_features(
    catalog: Catalog,
    paths: list[Path],
    on_scenario: Callable[[FeatureResult, ScenarioResult], None] = lambda f, s: None,
    name_filter: str | None = None,
) -> list[FeatureResult]:
    """Run every scenario of ``paths``, each on a fresh database; ``name_filter`` keeps the
    scenarios whose name contains it."""
    results = []
    with Databases.temporary() as databases:
        for path in paths:
            result = FeatureResult(path)
            results.append(result)
            try:
                feature = read_feature(path)
            except FeatureError as exc:
                result.line, result.error = exc.line, exc.message
                continue
            result.name, result.line, result.tags = feature.name, feature.line, feature.tags
            if path.stem not in catalog.promises:
                known = ", ".join(sorted(catalog.promises)) or "none"
                result.error = (
                    f"no promise {path.stem!r} in the catalog: a feature is named after the "
                    f"promise it documents (<promise-id>.feature); promises: {known}"
                )
                continue
            for scenario in runs(feature):
                if name_filter and name_filter.lower() not in scenario.name.lower():
                    continue
                with databases.fresh() as sessions:
                    world = World(PromiseService(catalog, sessions, limits=LIMITS))
                    run_scenario(world, scenario)
                result.scenarios.append(scenario)
                on_scenario(result, scenario)
    return results


def runs(feature: Feature) -> Iterator[ScenarioResult]:
    """Each scenario to run, an outline once per Examples row, with the background first."""
    for scenario in feature.scenarios:
        if not scenario.examples:
            yield _result(feature, scenario, scenario.title, scenario.tags, {}, None)
        for examples in scenario.examples:
            for row, line in zip(examples.rows, examples.row_lines, strict=True):
                values = dict(zip(examples.header, row, strict=True))
                shown = ", ".join(f"{k}={v}" for k, v in values.items())
                name = f"{scenario.title} [{shown}]"
                tags = (*scenario.tags, *examples.tags)
                yield _result(feature, scenario, name, tags, values, line)


def _result(
    feature: Feature,
    scenario: Scenario,
    name: str,
    tags: tuple[str, ...],
    values: dict[str, str],
    example_line: int | None,
) -> ScenarioResult:
    def fill(text: str) -> str:
        return re.sub(r"<([^<>]+)>", lambda m: values.get(m[1], m[0]), text)

    steps = [
        Step(
            s.keyword,
            fill(s.text),
            s.line,
            tuple(tuple(map(fill, row)) for row in s.table) if s.table else None,
            s.docstring,
        )
        for s in (*feature.background, *scenario.steps)
    ]
    return ScenarioResult(
        feature.path, name, scenario.line, tags, [StepResult(s) for s in steps], example_line
    )


def run_scenario(world: World, scenario: ScenarioResult) -> None:
    """Run the steps in order; after the first that fails, the others are skipped."""
    for result in scenario.steps:
        started = time.perf_counter()
        result.status, result.message = _run_step(world, result.step)
        result.seconds = time.perf_counter() - started
        if result.status != "passed":
            return


def _run_step(world: World, step: Step) -> tuple[Status, str | None]:
    try:
        definition, groups = LIBRARY.find(step.text)
        if step.table is not None and not definition.table:
            raise ValueError(f"this step takes no table; it is: {definition.template}")
        definition.function(world, groups, [list(r) for r in step.table or ()] or None)
    except UndefinedStep as exc:
        nearest = "\n".join(f"  {t}" for t in exc.suggestions)
        return "undefined", f"no step reads this text; the nearest known steps:\n{nearest}"
    except Mismatch as exc:
        return "failed", f"{exc}\n\neverything the engine decided:\n{world.snapshot()}"
    except ValueError as exc:
        return "failed", f"cannot run this step: {exc}"
    except Exception as exc:  # an engine error is this scenario's result, not the run's end
        return "failed", f"{type(exc).__name__}: {exc}"
    return "passed", None
