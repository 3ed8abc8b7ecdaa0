"""The living documentation of the promises: ``features/<promise-id>.feature``.

Feature files are read with the official Gherkin parser. This module lists a promise's
scenarios (the dashboard's promise page) and checks documentation coverage for
``promise check``: every promise has a feature with at least one ``@kept`` and one
``@broken`` scenario (tags on a scenario or on one of its Examples count; tags on the
Feature do not).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gherkin.errors import CompositeParserException, ParserError
from gherkin.parser import Parser

from rules.errors import Problem
from rules.loader import CALENDARS_FILE, TEAMS_FILE
from rules.models import Catalog
from rules.yaml_source import YamlDocument, read_yaml

# --- the model of a feature file ---------------------------------------------------------------

KEPT, BROKEN, EDGE = "kept", "broken", "edge"


@dataclass(frozen=True)
class Step:
    keyword: str
    text: str
    line: int
    table: tuple[tuple[str, ...], ...] | None = None
    docstring: str | None = None


@dataclass(frozen=True)
class Examples:
    name: str
    line: int
    tags: tuple[str, ...]
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    row_lines: tuple[int, ...] = ()


@dataclass(frozen=True)
class Scenario:
    keyword: str
    title: str
    line: int = 0
    tags: tuple[str, ...] = ()
    steps: tuple[Step, ...] = ()
    examples: tuple[Examples, ...] = ()
    description: str = ""
    rule: str | None = None

    @property
    def all_tags(self) -> set[str]:
        """The scenario's own tags and those of its Examples (without the ``@``)."""
        return set(self.tags).union(*(e.tags for e in self.examples))


@dataclass(frozen=True)
class Feature:
    path: Path
    name: str
    line: int
    tags: tuple[str, ...]
    description: str
    background: tuple[Step, ...]
    scenarios: tuple[Scenario, ...]


class FeatureError(Exception):
    """A feature file that the Gherkin parser refuses; ``line`` is where it went wrong."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        self.path, self.line, self.message = path, line, message
        super().__init__(f"{path}:{line}: {message}")


def features_dir(catalog_dir: Path, given: Path | None = None) -> Path:
    """Where a catalog's living documentation is: ``given`` (``--features`` or
    $PROMISE_FEATURES_DIR), else ``features/`` inside the catalog, else the ``features/``
    folder beside it (this repository's layout: ``promises/`` next to ``features/``). When
    neither exists, the one inside the catalog: where a new author should write them."""
    if given is not None:
        return Path(given)
    inside = Path(catalog_dir) / "features"
    beside = Path(os.path.normpath(Path(catalog_dir) / os.pardir / "features"))
    return beside if beside.is_dir() and not inside.is_dir() else inside


def feature_path(features_dir: Path, promise_id: str) -> Path:
    return Path(features_dir) / f"{promise_id}.feature"


def read_feature(path: Path) -> Feature:
    """Parse one feature file; :class:`FeatureError` when it is not valid Gherkin."""
    try:
        document = Parser().parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise FeatureError(path, 1, f"cannot read feature file: {exc}") from None
    except (CompositeParserException, ParserError) as exc:
        errors = getattr(exc, "errors", None) or [exc]
        location = getattr(errors[0], "location", None) or {}
        message = str(errors[0]).splitlines()[-1].strip()
        raise FeatureError(
            path, location.get("line") or 1, f"not valid Gherkin: {message}"
        ) from None
    data = document.get("feature")
    if not data:
        raise FeatureError(path, 1, "no Feature: in this file")
    background: tuple[Step, ...] = ()
    found: list[Scenario] = []
    for child in data.get("children", []):
        if "background" in child:
            background = _steps(child["background"])
        elif "scenario" in child:
            found.append(_scenario(child["scenario"], None))
        elif "rule" in child:
            rule = child["rule"]
            for inner in rule.get("children", []):
                if "scenario" in inner:
                    found.append(_scenario(inner["scenario"], rule.get("name") or None))
    return Feature(
        path=path,
        name=data.get("name", ""),
        line=data["location"]["line"],
        tags=_tags(data),
        description=_text(data.get("description", "")),
        background=background,
        scenarios=tuple(found),
    )


def _tags(node: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(t["name"].removeprefix("@") for t in node.get("tags", []))


def _text(description: str) -> str:
    return "\n".join(line.strip() for line in description.strip().splitlines())


def _row(row: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(cell["value"] for cell in row["cells"])


def _steps(node: Mapping[str, Any]) -> tuple[Step, ...]:
    return tuple(
        Step(
            keyword=s["keyword"].strip(),
            text=s["text"],
            line=s["location"]["line"],
            table=tuple(_row(r) for r in s["dataTable"]["rows"]) if "dataTable" in s else None,
            docstring=s["docString"]["content"] if "docString" in s else None,
        )
        for s in node.get("steps", [])
    )


def _scenario(node: Mapping[str, Any], rule: str | None) -> Scenario:
    return Scenario(
        keyword=node["keyword"],
        title=node["name"],
        line=node["location"]["line"],
        tags=_tags(node),
        steps=_steps(node),
        examples=tuple(
            Examples(
                name=e.get("name", ""),
                line=e["location"]["line"],
                tags=_tags(e),
                header=_row(e["tableHeader"]) if e.get("tableHeader") else (),
                rows=tuple(_row(r) for r in e.get("tableBody", [])),
                row_lines=tuple(r["location"]["line"] for r in e.get("tableBody", [])),
            )
            for e in node.get("examples", [])
        ),
        description=_text(node.get("description", "")),
        rule=rule,
    )


def scenarios(features_dir: Path, promise_id: str) -> list[Scenario] | None:
    """The scenarios in file order, or ``None`` when the promise has no feature file (an
    unparsable file has none: ``promise check`` says why).

    ``promise_id`` must come from the catalog (ids are validated), never from a URL as is.
    """
    path = feature_path(features_dir, promise_id)
    if not path.is_file():
        return None
    try:
        return list(read_feature(path).scenarios)
    except FeatureError:
        return []


# --- documentation coverage (promise check) ----------------------------------------------------


def coverage(catalog: Catalog, catalog_dir: Path, features_dir: Path) -> list[Problem]:
    """A warning per promise whose living documentation is missing or incomplete.

    Missing feature: at the promise file's ``id`` line. Unparsable feature: where the parser
    stopped. No ``@kept`` or no ``@broken`` scenario: at the feature's ``Feature:`` line.
    Features of other promises are no concern here (one folder may serve several catalogs);
    ``promise test`` refuses them.
    """
    where = _id_lines(Path(catalog_dir), catalog)
    problems: list[Problem] = []
    for promise_id in catalog.promises:
        path = feature_path(features_dir, promise_id)
        if not path.is_file():
            file, line = where.get(promise_id, (Path(catalog_dir), 0))
            problems.append(
                _warning(
                    file,
                    line,
                    f"promise '{promise_id}' has no living documentation: write {path} with a "
                    "@kept and a @broken scenario",
                )
            )
            continue
        try:
            feature = read_feature(path)
        except FeatureError as exc:
            problems.append(_warning(exc.path, exc.line, exc.message))
            continue
        tags = set().union(*(s.all_tags for s in feature.scenarios))
        missing = [tag for tag in (KEPT, BROKEN) if tag not in tags]
        if missing:
            wanted = " and ".join(f"@{t}" for t in missing)
            problems.append(
                _warning(
                    path,
                    feature.line,
                    f"the feature of promise '{promise_id}' has no {wanted} scenario: tag a "
                    "scenario (or its Examples) that shows the promise "
                    + " and one that shows it ".join(missing),
                )
            )
        titles: set[str] = set()
        for scenario in feature.scenarios:
            if scenario.title in titles:
                problems.append(
                    _warning(
                        path,
                        scenario.line,
                        f"two scenarios are called {scenario.title!r}: pytest-bdd runs only one",
                    )
                )
            titles.add(scenario.title)
    return problems


def _warning(file: Path, line: int, message: str) -> Problem:
    return Problem(file, line, message, "warning")


def _id_lines(catalog_dir: Path, catalog: Catalog) -> dict[str, tuple[Path, int]]:
    """Where each promise's ``id`` is written in the catalog directory."""
    found: dict[str, tuple[Path, int]] = {}
    if not catalog_dir.is_dir():
        return found
    for file in sorted(catalog_dir.iterdir()):
        if file.suffix not in (".yaml", ".yml") or file.name in (TEAMS_FILE, CALENDARS_FILE):
            continue
        doc = read_yaml(file)
        if isinstance(doc, YamlDocument) and isinstance(doc.data, dict):
            promise_id = doc.data.get("id")
            if isinstance(promise_id, str) and promise_id in catalog.promises:
                found.setdefault(promise_id, (file, doc.line(("id",), at_key=True)))
    return found
