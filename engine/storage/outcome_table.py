"""SQL for outcomes, their revisions and the promise versions that decided them; no business
rules here (see :mod:`engine.service`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, Row, cast, func, select
from sqlalchemy.orm import Session

from engine.clock import now
from engine.outcomes import Outcome
from engine.storage.bulk import among, chunked, insert_rows
from engine.storage.schema import (
    OutcomeRow,
    PromiseVersionRow,
    RevisionRow,
)


def record_versions(session: Session, versions: Iterable[PromiseVersionRow]) -> None:
    for version in versions:
        if session.get(PromiseVersionRow, (version.promise_id, version.version)) is None:
            session.add(version)


# --- outcomes ----------------------------------------------------------------------------------


def outcomes_in_scope(session: Session, promise_id: str, scope: str) -> dict[str, OutcomeRow]:
    rows = session.scalars(
        select(OutcomeRow).where(OutcomeRow.promise_id == promise_id, OutcomeRow.scope == scope)
    )
    return {row.key: row for row in rows}


def outcomes_in_scopes(
    session: Session, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, OutcomeRow]]:
    """The outcomes of many (promise, scope) pairs, by key: one query per promise and chunk."""
    by_promise: dict[str, set[str]] = {}
    for promise_id, scope in keys:
        by_promise.setdefault(promise_id, set()).add(scope)
    found: dict[tuple[str, str], dict[str, OutcomeRow]] = {
        (p, s): {} for p, scopes in by_promise.items() for s in scopes
    }
    for promise_id, scopes in by_promise.items():
        for chunk in chunked(sorted(scopes)):
            rows = session.scalars(
                select(OutcomeRow).where(
                    OutcomeRow.promise_id == promise_id, among(session, OutcomeRow.scope, chunk)
                )
            )
            for row in rows:
                found[(promise_id, row.scope)][row.key] = row
    return found


def outcomes_by_key(
    session: Session, promise_id: str, keys: Iterable[str]
) -> dict[str, OutcomeRow]:
    """Stored outcomes of one promise by key (the ones a continued evaluation changed)."""
    found: dict[str, OutcomeRow] = {}
    for chunk in chunked(sorted(set(keys))):
        rows = session.scalars(
            select(OutcomeRow).where(
                OutcomeRow.promise_id == promise_id, among(session, OutcomeRow.key, chunk)
            )
        )
        found.update((row.key, row) for row in rows)
    return found


def opened_between(
    session: Session,
    promise_id: str,
    scope: str,
    since: datetime | None,
    through: datetime | None,
) -> list[OutcomeRow]:
    """A scope's stored outcomes opened from ``since`` through ``through`` (None: no bound)."""
    query = select(OutcomeRow).where(OutcomeRow.promise_id == promise_id, OutcomeRow.scope == scope)
    if since is not None:
        query = query.where(OutcomeRow.opened_at >= since)
    if through is not None:
        query = query.where(OutcomeRow.opened_at <= through)
    return list(session.scalars(query))


def outcomes_of(session: Session, promise_id: str) -> dict[str, OutcomeRow]:
    rows = session.scalars(select(OutcomeRow).where(OutcomeRow.promise_id == promise_id))
    return {row.key: row for row in rows}


def promise_ids(session: Session) -> set[str]:
    """The promises with stored outcomes."""
    return set(session.scalars(select(OutcomeRow.promise_id).distinct()))


def all_outcomes(session: Session) -> dict[tuple[str, str], OutcomeRow]:
    return {(row.promise_id, row.key): row for row in session.scalars(select(OutcomeRow))}


def read_all(session: Session) -> list[Outcome]:
    """Every stored outcome, read as plain rows: no ORM object (and identity map entry)
    for each of a replay's million outcomes, which nobody changes."""
    return [row_to_outcome(row) for row in session.execute(select(OutcomeRow.__table__))]


def open_scopes_due(session: Session, micros_now: datetime) -> list[tuple[str, str]]:
    """(promise, scope) of open outcomes whose due time passed or warning point was reached."""
    rows = session.execute(
        select(OutcomeRow.promise_id, OutcomeRow.scope)
        .where(
            OutcomeRow.state.in_(("pending", "at_risk")),
            ((OutcomeRow.due_at < micros_now) | (OutcomeRow.warn_at <= micros_now)),
        )
        .distinct()
    )
    return [(p, s) for p, s in rows.tuples()]


def _outcome_columns(outcome: Outcome) -> dict[str, Any]:
    """The columns an outcome sets, but ``updated_at``: the caller's one moment for a batch."""
    return {
        "version": outcome.version,
        "scope": outcome.scope,
        "customer_id": outcome.customer_id,
        "channel": outcome.channel,
        "state": outcome.state,
        "opened_at": outcome.opened_at,
        "due_at": outcome.due_at,
        "warn_at": outcome.warn_at,
        "decided_at": outcome.decided_at,
        "evidence": list(outcome.evidence),
        "roles": None if outcome.roles is None else list(outcome.roles),
    }


def add_outcomes(session: Session, outcomes: list[Outcome], owner: str) -> None:
    """Insert new outcomes (a creation is not a change, so it has no revision)."""
    rows = [{"promise_id": o.promise, "key": o.key, **_outcome_columns(o)} for o in outcomes]
    insert_rows(session, OutcomeRow, rows, owner=owner, updated_at=now())


def apply_outcome(row: OutcomeRow, outcome: Outcome) -> None:
    for column, value in _outcome_columns(outcome).items():
        setattr(row, column, value)
    row.updated_at = now()


def row_to_outcome(row: OutcomeRow | Row[Any]) -> Outcome:
    """An outcome from its stored columns (an ORM row or a plain one)."""
    return Outcome(
        promise=row.promise_id,
        version=row.version,
        key=row.key,
        scope=row.scope,
        customer_id=row.customer_id,
        state=row.state,  # type: ignore[arg-type]
        opened_at=row.opened_at,
        due_at=row.due_at,
        decided_at=row.decided_at,
        evidence=list(row.evidence),
        roles=None if row.roles is None else list(row.roles),  # type: ignore[arg-type]
        warn_at=row.warn_at,
        channel=row.channel,
        sealed=row.sealed_at is not None,
    )


def add_revision(
    session: Session,
    promise_id: str,
    key: str,
    before: Outcome | None,
    after: Outcome | None,
    reason: str,
) -> None:
    session.add(
        RevisionRow(
            promise_id=promise_id,
            key=key,
            old_state=before.state if before else None,
            new_state=after.state if after else None,
            reason=reason[:1024],
            changed_at=now(),
            before=before.to_json() if before else None,
            after=after.to_json() if after else None,
        )
    )


def revisions(
    session: Session, promise_id: str | None = None, key: str | None = None
) -> list[RevisionRow]:
    """Revisions in the order they were made: all, a promise's, or one outcome's."""
    query = select(RevisionRow).order_by(RevisionRow.id)
    if promise_id is not None:
        query = query.where(RevisionRow.promise_id == promise_id)
    if key is not None:
        query = query.where(RevisionRow.key == key)
    return list(session.scalars(query))


def decision_week(session: Session) -> Any:
    """The Monday (UTC) of the week an outcome was decided in, as a SQL expression for the
    session's database, so that weekly figures are counted by the database."""
    if session.get_bind().dialect.name == "sqlite":  # stored as naive UTC text
        return func.date(OutcomeRow.decided_at, "weekday 0", "-6 days")
    return cast(func.date_trunc("week", func.timezone("UTC", OutcomeRow.decided_at)), Date)


def as_date(value: date | str) -> date:
    """A :func:`decision_week` as read back (SQLite answers text)."""
    return value if isinstance(value, date) else date.fromisoformat(value)
