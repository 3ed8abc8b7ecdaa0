"""Reading and steering alerts: what was sent where, and retrying dead deliveries.

The outbox (``engine.alerting.outbox``) writes alerts and the dispatcher
(``engine.alerting.dispatch``) delivers them; this module is what people ask about them
through the API and reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.alerting import routes
from engine.alerting.outbox import OBJECTIVE
from engine.clock import now
from engine.storage.filters import where_given
from engine.storage.paging import decode_cursor, encode_cursor
from engine.storage.schema import AlertRow, DeliveryRow


@dataclass(frozen=True)
class Delivery:
    route: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    delivered_at: datetime | None


@dataclass(frozen=True)
class Alert:
    id: str
    number: int
    kind: str
    team: str
    promise: str | None
    state: str
    customer_id: str | None
    corrects: str | None
    reason: str
    created_at: datetime
    outcome: dict[str, Any] | None
    deliveries: list[Delivery] = field(default_factory=list)


@dataclass(frozen=True)
class AlertFilter:
    team: str | None = None
    promise: str | None = None
    kind: str | None = None
    status: str | None = None
    """Alerts with at least one delivery in this status (pending, delivered, dead, ...)."""
    customer_id: str | None = None


def list_alerts(
    sessions: sessionmaker[Session], where: AlertFilter, cursor: str | None, limit: int
) -> tuple[list[Alert], str | None]:
    """Alerts, oldest first, and the cursor of the next page."""
    query = where_given(
        select(AlertRow).order_by(AlertRow.id).limit(limit + 1),
        (
            (AlertRow.team, where.team),
            (AlertRow.promise_id, where.promise),
            (AlertRow.kind, where.kind),
            (AlertRow.customer_id, where.customer_id),
        ),
    )
    if where.status is not None:
        query = query.where(
            select(DeliveryRow.id)
            .where(DeliveryRow.alert_id == AlertRow.id, DeliveryRow.status == where.status)
            .exists()
        )
    if cursor is not None:
        query = query.where(AlertRow.id > decode_cursor(cursor))
    with sessions() as session:
        rows = list(session.scalars(query))
        more = len(rows) > limit
        rows = rows[:limit]
        alerts = _with_deliveries(session, rows)
    return alerts, encode_cursor(rows[-1].id) if more and rows else None


def get_alert(sessions: sessionmaker[Session], number: int) -> Alert | None:
    with sessions() as session:
        row = session.get(AlertRow, number)
        return _with_deliveries(session, [row])[0] if row is not None else None


def retry_dead(sessions: sessionmaker[Session], number: int) -> int:
    """Give an alert's dead deliveries a fresh set of attempts; returns how many."""
    with sessions.begin() as session:
        result = session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.alert_id == number, DeliveryRow.status == "dead")
            .values(status="pending", attempts=0, next_attempt_at=now())
        )
        return result.rowcount or 0


def delivery_counts(
    session: Session, team: str, since: datetime | None, until: datetime | None
) -> dict[str, int]:
    """Deliveries of ``team``'s alerts raised in [since, until), per status (for reports)."""
    query = (
        select(DeliveryRow.status, func.count())
        .join(AlertRow, DeliveryRow.alert_id == AlertRow.id)
        .where(AlertRow.team == team)
        .group_by(DeliveryRow.status)
    )
    if since is not None:
        query = query.where(AlertRow.created_at >= since)
    if until is not None:
        query = query.where(AlertRow.created_at < until)
    return {status: count for status, count in session.execute(query).tuples()}


def burning(session: Session, team: str) -> list[Alert]:
    """``team``'s objective (burn-rate) alerts open now: not yet resolved."""
    resolved = select(AlertRow.corrects).where(
        AlertRow.kind == OBJECTIVE, AlertRow.corrects.is_not(None)
    )
    rows = session.scalars(
        select(AlertRow)
        .where(
            AlertRow.team == team,
            AlertRow.kind == OBJECTIVE,
            AlertRow.corrects.is_(None),
            AlertRow.id.not_in(resolved),
        )
        .order_by(AlertRow.id)
    )
    return _with_deliveries(session, list(rows))


def dead(session: Session, team: str, limit: int = 50) -> list[Alert]:
    """``team``'s alerts that a route gave up on, newest first: someone must look."""
    rows = session.scalars(
        select(AlertRow)
        .where(
            AlertRow.team == team,
            select(DeliveryRow.id)
            .where(DeliveryRow.alert_id == AlertRow.id, DeliveryRow.status == "dead")
            .exists(),
        )
        .order_by(AlertRow.id.desc())
        .limit(limit)
    )
    return _with_deliveries(session, list(rows))


def _with_deliveries(session: Session, rows: list[AlertRow]) -> list[Alert]:
    by_alert: dict[int, list[Delivery]] = {r.id: [] for r in rows}
    if rows:
        for d in session.scalars(
            select(DeliveryRow).where(DeliveryRow.alert_id.in_(by_alert)).order_by(DeliveryRow.id)
        ):
            by_alert[d.alert_id].append(
                Delivery(
                    routes.describe(d.route),
                    d.status,
                    d.attempts,
                    d.next_attempt_at if d.status == "pending" else None,
                    d.last_error,
                    d.delivered_at,
                )
            )
    return [
        Alert(
            id=routes.alert_key(r.id),
            number=r.id,
            kind=r.kind,
            team=r.team,
            promise=r.promise_id,
            state=r.state,
            customer_id=r.customer_id,
            corrects=routes.alert_key(r.corrects) if r.corrects else None,
            reason=r.reason,
            created_at=r.created_at,
            outcome=r.outcome,
            deliveries=by_alert[r.id],
        )
        for r in rows
    ]
