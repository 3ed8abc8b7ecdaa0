"""Read-side questions the API asks: outcomes, breaches, compliance, a customer's standing.

Filters, pagination and counting run in SQL (the week of a decision is computed per
database by :func:`engine.storage.outcome_table.decision_week`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.alerting.burn import Burn
from engine.evaluation import quarantine
from engine.outcomes import OPEN_STATES, State, attainment, iso_week
from engine.reading import breaches, objectives
from engine.reading.breaches import Handling
from engine.reading.objectives import Objective
from engine.storage import outcome_table, record_table, state_table
from engine.storage.filters import where_given
from engine.storage.paging import decode_cursor, encode_cursor
from engine.storage.schema import AlertRow, DeliveryRow, OutcomeRow, PromiseVersionRow
from rules.models import Catalog, Promise

GroupBy = Literal["promise", "team", "channel", "week"]


@dataclass(frozen=True)
class OutcomeFilter:
    promise: str | None = None
    team: str | None = None
    customer_id: str | None = None
    state: State | None = None
    since: datetime | None = None
    until: datetime | None = None
    scope: str | None = None
    """The scope value (a case id, a customer id, ... as the promise's ``scope`` names)."""
    case_id: str | None = None
    """Outcomes of the promises scoped by ``case_id`` in this case."""
    by_decision: bool = False
    """Bound ``since``/``until`` on ``decided_at`` (breaches) instead of ``opened_at``."""


@dataclass(frozen=True)
class StoredOutcome:
    """An outcome as stored, with its row id and owning team."""

    id: int
    team: str
    channel: str | None
    fields: dict[str, Any]
    handling: Handling | None = None


@dataclass(frozen=True)
class Revision:
    """A change of an outcome's verdict: from what to what, when and why."""

    old_state: str | None
    new_state: str | None
    reason: str
    changed_at: datetime
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True)
class Page:
    items: list[StoredOutcome]
    next_cursor: str | None


@dataclass(frozen=True)
class ComplianceRow:
    group: str
    kept: int
    broken: int
    objective: float | None

    @property
    def compliance(self) -> float | None:
        return attainment(self.kept, self.broken)


@dataclass(frozen=True)
class Standing:
    customer_id: str
    open: list[StoredOutcome] = field(default_factory=list)
    at_risk: list[StoredOutcome] = field(default_factory=list)
    recent_breaches: list[StoredOutcome] = field(default_factory=list)


class Queries:
    def __init__(self, catalog: Catalog, sessions: sessionmaker[Session]) -> None:
        self.catalog = catalog
        self.sessions = sessions

    def outcomes(self, where: OutcomeFilter, cursor: str | None = None, limit: int = 100) -> Page:
        query = self._filtered(where).order_by(OutcomeRow.id).limit(limit + 1)
        if cursor is not None:
            query = query.where(OutcomeRow.id > decode_cursor(cursor))
        with self.sessions() as session:
            rows = list(session.scalars(query))
            more = len(rows) > limit
            rows = rows[:limit]
            handled = breaches.latest(session, [r.id for r in rows if r.state == "broken"])
        return Page(
            [_stored(r, handled.get(r.id)) for r in rows],
            encode_cursor(rows[-1].id) if more and rows else None,
        )

    def latest(self, where: OutcomeFilter, limit: int = 50) -> list[StoredOutcome]:
        """The newest outcomes first (by decision for ``by_decision``, else by opening): what
        a dashboard shows, where pagination from the oldest would bury the news."""
        moment = OutcomeRow.decided_at if where.by_decision else OutcomeRow.opened_at
        query = self._filtered(where).order_by(moment.desc(), OutcomeRow.id.desc()).limit(limit)
        with self.sessions() as session:
            rows = list(session.scalars(query))
            handled = breaches.latest(session, [r.id for r in rows if r.state == "broken"])
        return [_stored(r, handled.get(r.id)) for r in rows]

    def outcome(self, outcome_id: int) -> StoredOutcome | None:
        with self.sessions() as session:
            row = session.get(OutcomeRow, outcome_id)
            if row is None:
                return None
            return _stored(row, breaches.latest(session, [row.id]).get(row.id))

    def revisions(self, outcome_id: int) -> list[Revision]:
        """The outcome's changes, oldest first (none for an outcome never revised)."""
        with self.sessions() as session:
            row = session.get(OutcomeRow, outcome_id)
            if row is None:
                return []
            return [
                Revision(r.old_state, r.new_state, r.reason, r.changed_at, r.before, r.after)
                for r in outcome_table.revisions(session, row.promise_id, row.key)
            ]

    def compliance(
        self,
        since: datetime | None,
        until: datetime | None,
        group_by: GroupBy = "promise",
        team: str | None = None,
    ) -> list[ComplianceRow]:
        """Kept and broken outcomes decided in [since, until), per group (of one team),
        counted by the database."""
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        with self.sessions() as session:
            column = {
                "promise": OutcomeRow.promise_id,
                "team": OutcomeRow.owner,
                "channel": OutcomeRow.channel,
                "week": outcome_table.decision_week(session),
            }[group_by]
            query = (
                select(column, OutcomeRow.state, func.count())
                .where(OutcomeRow.state.in_(("kept", "broken")))
                .group_by(column, OutcomeRow.state)
            )
            if team is not None:
                query = query.where(OutcomeRow.owner == team)
            if since is not None:
                query = query.where(OutcomeRow.decided_at >= since)
            if until is not None:
                query = query.where(OutcomeRow.decided_at < until)
            for value, state, n in session.execute(query):
                if group_by == "week" and value is not None:
                    value = iso_week(outcome_table.as_date(value))
                counts[value or "unknown"][0 if state == "kept" else 1] += n
        return [
            ComplianceRow(group, kept, broken, self._objective(group_by, group))
            for group, (kept, broken) in sorted(counts.items())
        ]

    def _filtered(self, where: OutcomeFilter) -> Select[tuple[OutcomeRow]]:
        moment = OutcomeRow.decided_at if where.by_decision else OutcomeRow.opened_at
        query = where_given(
            select(OutcomeRow),
            (
                (OutcomeRow.promise_id, where.promise),
                (OutcomeRow.owner, where.team),
                (OutcomeRow.customer_id, where.customer_id),
                (OutcomeRow.state, where.state),
                (OutcomeRow.scope, where.scope),
            ),
        )
        if where.case_id is not None:
            by_case = [p.id for p in self.catalog.promises.values() if p.scope == "case_id"]
            query = query.where(
                OutcomeRow.promise_id.in_(by_case), OutcomeRow.scope == where.case_id
            )
        if where.since is not None:
            query = query.where(moment >= where.since)
        if where.until is not None:
            query = query.where(moment < where.until)
        return query

    def _objective(self, group_by: GroupBy, group: str) -> float | None:
        if group_by == "promise" and group in self.catalog.promises:
            return self.catalog.promises[group].objective
        return None

    def standing(self, customer_id: str, team: str | None = None, recent: int = 20) -> Standing:
        """The customer's open outcomes, and their ``recent`` latest breaches (selected by
        the database: a customer's decided outcomes are never all read)."""
        query = select(OutcomeRow).where(OutcomeRow.customer_id == customer_id)
        if team is not None:
            query = query.where(OutcomeRow.owner == team)
        latest = OutcomeRow.decided_at.desc(), OutcomeRow.id.desc()
        with self.sessions() as session:
            opened = query.where(OutcomeRow.state.in_(OPEN_STATES)).order_by(OutcomeRow.opened_at)
            open_ = [_stored(r) for r in session.scalars(opened)]
            broken = query.where(OutcomeRow.state == "broken").order_by(*latest).limit(recent)
            breaches = [_stored(r) for r in session.scalars(broken)]
        return Standing(
            customer_id=customer_id,
            open=open_,
            at_risk=[o for o in open_ if o.fields["state"] == "at_risk"],
            recent_breaches=breaches,
        )

    def states(self, team: str | None = None) -> dict[tuple[str, str], int]:
        """Outcomes per (promise, state) as they stand now, of one team or all."""
        query = select(OutcomeRow.promise_id, OutcomeRow.state, func.count()).group_by(
            OutcomeRow.promise_id, OutcomeRow.state
        )
        if team is not None:
            query = query.where(OutcomeRow.owner == team)
        with self.sessions() as session:
            return {(p, s): n for p, s, n in session.execute(query)}

    def versions(self, promise_id: str) -> list[dict[str, Any]]:
        with self.sessions() as session:
            rows = session.scalars(
                select(PromiseVersionRow)
                .where(PromiseVersionRow.promise_id == promise_id)
                .order_by(PromiseVersionRow.first_seen_at)
            )
            return [
                {
                    "version": r.version,
                    "first_seen_at": r.first_seen_at,
                    "title": r.title,
                    "owner": r.owner,
                }
                for r in rows
            ]

    def lag(self) -> int:
        """Records accepted but not evaluated yet."""
        with self.sessions() as session:
            return record_table.pending_count(session)

    def totals(self) -> tuple[int, dict[tuple[str, str], int]]:
        """Records stored, and outcomes per (promise, state): for /metrics."""
        with self.sessions() as session:
            records = record_table.count_records(session)
            rows = session.execute(
                select(OutcomeRow.promise_id, OutcomeRow.state, func.count()).group_by(
                    OutcomeRow.promise_id, OutcomeRow.state
                )
            )
            return records, {(p, s): n for p, s, n in rows}

    def deliveries(self) -> dict[tuple[str, str], int]:
        """Alert deliveries per (team, status): for /metrics (alert on ``dead``)."""
        with self.sessions() as session:
            rows = session.execute(
                select(AlertRow.team, DeliveryRow.status, func.count())
                .join(AlertRow, DeliveryRow.alert_id == AlertRow.id)
                .group_by(AlertRow.team, DeliveryRow.status)
            )
            return {(team, status): n for team, status, n in rows}

    def quarantined(self) -> dict[str, quarantine.Quarantine]:
        """The promises in force that are not evaluated because they crashed evaluation."""
        with self.sessions() as session:
            return quarantine.in_force(session, self.catalog)

    def burn_rates(self) -> dict[str, list[Burn]]:
        """Each promise's burn rates at the engine's clock: for /metrics."""
        with self.sessions() as session:
            return objectives.burn_rates(session, self.catalog.promises.values())

    def objectives(self, promises: list[Promise]) -> dict[str, Objective]:
        """``promises``' burn rates and open objective alerts: for the dashboard."""
        with self.sessions() as session:
            return objectives.objectives(session, promises)

    def worker_seen(self) -> datetime | None:
        with self.sessions() as session:
            return state_table.last_beat(session, state_table.WORKER)


def _stored(row: OutcomeRow, handling: Handling | None = None) -> StoredOutcome:
    return StoredOutcome(
        row.id, row.owner, row.channel, outcome_table.row_to_outcome(row).spec(), handling
    )
