"""The living documentation of the promises: ``features/<promise-id>.feature``.

Feature files are read with the official Gherkin parser. This module

- lists a promise's scenarios (the dashboard's promise page),
- checks documentation coverage for ``promise check``: every promise has a feature with
  at least one ``@kept`` and one ``@broken`` scenario (tags on a scenario or on one of its
  Examples count; tags on the Feature do not),
- reads the results of the last test run from pytest-bdd's cucumber JSON, and
- renders the static documentation site (``promise docs``, and ``/ui/docs`` on the dashboard).

It reads files, so it lives in ``engine/``; ``rules/`` stays a pure compiler.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from gherkin.errors import CompositeParserException, ParserError
from gherkin.parser import Parser
from jinja2 import Environment, PackageLoader, select_autoescape

from rules.errors import Problem
from rules.loader import CALENDARS_FILE, TEAMS_FILE
from rules.models import Catalog, Promise
from rules.summary import summarise
from rules.yaml_source import YamlDocument, read_yaml

KEPT, BROKEN, EDGE = "kept", "broken", "edge"


# --- the model of a feature file ---------------------------------------------------------------


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


# --- results of the last test run ----------------------------------------------------------------

Status = Literal["passed", "failed", "skipped", "not run"]


@dataclass(frozen=True)
class Result:
    """A scenario's result in the last run; for an outline, one status per example run."""

    status: Status
    runs: tuple[Status, ...] = ()
    message: str | None = None


@dataclass(frozen=True)
class Results:
    """Results per (promise id, scenario line), from pytest-bdd's cucumber JSON."""

    source: Path | None = None
    ran_at: datetime | None = None
    by_scenario: Mapping[tuple[str, int], Result] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return self.ran_at is not None

    def of(self, promise_id: str, scenario: Scenario) -> Result:
        return self.by_scenario.get((promise_id, scenario.line), Result("not run"))


def load_results(path: Path | None) -> Results:
    """The last run's results; empty ("not run yet") when the file is missing or unreadable."""
    if path is None or not Path(path).is_file():
        return Results(path)
    try:
        features = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Results(path)
    runs: dict[tuple[str, int], list[tuple[Status, str | None]]] = {}
    for feature in features if isinstance(features, list) else []:
        promise_id = Path(str(feature.get("uri", ""))).stem
        for element in feature.get("elements", []):
            statuses = [s.get("result", {}) for s in element.get("steps", [])]
            status: Status = "passed"
            message = None
            for result in statuses:
                if result.get("status") == "failed":
                    status, message = "failed", result.get("error_message") or None
                    break
                if result.get("status") == "skipped":
                    status = "skipped"
            runs.setdefault((promise_id, int(element.get("line", 0))), []).append((status, message))
    by_scenario = {}
    for key, found in runs.items():
        statuses = tuple(s for s, _ in found)
        overall: Status = (
            "failed" if "failed" in statuses else "skipped" if "skipped" in statuses else "passed"
        )
        message = next((m for _, m in found if m), None)
        by_scenario[key] = Result(overall, statuses, message)
    ran_at = datetime.fromtimestamp(Path(path).stat().st_mtime, UTC)
    return Results(Path(path), ran_at, by_scenario)


# --- the documentation site ----------------------------------------------------------------------

_env = Environment(
    loader=PackageLoader("engine", "templates/docs"),
    autoescape=select_autoescape(enabled_extensions=("html", "html.j2")),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["segment"] = lambda s: quote(str(s), safe="")


@dataclass(frozen=True)
class Links:
    """How pages link to each other: relative files for the static site, routes on the
    dashboard."""

    root: str
    suffix: str
    home: str

    def index(self) -> str:
        return self.home

    def promise(self, promise_id: str) -> str:
        return f"{self.root}promises/{quote(promise_id, safe='')}{self.suffix}"

    def team(self, team: str) -> str:
        return f"{self.root}teams/{quote(team, safe='')}{self.suffix}"

    def feature(self, promise_id: str) -> str:
        return f"{self.root}features/{quote(promise_id, safe='')}.feature"


STATIC_TOP = Links("", ".html", "index.html")
STATIC_NESTED = Links("../", ".html", "../index.html")


@dataclass(frozen=True)
class PromiseDoc:
    promise: Promise
    summary: str
    feature: Feature | None
    problem: str | None
    results: list[tuple[Scenario, Result]]

    @property
    def counts(self) -> dict[str, int]:
        counts = {"passed": 0, "failed": 0, "skipped": 0, "not run": 0}
        for _, result in self.results:
            counts[result.status] += 1
        return counts


def document(catalog: Catalog, features_dir: Path, results: Results) -> list[PromiseDoc]:
    docs = []
    for promise in catalog.promises.values():
        feature, problem = None, None
        path = feature_path(features_dir, promise.id)
        if path.is_file():
            try:
                feature = read_feature(path)
            except FeatureError as exc:
                problem = str(exc)
        else:
            problem = f"There is no {path.name} yet."
        scenarios_ = feature.scenarios if feature else ()
        docs.append(
            PromiseDoc(
                promise=promise,
                summary=summarise(promise, catalog.calendar_for(promise)),
                feature=feature,
                problem=problem,
                results=[(s, results.of(promise.id, s)) for s in scenarios_],
            )
        )
    return docs


def render_index(catalog: Catalog, features_dir: Path, results: Results, links: Links) -> str:
    return _env.get_template("index.html.j2").render(
        catalog=catalog, docs=document(catalog, features_dir, results), results=results, links=links
    )


def render_promise(
    catalog: Catalog, features_dir: Path, results: Results, links: Links, promise_id: str
) -> str | None:
    doc = next(
        (d for d in document(catalog, features_dir, results) if d.promise.id == promise_id), None
    )
    if doc is None:
        return None
    team = catalog.teams.get(doc.promise.owner)
    return _env.get_template("promise.html.j2").render(
        catalog=catalog, doc=doc, team=team, results=results, links=links
    )


def render_team(
    catalog: Catalog, features_dir: Path, results: Results, links: Links, team_id: str
) -> str | None:
    team = catalog.teams.get(team_id)
    if team is None:
        return None
    docs = [d for d in document(catalog, features_dir, results) if d.promise.owner == team_id]
    return _env.get_template("team.html.j2").render(
        catalog=catalog, team=team, docs=docs, results=results, links=links
    )


def build_site(catalog: Catalog, features_dir: Path, results: Results, out: Path) -> list[Path]:
    """Write the static site into ``out``; returns the files written."""
    out = Path(out)
    written: list[Path] = []

    def write(relative: str, text: str) -> None:
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)

    write("index.html", render_index(catalog, features_dir, results, STATIC_TOP))
    for promise_id in catalog.promises:
        page = render_promise(catalog, features_dir, results, STATIC_NESTED, promise_id)
        write(f"promises/{promise_id}.html", page or "")
        source = feature_path(features_dir, promise_id)
        if source.is_file():
            (out / "features").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, out / "features" / source.name)
            written.append(out / "features" / source.name)
    teams = {p.owner for p in catalog.promises.values()} | set(catalog.teams)
    for team_id in sorted(teams):
        page = render_team(catalog, features_dir, results, STATIC_NESTED, team_id)
        if page is not None:
            write(f"teams/{team_id}.html", page)
    return written
