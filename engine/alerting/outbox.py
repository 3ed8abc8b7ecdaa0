"""The alert outbox: alerts are written in the transaction that changes the outcome.

An outcome that becomes at risk or broken owes its team one alert per (opportunity,
state); a breach that stops being one (a late record turned it into kept) owes a
correction on the same routes. Because the rows are written with the outcome, a crash
can lose neither: the dispatcher (``engine.alerting.dispatch``) delivers them afterwards.

Backfilled history alerts only what is recent: a breach decided before ``quiet_before``
(the engine's clock less PROMISE_BACKFILL_ALERT_WINDOW) is written as a ``backfilled`` row
with no delivery, so that reports can say how many breaches nobody was paged about.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from engine.alerting import routes
from engine.clock import now
from engine.outcomes import Outcome
from engine.storage.bulk import insert_rows
from engine.storage.schema import AlertRow, DeliveryRow
from rules.models import Promise, Route, Team

ALERTING = ("at_risk", "broken")
OBJECTIVE = "objective"
"""The kind of a burn-rate alert on a promise's objective (engine.alerting.burn)."""
BACKFILLED = "backfilled"
"""The kind of a row that records an alert not sent: its breach was old backfilled history."""
WITHDRAWN = "withdrawn"
"""The state a correction names when the opportunity itself disappeared."""

Change = tuple[Outcome | None, Outcome | None]
"""An outcome before and after a change; None where it did not (or no longer) exist."""


def owed(
    session: Session,
    promise: Promise,
    changes: Sequence[Change],
    reason: str,
    quiet_before: datetime | None = None,
) -> list[dict[str, Any]]:
    """The alert and correction rows that ``changes`` owe ``promise``'s owner, for
    :func:`queue` (which can take those of many scopes at once). With ``quiet_before`` (a
    backfill), a breach decided before it is recorded as backfilled instead of alerted."""
    rows: list[dict[str, Any]] = []
    moment = now()
    for before, after in changes:
        if (
            after is not None
            and after.state in ALERTING
            and _newly(session, promise, before, after)
        ):
            kind = BACKFILLED if _history(after, quiet_before) else "alert"
            rows.append(_row(kind, promise, after, after.state, reason, moment))
        if (
            before is not None
            and before.state == "broken"
            and (after is None or after.state != "broken")
        ):
            corrected = active_alert(session, promise.id, before.key, "broken")
            if corrected is not None:
                state = after.state if after is not None else WITHDRAWN
                row = _row("correction", promise, after or before, state, reason, moment)
                rows.append({**row, "corrects": corrected})
    return rows


def queue(
    session: Session, rows: list[dict[str, Any]], team: Team | None, moment: datetime
) -> None:
    """Insert alert rows and one pending delivery per route of their team (the dispatcher
    holds them for a digest if the team wants one when they are due), if the route
    :func:`takes` the row's kind; backfilled rows get none."""
    sent = [
        route
        for route in (team.routes if team else ())
        if any(takes(route, r["kind"]) for r in rows)
    ]
    if not sent:  # e.g. a backfill's history: no id is needed, the rows go in bulk
        insert_rows(session, AlertRow, rows)
        return
    ids = session.scalars(
        insert(AlertRow).returning(AlertRow.id, sort_by_parameter_order=True), rows
    ).all()
    deliveries = [
        {
            "alert_id": alert_id,
            "route": routes.stored(route),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": moment,
        }
        for alert_id, row in zip(ids, rows, strict=True)
        for route in sent
        if takes(route, row["kind"])
    ]
    session.execute(insert(DeliveryRow), deliveries)


def takes(route: Route, kind: str) -> bool:
    """Whether ``route`` is sent alerts of ``kind``: objective alerts to routes that chose
    them (``alerts: objective`` or ``all``), the others to routes that did not choose only
    objective ones; backfilled ones to none."""
    if kind == BACKFILLED:
        return False
    return route.alerts == "all" or (route.alerts == "objective") == (kind == OBJECTIVE)


def active_alert(
    session: Session, promise_id: str, key: str, state: str, kind: str = "alert"
) -> int | None:
    """The alert (of ``kind``) already raised for this opportunity and state, unless a
    correction took it back (then the state may be alerted again)."""
    latest = session.scalar(
        select(AlertRow.id)
        .where(
            AlertRow.promise_id == promise_id,
            AlertRow.outcome_key == key,
            AlertRow.kind == kind,
            AlertRow.state == state,
        )
        .order_by(AlertRow.id.desc())
        .limit(1)
    )
    if latest is None:
        return None
    corrected = session.scalar(select(AlertRow.id).where(AlertRow.corrects == latest).limit(1))
    return None if corrected is not None else latest


def _newly(session: Session, promise: Promise, before: Outcome | None, after: Outcome) -> bool:
    """Whether ``after``'s state is news: a new outcome, or a change to a state not alerted."""
    if before is None:
        return True
    return (
        before.state != after.state
        and active_alert(session, promise.id, after.key, after.state) is None
    )


def _history(outcome: Outcome, quiet_before: datetime | None) -> bool:
    """A breach decided before the backfill's alert window: stored and reported, not sent.
    Open outcomes (at risk) always alert: they can still be acted on."""
    return (
        quiet_before is not None
        and outcome.state == "broken"
        and outcome.decided_at is not None
        and outcome.decided_at < quiet_before
    )


def _row(
    kind: str, promise: Promise, outcome: Outcome, state: str, reason: str, moment: datetime
) -> dict[str, Any]:
    return {
        "kind": kind,
        "team": promise.owner,
        "promise_id": promise.id,
        "outcome_key": outcome.key,
        "state": state,
        "corrects": None,
        "customer_id": outcome.customer_id,
        "outcome": {**outcome.to_json(), "roles": outcome.roles},  # roles: to explain it
        "reason": reason[:1024],
        "created_at": moment,
    }
