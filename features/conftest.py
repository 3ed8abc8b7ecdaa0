"""pytest-bdd's binding of the shipped step library (``engine.authoring.steps``), so that
``pytest`` runs these features exactly as ``promise test promises`` does.

Each library step becomes a pytest-bdd step whose arguments are the ``world`` fixture (the
real engine over a fresh SQLite database, with the real ``promises/`` catalog), the step's
named groups and, for table steps, its data table. features/README.md lists every step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from inspect import Parameter, Signature
from pathlib import Path
from typing import Any

import pytest
from pytest_bdd import parsers, step

from engine.authoring.library import StepDef
from engine.authoring.run import LIMITS
from engine.authoring.steps import LIBRARY
from engine.authoring.world import Databases, World
from engine.service import PromiseService
from rules.loader import load_catalog
from rules.models import Catalog

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def promise_catalog() -> Catalog:
    """The real catalog: the features document what ships, never a copy."""
    return load_catalog(ROOT / "promises")


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Databases:
    return Databases(tmp_path_factory.mktemp("features"))


@pytest.fixture
def world(promise_catalog: Catalog, databases: Databases) -> Iterator[World]:
    with databases.fresh() as sessions:
        yield World(PromiseService(promise_catalog, sessions, limits=LIMITS))


def pytest_bdd_step_error(
    request: pytest.FixtureRequest,
    feature: Any,
    scenario: Any,
    step: Any,
    step_func: Callable[..., Any],
    step_func_args: dict[str, Any],
    exception: Exception,
) -> None:
    """A failing step names its text and place, and what the engine decided in the scenario."""
    if hasattr(exception, "add_note"):
        exception.add_note(
            f"in step: {step.keyword} {step.name} ({feature.rel_filename}:{step.line_number})"
        )
        if isinstance(exception, AssertionError) and "world" in step_func_args:
            exception.add_note(step_func_args["world"].snapshot())


def _bind(definition: StepDef) -> None:
    def run(world: World, datatable: list[list[str]] | None = None, **groups: Any) -> None:
        definition.function(world, groups, datatable)

    # pytest-bdd passes a step only the arguments its signature names: name every group.
    params = [Parameter("world", Parameter.POSITIONAL_OR_KEYWORD)]
    if definition.table:
        params.append(Parameter("datatable", Parameter.KEYWORD_ONLY, default=None))
    params += [
        Parameter(name, Parameter.KEYWORD_ONLY, default=None)
        for name in definition.pattern.groupindex
    ]
    run.__signature__ = Signature(params)  # type: ignore[attr-defined]
    run.__name__ = definition.function.__name__
    step(parsers.re(definition.pattern.pattern), stacklevel=2)(run)


for _definition in LIBRARY.steps:
    _bind(_definition)
