"""Weekly attainment of a promise, and the chart geometry the report's inline SVG draws."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine import outcomes
from engine.reading.period import DEFAULT_BOUNDS
from engine.storage import outcome_table
from engine.storage.schema import OutcomeRow

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
        return outcomes.attainment(self.kept, self.broken)


def weekly_trend(
    sessions: sessionmaker[Session],
    *,
    promise: str | None = None,
    team: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    max_weeks: int = DEFAULT_BOUNDS.max_weeks,
) -> list[WeekPoint]:
    """Attainment per ISO week of outcomes decided in [since, until), one promise or team.

    Weeks without decisions are included (attainment None) so a chart's x axis is time:
    from the week of ``since`` (else the first decision) to the week before ``until`` (else
    the last decision), the latest ``max_weeks`` of them. The database counts per week.
    """
    with sessions() as session:
        week = outcome_table.decision_week(session)
        query = select(week, OutcomeRow.state, func.count()).where(
            OutcomeRow.state.in_(("kept", "broken"))
        )
        if promise is not None:
            query = query.where(OutcomeRow.promise_id == promise)
        if team is not None:
            query = query.where(OutcomeRow.owner == team)
        query = decided_in(query, since, until).group_by(week, OutcomeRow.state)
        counts = {(outcome_table.as_date(w), state): n for w, state, n in session.execute(query)}
    mondays = [monday for monday, _ in counts]
    first = _monday(since) if since is not None else min(mondays, default=None)
    last = (
        _monday(until - timedelta(microseconds=1))
        if until is not None
        else max(mondays, default=None)
    )
    if first is None or last is None:
        return []
    first = max(first, last - timedelta(weeks=max_weeks - 1))
    return [
        WeekPoint(
            outcomes.iso_week(monday),
            counts.get((monday, "kept"), 0),
            counts.get((monday, "broken"), 0),
        )
        for monday in _mondays(first, last)
    ]


def _monday(moment: datetime) -> date:
    day = moment.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def _mondays(first: date, last: date) -> list[date]:
    return [first + timedelta(weeks=n) for n in range((last - first).days // 7 + 1)]


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


def chart(points: list[WeekPoint], objective: float | None, width: int, height: int) -> Chart:
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


def decided_in(query: Any, since: datetime | None, until: datetime | None) -> Any:
    if since is not None:
        query = query.where(OutcomeRow.decided_at >= since)
    if until is not None:
        query = query.where(OutcomeRow.decided_at < until)
    return query
