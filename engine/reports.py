"""Breach reports for a team: attainment and error budget, weekly trend, every breach with its
evidence explained in plain words, what is at risk now and what drives the breaches.

Reports are built as plain dataclasses (so the CLI, the API and the dashboard share them) and
rendered with Jinja2 templates; interaction attributes are untrusted, so HTML is autoescaped.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine import alerts, store
from engine.alerts import Alert
from engine.records import Interaction
from engine.schema import OutcomeRow
from rules.models import (
    Catalog,
    Compare,
    Condition,
    DeadlinePromise,
    Equals,
    Exists,
    LimitPromise,
    Match,
    Matches,
    NeverPromise,
    Not,
    OneOf,
    Promise,
)

Format = Literal["html", "md", "csv"]
FORMATS: tuple[Format, ...] = ("html", "md", "csv")
MEDIA_TYPES: dict[Format, str] = {"html": "text/html", "md": "text/markdown", "csv": "text/csv"}

_env = Environment(
    loader=PackageLoader("engine", "templates/reports"),
    autoescape=select_autoescape(enabled_extensions=("html", "html.j2", "svg.j2")),
    trim_blocks=True,
    lstrip_blocks=True,
)


# --- weekly trend ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeekPoint:
    """Kept and broken outcomes decided in one ISO week (of ``decided_at`` in UTC)."""

    week: str
    """Like ``2024-W09``."""
    kept: int
    broken: int

    @property
    def attainment(self) -> float | None:
        decided = self.kept + self.broken
        return self.kept / decided if decided else None


def weekly_trend(
    sessions: sessionmaker[Session],
    *,
    promise: str | None = None,
    team: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[WeekPoint]:
    """Attainment per ISO week of outcomes decided in [since, until), one promise or team.

    Weeks without decisions are included (attainment None) so a chart's x axis is time:
    from the week of ``since`` (else the first decision) to the week before ``until`` (else
    the last decision).
    """
    query = select(OutcomeRow.decided_at, OutcomeRow.state).where(
        OutcomeRow.state.in_(("kept", "broken"))
    )
    if promise is not None:
        query = query.where(OutcomeRow.promise_id == promise)
    if team is not None:
        query = query.where(OutcomeRow.owner == team)
    query = _decided_in(query, since, until)
    counts: Counter[tuple[date, str]] = Counter()
    with sessions() as session:
        for decided, state in session.execute(query):
            counts[_monday(decided), state] += 1
    mondays = [monday for monday, _ in counts]
    first = _monday(since) if since is not None else min(mondays, default=None)
    last = (
        _monday(until - timedelta(microseconds=1))
        if until is not None
        else max(mondays, default=None)
    )
    if first is None or last is None:
        return []
    return [
        WeekPoint(_week_label(monday), counts[monday, "kept"], counts[monday, "broken"])
        for monday in _mondays(first, last)
    ]


def _monday(moment: datetime) -> date:
    day = moment.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def _mondays(first: date, last: date) -> list[date]:
    return [first + timedelta(weeks=n) for n in range((last - first).days // 7 + 1)]


def _week_label(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class Chart:
    """Geometry of a trend chart, computed here so the SVG template only draws."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    title: str
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str, str]]
    """x, label and SVG ``text-anchor`` (the ends are anchored inwards to stay in view)."""
    lines: list[str]
    """Polyline ``points``, one per run of weeks that have decisions."""
    dots: list[tuple[float, float, str]]
    objective_y: float | None
    objective_label: str


def _anchor(index: int, count: int) -> str:
    if count == 1:
        return "middle"
    return "start" if index == 0 else "end"


def trend_svg(
    points: list[WeekPoint], objective: float | None, width: int = 480, height: int = 120
) -> Markup:
    """An inline ``<svg>`` line chart of weekly attainment with the objective dashed.

    Hand-made (no JavaScript, no external assets) so a report is one self-contained file.
    """
    chart = _chart(points, objective, width, height)
    return Markup(_env.get_template("trend.svg.j2").module.trend(chart))  # type: ignore[attr-defined]


def _chart(points: list[WeekPoint], objective: float | None, width: int, height: int) -> Chart:
    left, right, top, bottom = 36, width - 8, 8, height - 18
    values = [p.attainment for p in points if p.attainment is not None]
    floor = min([*values, *([objective] if objective is not None else [])], default=0.0)
    low = max(0.0, min(0.9, math.floor(floor * 10 - 0.5) / 10))

    def x(index: int) -> float:
        step = (right - left) / max(len(points) - 1, 1)
        return round(left + index * step if len(points) > 1 else (left + right) / 2, 1)

    def y(value: float) -> float:
        return round(bottom - (value - low) / (1 - low) * (bottom - top), 1)

    lines: list[list[str]] = [[]]
    dots = []
    for index, point in enumerate(points):
        if point.attainment is None:
            lines.append([])
            continue
        lines[-1].append(f"{x(index)},{y(point.attainment)}")
        label = f"{point.week}: {point.attainment:.1%} ({point.kept} kept, {point.broken} broken)"
        dots.append((x(index), y(point.attainment), label))
    ends = {0, len(points) - 1} if points else set[int]()
    return Chart(
        width=width,
        height=height,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        title="Weekly attainment"
        + (f" against an objective of {objective:.1%}" if objective is not None else ""),
        y_ticks=[(y(low), f"{low:.0%}"), (y(1.0), "100%")],
        x_ticks=[(x(i), points[i].week, _anchor(i, len(points))) for i in sorted(ends)],
        lines=[" ".join(line) for line in lines if len(line) > 1],
        dots=dots,
        objective_y=y(objective) if objective is not None else None,
        objective_label=f"objective {objective:.1%}" if objective is not None else "",
    )


# --- the report --------------------------------------------------------------------------------


class UnknownTeam(LookupError):
    """A team the catalog does not define; the message names the known ones."""

    def __init__(self, team: str, known: list[str]) -> None:
        super().__init__(f"unknown team {team!r}: known teams are {', '.join(known)}")


@dataclass(frozen=True)
class EvidenceRecord:
    """An interaction record as stored; every text in it is untrusted input."""

    id: str
    occurred_at: datetime
    channel: str
    direction: str
    type: str
    team: str | None
    agent: str | None
    attributes: dict[str, Any]

    @property
    def attributes_json(self) -> str:
        return json.dumps(self.attributes, sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class Breach:
    outcome_id: int
    promise: str
    scope: str
    customer_id: str | None
    opened_at: datetime
    due_at: datetime | None
    decided_at: datetime | None
    channel: str | None
    """The channel of the record that opened the opportunity."""
    acting_team: str | None
    """Team and agent of the record that decided the breach (the last evidence record)."""
    agent: str | None
    evidence_ids: tuple[str, ...]
    evidence: tuple[EvidenceRecord, ...]
    explanation: str


@dataclass(frozen=True)
class Budget:
    """The error budget: breaches the objective allows over the decided outcomes."""

    allowed: float
    used: int

    @property
    def left(self) -> float:
        return round(self.allowed - self.used, 9)

    @property
    def left_share(self) -> float | None:
        """``left`` as a share of ``allowed``; negative once the budget is overspent."""
        return self.left / self.allowed if self.allowed else None


@dataclass(frozen=True)
class PromiseReport:
    id: str
    title: str
    kind: str
    objective: float | None
    timezone: str
    """Where the explanations' times are given: the calendar's zone, else UTC."""
    kept: int
    broken: int
    trend: list[WeekPoint]
    breaches: list[Breach]

    @property
    def decided(self) -> int:
        return self.kept + self.broken

    @property
    def attainment(self) -> float | None:
        return self.kept / self.decided if self.decided else None

    @property
    def budget(self) -> Budget | None:
        if self.objective is None:
            return None
        return Budget(round((1 - self.objective) * self.decided, 9), self.broken)


@dataclass(frozen=True)
class AtRisk:
    outcome_id: int
    promise: str
    scope: str
    customer_id: str | None
    opened_at: datetime
    due_at: datetime | None
    timezone: str


@dataclass(frozen=True)
class Driver:
    name: str
    breaches: int


@dataclass(frozen=True)
class Report:
    team: str
    team_name: str
    since: datetime | None
    until: datetime | None
    promises: list[PromiseReport]
    at_risk: list[AtRisk]
    by_channel: list[Driver]
    by_team: list[Driver]
    by_agent: list[Driver]
    deliveries: dict[str, int] = field(default_factory=dict)
    """The team's alert deliveries raised in the period, per status."""
    dead_alerts: list[Alert] = field(default_factory=list)
    """Alerts a route gave up on (whenever raised): they need someone to look."""

    @property
    def breaches(self) -> list[Breach]:
        return [b for p in self.promises for b in p.breaches]


def build_report(
    sessions: sessionmaker[Session],
    catalog: Catalog,
    team: str,
    since: datetime | None = None,
    until: datetime | None = None,
    top: int = 5,
) -> Report:
    """The report on ``team``'s promises over outcomes decided in [since, until)."""
    if team not in catalog.teams:
        raise UnknownTeam(team, sorted(catalog.teams))
    owned = sorted((p for p in catalog.promises.values() if p.owner == team), key=lambda p: p.id)
    ids = [p.id for p in owned]
    with sessions() as session:
        counts = _decided_counts(session, ids, since, until)
        broken = _broken(session, ids, since, until)
        risky = _at_risk(session, ids)
        records = store.records_by_id(session, [r for row in broken for r in row.evidence])
        deliveries = alerts.delivery_counts(session, team, since, until)
        dead_alerts = alerts.dead(session, team)
    zones = {p.id: _zone(catalog, p) for p in owned}
    breaches = [_breach(row, catalog.promises[row.promise_id], zones, records) for row in broken]
    promises = [
        PromiseReport(
            id=p.id,
            title=p.title,
            kind=p.kind,
            objective=p.objective,
            timezone=zones[p.id],
            kept=counts.get((p.id, "kept"), 0),
            broken=counts.get((p.id, "broken"), 0),
            trend=weekly_trend(sessions, promise=p.id, since=since, until=until),
            breaches=[b for b in breaches if b.promise == p.id],
        )
        for p in owned
    ]
    return Report(
        team=team,
        team_name=catalog.teams[team].name,
        since=since,
        until=until,
        promises=promises,
        at_risk=[
            AtRisk(
                r.id,
                r.promise_id,
                r.scope,
                r.customer_id,
                r.opened_at,
                r.due_at,
                zones[r.promise_id],
            )
            for r in risky
        ],
        by_channel=_top((b.channel for b in breaches), top),
        by_team=_top((b.acting_team for b in breaches), top),
        by_agent=_top((b.agent for b in breaches), top),
        deliveries=deliveries,
        dead_alerts=dead_alerts,
    )


def _decided_counts(
    session: Session, ids: list[str], since: datetime | None, until: datetime | None
) -> dict[tuple[str, str], int]:
    query = _decided_in(
        select(OutcomeRow.promise_id, OutcomeRow.state, func.count())
        .where(OutcomeRow.promise_id.in_(ids), OutcomeRow.state.in_(("kept", "broken")))
        .group_by(OutcomeRow.promise_id, OutcomeRow.state),
        since,
        until,
    )
    return {(promise, state): n for promise, state, n in session.execute(query)}


def _broken(
    session: Session, ids: list[str], since: datetime | None, until: datetime | None
) -> list[OutcomeRow]:
    query = select(OutcomeRow).where(OutcomeRow.promise_id.in_(ids), OutcomeRow.state == "broken")
    query = _decided_in(query, since, until).order_by(OutcomeRow.decided_at, OutcomeRow.id)
    return list(session.scalars(query))


def _decided_in(query: Any, since: datetime | None, until: datetime | None) -> Any:
    if since is not None:
        query = query.where(OutcomeRow.decided_at >= since)
    if until is not None:
        query = query.where(OutcomeRow.decided_at < until)
    return query


def _at_risk(session: Session, ids: list[str]) -> list[OutcomeRow]:
    query = (
        select(OutcomeRow)
        .where(OutcomeRow.promise_id.in_(ids), OutcomeRow.state == "at_risk")
        .order_by(OutcomeRow.due_at, OutcomeRow.id)
    )
    return list(session.scalars(query))


def _zone(catalog: Catalog, promise: Promise) -> str:
    calendar = catalog.calendar_for(promise)
    return str(getattr(calendar, "timezone", "UTC"))


def _top(names: Iterable[str | None], top: int) -> list[Driver]:
    counts = Counter(name or "(none)" for name in names)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [Driver(name, n) for name, n in ranked[:top]]


def _breach(
    row: OutcomeRow, promise: Promise, zones: dict[str, str], records: dict[str, Interaction]
) -> Breach:
    evidence = [records[i] for i in row.evidence if i in records]
    last = records.get(row.evidence[-1]) if row.evidence else None
    return Breach(
        outcome_id=row.id,
        promise=row.promise_id,
        scope=row.scope,
        customer_id=row.customer_id,
        opened_at=row.opened_at,
        due_at=row.due_at,
        decided_at=row.decided_at,
        channel=row.channel,
        acting_team=last.team if last else None,
        agent=last.agent if last else None,
        evidence_ids=tuple(row.evidence),
        evidence=tuple(_evidence(r) for r in evidence),
        explanation=_explain(row, promise, ZoneInfo(zones[promise.id]), records),
    )


def _evidence(record: Interaction) -> EvidenceRecord:
    return EvidenceRecord(
        id=record.id,
        occurred_at=record.occurred_at,
        channel=record.channel,
        direction=record.direction,
        type=record.type,
        team=record.team,
        agent=record.agent,
        attributes=record.attributes,
    )


# --- plain-language explanations ---------------------------------------------------------------


def _explain(
    row: OutcomeRow, promise: Promise, zone: ZoneInfo, records: dict[str, Interaction]
) -> str:
    missing = [i for i in row.evidence if i not in records]
    if missing or not row.evidence:
        return f"evidence records not found: {', '.join(missing) or 'none recorded'}"
    evidence = [records[i] for i in row.evidence]
    if isinstance(promise, DeadlinePromise):
        return _explain_deadline(row, promise, zone, evidence)
    if isinstance(promise, NeverPromise):
        return _explain_never(promise, zone, evidence)
    return _explain_limit(promise, zone, evidence)


def _explain_deadline(
    row: OutcomeRow, promise: DeadlinePromise, zone: ZoneInfo, evidence: list[Interaction]
) -> str:
    start, later = evidence[0], evidence[1:]
    cancels = [r for r in later if promise.cancel is not None and _holds(promise.cancel, r)]
    stops = [r for r in later if r not in cancels]
    hours = f"{_calendar_words(promise.calendar)} hours" if promise.calendar else "around the clock"
    parts = [f"{_happened(start)} {_when(start.occurred_at, zone)}"]
    if row.due_at is not None:
        parts.append(f"due {_when(row.due_at, zone)}, {hours}")
    if stops:
        stop = stops[0]
        late = f", {_span(stop.occurred_at - row.due_at)} late" if row.due_at else ""
        came = "first reply" if stop.type == "message" else _happened(stop)
        parts.append(f"{came} {_when(stop.occurred_at, zone, row.due_at)}{late}")
    elif row.decided_at is not None:
        parts.append(f"{_missing(promise.stop)} by {_when(row.decided_at, zone)}")
    parts += [f"closed by {_words(r.type)} {_when(r.occurred_at, zone)}" for r in cancels]
    return "; ".join(parts)


def _explain_never(promise: NeverPromise, zone: ZoneInfo, evidence: list[Interaction]) -> str:
    first, then = evidence[0], evidence[-1]
    fields = then.fields()
    items = ", ".join(str(fields[f]) for f in promise.same if f in fields) or "it"
    given = f"{items} given by {first.channel}{_to(first.team)} {_when(first.occurred_at, zone)}"
    asked = f"asked again by {then.channel}{_by(then.team)} {_when(then.occurred_at, zone)}"
    return f"{given}; {asked}"


def _explain_limit(promise: LimitPromise, zone: ZoneInfo, evidence: list[Interaction]) -> str:
    noun = _counted_noun(promise.count)
    counted = ", ".join(
        f"{_when(r.occurred_at, zone)} by {r.team or r.agent or r.channel}" for r in evidence
    )
    return f"{len(evidence)} {noun} (at most {promise.max} allowed): {counted}"


def _when(moment: datetime, zone: ZoneInfo, same_day_as: datetime | None = None) -> str:
    """``Fri 1 Mar 16:00``; only ``Mon 16:40`` when on the same local day as ``same_day_as``."""
    local = moment.astimezone(zone)
    if same_day_as is not None and same_day_as.astimezone(zone).date() == local.date():
        return f"{local:%a %H:%M}"
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def _span(delta: timedelta) -> str:
    minutes = max(0, round(delta.total_seconds() / 60))
    if minutes < 120:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} hours" + (f" {minutes} minutes" if minutes else "")
    days, hours = divmod(hours, 24)
    return f"{days} days" + (f" {hours} hours" if hours else "")


def _calendar_words(calendar_id: str) -> str:
    """``uk-office`` -> ``UK office``: short words read as abbreviations."""
    return " ".join(w.upper() if len(w) <= 2 else w for w in re.split(r"[-_ ]+", calendar_id))


def _words(name: str) -> str:
    return name.replace("_", " ")


def _happened(record: Interaction) -> str:
    """``email received``, ``chat sent`` or ``callback promised by phone``."""
    if record.type == "message":
        verb = {"inbound": "received", "outbound": "sent"}.get(record.direction, "noted")
        return f"{record.channel} {verb}"
    return f"{_words(record.type)} by {record.channel}"


def _missing(stop: Match) -> str:
    """``no reply``, ``not resolved`` or ``no reply, call or follow up``: the stop never came."""
    nouns = list(dict.fromkeys(_words(str(v)) for v in _values(stop, "type")))
    if len(nouns) == 1 and nouns[0].endswith("ed"):
        return f"not {nouns[0]}"
    nouns = ["reply" if n == "message" else n for n in nouns] or ["reply"]
    return "no " + (f"{', '.join(nouns[:-1])} or {nouns[-1]}" if len(nouns) > 1 else nouns[0])


def _counted_noun(count: Match) -> str:
    types = _values(count, "type")
    return f"{_words(str(types[0]))}s" if len(types) == 1 else "records"


def _values(match: Match, name: str) -> list[Any]:
    for field_name, condition in match.conditions:
        if field_name == name and isinstance(condition, Equals):
            return [condition.value]
        if field_name == name and isinstance(condition, OneOf):
            return list(condition.values)
    return []


def _to(team: str | None) -> str:
    return f" to {team}" if team else ""


def _by(team: str | None) -> str:
    return f" by {team}" if team else ""


def _holds(match: Match, record: Interaction) -> bool:
    """Whether ``record`` matches (docs/semantics.md "Matching"): tells a stop from a cancel."""
    fields = record.fields()
    return all(_condition_holds(c, fields.get(name)) for name, c in match.conditions)


def _condition_holds(condition: Condition, value: Any) -> bool:
    if isinstance(condition, Not):
        return not _condition_holds(condition.inner, value)
    if isinstance(condition, Exists):
        return (value is not None) == condition.present
    if value is None:
        return False
    if isinstance(condition, Equals):
        return value == condition.value
    if isinstance(condition, OneOf):
        return value in condition.values
    if isinstance(condition, Matches):
        return isinstance(value, str) and re.fullmatch(condition.source, value) is not None
    assert isinstance(condition, Compare)
    if condition.op == "ne":
        return value != condition.value
    try:
        return {
            "gte": value >= condition.value,
            "gt": value > condition.value,
            "lte": value <= condition.value,
            "lt": value < condition.value,
        }[condition.op]
    except TypeError:
        return False


# --- rendering ---------------------------------------------------------------------------------


def render(report: Report, fmt: Format) -> str:
    """The report as a self-contained HTML page, GitHub-flavoured markdown or CSV of breaches."""
    if fmt == "csv":
        return _csv(report)
    template = _env.get_template(f"report.{fmt}.j2")
    return template.render(report=report, trend_svg=trend_svg)


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
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for b in report.breaches:
        writer.writerow(
            {
                "promise": b.promise,
                "outcome_id": b.outcome_id,
                "customer_id": b.customer_id or "",
                "scope": b.scope,
                "opened_at": _iso(b.opened_at),
                "due_at": _iso(b.due_at),
                "decided_at": _iso(b.decided_at),
                "channel": b.channel or "",
                "acting_team": b.acting_team or "",
                "agent": b.agent or "",
                "explanation": b.explanation,
                "evidence_ids": " ".join(b.evidence_ids),
            }
        )
    return out.getvalue()


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat() if moment is not None else ""


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _number(value: float) -> str:
    """Budgets are fractions of a breach: ``0.25``, ``-1.75``, ``3``."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _local(moment: datetime | None, zone: str) -> str:
    return _when(moment, ZoneInfo(zone)) if moment is not None else "n/a"


def _md_cell(value: Any) -> str:
    """Text safe inside a markdown table cell: no pipes, newlines or raw HTML."""
    text = "" if value is None else str(value)
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split())


def _period(report: Report) -> str:
    def day(moment: datetime | None, open_end: str) -> str:
        if moment is None:
            return open_end
        utc = moment.astimezone(UTC)
        return f"{utc:%Y-%m-%d}" if utc.time() == datetime.min.time() else utc.isoformat()

    return f"{day(report.since, 'the beginning')} to {day(report.until, 'now')} (exclusive, UTC)"


_env.filters.update(number=_number, percent=_percent, local=_local, md=_md_cell, iso=_iso)
_env.globals.update(period=_period)
