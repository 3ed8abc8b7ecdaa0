"""Breach reports for a team: attainment and error budget, weekly trend, every breach with its
evidence explained in plain words, what is at risk now and what drives the breaches.

Reports are built as plain dataclasses (so the CLI, the API and the dashboard share them);
:mod:`engine.reading.reports.render` turns them into HTML, markdown or CSV.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine import outcomes
from engine.alerting import status as alerts
from engine.alerting.outbox import BACKFILLED
from engine.alerting.status import Alert
from engine.errors import NotFound
from engine.explain import explain
from engine.reading.period import DEFAULT_BOUNDS, Bounds
from engine.reading.reports.trend import WeekPoint, decided_in, weekly_trend
from engine.records import Interaction
from engine.storage import outcome_table, record_table
from engine.storage.schema import AlertRow, OutcomeRow
from rules.models import (
    Catalog,
    Promise,
)

# --- the report --------------------------------------------------------------------------------


class UnknownTeam(NotFound):
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
    """Where the explanations' times are given: ``Catalog.timezone_for`` the promise."""
    kept: int
    broken: int
    trend: list[WeekPoint]
    breaches: list[Breach]
    """The first breaches of the period, at most ``Bounds.max_rows``."""

    @property
    def not_shown(self) -> int:
        """Breaches in the period beyond those listed."""
        return self.broken - len(self.breaches)

    @property
    def decided(self) -> int:
        return self.kept + self.broken

    @property
    def attainment(self) -> float | None:
        return outcomes.attainment(self.kept, self.broken)

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
    burning: list[Alert] = field(default_factory=list)
    """Objective (burn-rate) alerts open now: promises on course to miss their objective."""
    at_risk_not_shown: int = 0
    """Outcomes at risk now beyond those listed."""
    backfilled: int = 0
    """Breaches decided in the period that raised no alert: backfilled history, older than
    PROMISE_BACKFILL_ALERT_WINDOW when it was loaded."""

    @property
    def breaches(self) -> list[Breach]:
        return [b for p in self.promises for b in p.breaches]

    @property
    def not_shown(self) -> int:
        """Breaches counted in the figures but not listed (the row bound)."""
        return sum(p.not_shown for p in self.promises)


def build_report(
    sessions: sessionmaker[Session],
    catalog: Catalog,
    team: str,
    since: datetime | None = None,
    until: datetime | None = None,
    top: int = 5,
    bounds: Bounds = DEFAULT_BOUNDS,
) -> Report:
    """The report on ``team``'s promises over outcomes decided in [since, until): figures
    and drivers over every outcome, lists of at most ``bounds.max_rows`` rows."""
    if team not in catalog.teams:
        raise UnknownTeam(team, sorted(catalog.teams))
    owned = sorted((p for p in catalog.promises.values() if p.owner == team), key=lambda p: p.id)
    ids = [p.id for p in owned]
    with sessions() as session:
        counts = _decided_counts(session, ids, since, until)
        broken = [row for i in ids for row in _broken(session, i, since, until, bounds.max_rows)]
        risky, risky_total = _at_risk(session, ids, bounds.max_rows)
        records = record_table.records_by_id(session, [r for row in broken for r in row.evidence])
        by_channel, acting = _drivers(session, ids, since, until)
        deliveries = alerts.delivery_counts(session, team, since, until)
        dead_alerts = alerts.dead(session, team)
        burning = alerts.burning(session, team)
        backfilled = _backfilled(session, ids, since, until)
    zones = {p.id: catalog.timezone_for(p) for p in owned}
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
            trend=weekly_trend(
                sessions, promise=p.id, since=since, until=until, max_weeks=bounds.max_weeks
            ),
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
        by_channel=_top(by_channel, top),
        by_team=_top(Counter(team for team, _ in acting), top),
        by_agent=_top(Counter(agent for _, agent in acting), top),
        deliveries=deliveries,
        dead_alerts=dead_alerts,
        burning=burning,
        at_risk_not_shown=risky_total - len(risky),
        backfilled=backfilled,
    )


def _decided_counts(
    session: Session, ids: list[str], since: datetime | None, until: datetime | None
) -> dict[tuple[str, str], int]:
    query = decided_in(
        select(OutcomeRow.promise_id, OutcomeRow.state, func.count())
        .where(OutcomeRow.promise_id.in_(ids), OutcomeRow.state.in_(("kept", "broken")))
        .group_by(OutcomeRow.promise_id, OutcomeRow.state),
        since,
        until,
    )
    return {(promise, state): n for promise, state, n in session.execute(query)}


def _broken(
    session: Session, promise: str, since: datetime | None, until: datetime | None, limit: int
) -> list[OutcomeRow]:
    """The first ``limit`` breaches of one promise decided in the period."""
    query = select(OutcomeRow).where(OutcomeRow.promise_id == promise, OutcomeRow.state == "broken")
    query = decided_in(query, since, until).order_by(OutcomeRow.decided_at, OutcomeRow.id)
    return list(session.scalars(query.limit(limit)))


def _backfilled(
    session: Session, ids: list[str], since: datetime | None, until: datetime | None
) -> int:
    """Breaches of the period whose alert was not sent because they were backfilled history."""
    held_back = (
        select(AlertRow.id)
        .where(
            AlertRow.kind == BACKFILLED,
            AlertRow.promise_id == OutcomeRow.promise_id,
            AlertRow.outcome_key == OutcomeRow.key,
        )
        .exists()
    )
    query = select(func.count()).where(
        OutcomeRow.promise_id.in_(ids), OutcomeRow.state == "broken", held_back
    )
    return session.scalar(decided_in(query, since, until)) or 0


def _drivers(
    session: Session, ids: list[str], since: datetime | None, until: datetime | None
) -> tuple[Counter[str | None], list[tuple[str | None, str | None]]]:
    """Over every breach of the period, listed or not: breaches per opening channel (counted
    by the database), and the team and agent of the record that decided each."""
    broken = OutcomeRow.promise_id.in_(ids), OutcomeRow.state == "broken"
    channels = decided_in(
        select(OutcomeRow.channel, func.count()).where(*broken).group_by(OutcomeRow.channel),
        since,
        until,
    )
    by_channel = Counter({channel: n for channel, n in session.execute(channels)})
    deciding = [
        evidence[-1] if evidence else None
        for evidence in session.scalars(
            decided_in(select(OutcomeRow.evidence).where(*broken), since, until)
        )
    ]
    who = record_table.teams_and_agents(session, [i for i in deciding if i is not None])
    return by_channel, [who.get(i, (None, None)) if i else (None, None) for i in deciding]


def _at_risk(session: Session, ids: list[str], limit: int) -> tuple[list[OutcomeRow], int]:
    """The first ``limit`` outcomes at risk now (soonest due first), and how many there are."""
    at_risk = OutcomeRow.promise_id.in_(ids), OutcomeRow.state == "at_risk"
    query = select(OutcomeRow).where(*at_risk).order_by(OutcomeRow.due_at, OutcomeRow.id)
    total = session.scalar(select(func.count()).select_from(OutcomeRow).where(*at_risk)) or 0
    return list(session.scalars(query.limit(limit))), total


def _top(counts: Counter[str | None], top: int) -> list[Driver]:
    named: Counter[str] = Counter()
    for name, n in counts.items():
        named[name or "(none)"] += n
    ranked = sorted(named.items(), key=lambda item: (-item[1], item[0]))
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
        explanation=explain(
            outcome_table.row_to_outcome(row), promise, ZoneInfo(zones[promise.id]), records
        ),
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
