"""The static documentation site of a catalog (``promise docs``, and ``/ui/docs``): one page
per promise with its scenarios and their last results.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from engine.docs.features import Feature, FeatureError, Scenario, feature_path, read_feature
from engine.docs.results import Result, Results
from rules.models import Catalog, Promise
from rules.summary import summarise

# --- the documentation site ----------------------------------------------------------------------

_env = Environment(
    loader=PackageLoader("engine.docs", "templates"),
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


def render_index(
    catalog: Catalog, features_dir: Path, results: Results, links: Links, *, header: str = ""
) -> str:
    """``header``: HTML put above each page, such as the dashboard's navigation (trusted)."""
    return _env.get_template("index.html.j2").render(
        catalog=catalog,
        docs=document(catalog, features_dir, results),
        results=results,
        links=links,
        header=Markup(header),
    )


def render_promise(
    catalog: Catalog,
    features_dir: Path,
    results: Results,
    links: Links,
    promise_id: str,
    *,
    header: str = "",
) -> str | None:
    doc = next(
        (d for d in document(catalog, features_dir, results) if d.promise.id == promise_id), None
    )
    if doc is None:
        return None
    team = catalog.teams.get(doc.promise.owner)
    return _env.get_template("promise.html.j2").render(
        catalog=catalog, doc=doc, team=team, results=results, links=links, header=Markup(header)
    )


def render_team(
    catalog: Catalog,
    features_dir: Path,
    results: Results,
    links: Links,
    team_id: str,
    *,
    header: str = "",
) -> str | None:
    team = catalog.teams.get(team_id)
    if team is None:
        return None
    docs = [d for d in document(catalog, features_dir, results) if d.promise.owner == team_id]
    return _env.get_template("team.html.j2").render(
        catalog=catalog, team=team, docs=docs, results=results, links=links, header=Markup(header)
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
