"""Reports as a self-contained HTML page, GitHub-flavoured markdown or CSV of breaches.

Interaction attributes are untrusted, so HTML (and the inline SVG) is autoescaped, every
value printed in markdown is escaped (:func:`_md_text`), and CSV cells that a spreadsheet
would run as formulas are neutralised (:mod:`engine.spreadsheet`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from engine.explain import when
from engine.reading.reports.build import Report
from engine.reading.reports.trend import WeekPoint, chart
from engine.spreadsheet import csv_text

Format = Literal["html", "md", "csv"]
FORMATS: tuple[Format, ...] = ("html", "md", "csv")
MEDIA_TYPES: dict[Format, str] = {"html": "text/html", "md": "text/markdown", "csv": "text/csv"}

_LOADER = PackageLoader("engine.reading.reports", "templates")
_env = Environment(
    loader=_LOADER,
    autoescape=select_autoescape(enabled_extensions=("html", "html.j2", "svg.j2")),
    trim_blocks=True,
    lstrip_blocks=True,
)


# --- rendering ---------------------------------------------------------------------------------


def render(report: Report, fmt: Format, *, header: str = "") -> str:
    """The report as a self-contained HTML page, GitHub-flavoured markdown or CSV of breaches.
    ``header``: HTML put above the HTML page, such as the dashboard's navigation (trusted)."""
    if fmt == "csv":
        return _csv(report)
    template = (_markdown if fmt == "md" else _env).get_template(f"report.{fmt}.j2")
    return template.render(report=report, trend_svg=trend_svg, header=Markup(header))


CSV_COLUMNS = (
    "promise",
    "outcome_id",
    "customer_id",
    "scope",
    "opened_at",
    "due_at",
    "decided_at",
    "channel",
    "acting_team",
    "agent",
    "explanation",
    "evidence_ids",
)


def _csv(report: Report) -> str:
    return csv_text(
        CSV_COLUMNS,
        (
            {
                "promise": b.promise,
                "outcome_id": b.outcome_id,
                "customer_id": b.customer_id,
                "scope": b.scope,
                "opened_at": _iso(b.opened_at),
                "due_at": _iso(b.due_at),
                "decided_at": _iso(b.decided_at),
                "channel": b.channel,
                "acting_team": b.acting_team,
                "agent": b.agent,
                "explanation": b.explanation,
                "evidence_ids": " ".join(b.evidence_ids),
            }
            for b in report.breaches
        ),
    )


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat() if moment is not None else ""


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _number(value: float) -> str:
    """Budgets are fractions of a breach: ``0.25``, ``-1.75``, ``3``."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _local(moment: datetime | None, zone: str) -> str:
    return when(moment, ZoneInfo(zone)) if moment is not None else "n/a"


_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MD_SYNTAX = re.compile(r"[\\`*_\[\]!~|]")
_LINE_BREAKS = re.compile(r"\s*[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]\s*")


def _md_text(value: Any) -> str:
    """Every value the markdown template prints (its ``finalize``), as literal text on one
    line: raw HTML as entities, and the characters of inline syntax (links and images,
    emphasis, code, table pipes) escaped, so ``![t](http://evil.example/x.png)`` is shown,
    never fetched. ``( ) # - + . :`` stay as they are, for the figures and times to read."""
    text = "" if value is None else str(value)
    text = _MD_SYNTAX.sub(lambda m: "\\" + m.group(), text)
    text = "".join(_MD_ENTITIES.get(c, c) for c in text)
    return _LINE_BREAKS.sub(" ", text)


def _period(report: Report) -> str:
    def day(moment: datetime | None, open_end: str) -> str:
        if moment is None:
            return open_end
        utc = moment.astimezone(UTC)
        return f"{utc:%Y-%m-%d}" if utc.time() == datetime.min.time() else utc.isoformat()

    return f"{day(report.since, 'the beginning')} to {day(report.until, 'now')} (exclusive, UTC)"


def trend_svg(
    points: list[WeekPoint], objective: float | None, width: int = 480, height: int = 120
) -> Markup:
    """An inline ``<svg>`` line chart of weekly attainment with the objective dashed.

    Hand-made (no JavaScript, no external assets) so a report is one self-contained file.
    """
    drawn = chart(points, objective, width, height)
    return Markup(_env.get_template("trend.svg.j2").module.trend(drawn))  # type: ignore[attr-defined]


_markdown = Environment(loader=_LOADER, finalize=_md_text, trim_blocks=True, lstrip_blocks=True)
"""Markdown has no autoescape: ``finalize`` escapes every printed value instead, so no value
of the report (a team, an agent, an attribute) can be forgotten."""
for environment in (_env, _markdown):
    environment.filters.update(number=_number, percent=_percent, local=_local, iso=_iso)
    environment.globals.update(period=_period)
