"""Retention: delete records older than a period once no open outcome needs them; evidence
ids become ``expired:<id>`` and the outcomes they decided are sealed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine import clock
from engine.clock import from_micros, to_micros
from engine.outcomes import OPEN_STATES
from engine.privacy.held import delete_records, latest_in_scope, outcomes_in
from engine.privacy.pseudonyms import EXPIRED, PrivacyError
from engine.records import Interaction
from engine.shards import shards_of
from engine.storage import checkpoint_table, record_table, state_table
from engine.storage.schema import (
    InteractionRow,
    OutcomeRow,
    PendingRow,
)
from rules.models import Catalog

# --- retention ----------------------------------------------------------------------------------


@dataclass
class RetentionReport:
    days: int
    cutoff: datetime
    dry_run: bool = False
    records: int = 0
    scope_keys: int = 0
    outcomes_sealed: int = 0
    evidence_expired: int = 0
    kept_for_open: int = 0
    scopes: set[tuple[str, str]] = field(default_factory=set, repr=False)

    def summary(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        return (
            f"retention ({self.days} days, records before {self.cutoff.isoformat()}): {verb} "
            f"{self.records} records ({self.scope_keys} scope keys); {self.outcomes_sealed} "
            f"outcomes sealed, {self.evidence_expired} evidence ids marked expired; "
            f"{self.kept_for_open} old records kept for open outcomes"
        )


def apply_retention(
    sessions: sessionmaker[Session],
    catalog: Catalog,
    days: int,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    batch: int = 200,
) -> RetentionReport:
    """Delete records that occurred more than ``days`` before ``now`` (default: the wall
    clock) unless an open outcome needs them (its scope, or its evidence); records still
    queued for evaluation are never touched. Runs in transactions of ``batch`` records;
    ``dry_run`` rolls each back and reports what would go."""
    if days < 1:
        raise PrivacyError("a retention period is at least 1 day")
    cutoff = (now or clock.now()) - timedelta(days=days)
    report = RetentionReport(days, cutoff, dry_run)
    cursor = (-(2**62), "")
    while True:
        with sessions() as session:
            rows = _old_records(session, to_micros(cutoff), cursor, batch)
            if not rows:
                return report
            cursor = (rows[-1].at, rows[-1].id)
            _retire(session, catalog, rows, report)
            if dry_run:
                session.rollback()
            else:
                session.commit()


def _old_records(
    session: Session, cutoff: int, after: tuple[int, str], limit: int
) -> list[Interaction]:
    columns = [getattr(InteractionRow, f.name) for f in dataclasses.fields(Interaction)]
    queued = select(PendingRow.record_id).where(PendingRow.record_id == InteractionRow.id)
    at, record_id = after
    query = (
        select(*columns)
        .where(
            InteractionRow.at_us < cutoff,
            (InteractionRow.at_us > at)
            | ((InteractionRow.at_us == at) & (InteractionRow.id > record_id)),
            ~queued.exists(),
        )
        .order_by(InteractionRow.at_us, InteractionRow.id)
        .limit(limit)
    )
    return [Interaction(*row) for row in session.execute(query)]


def _retire(
    session: Session, catalog: Catalog, records: list[Interaction], report: RetentionReport
) -> None:
    scopes_of: dict[str, list[tuple[str, str]]] = {}
    for record in records:
        flat = record.fields()
        scopes_of[record.id] = [
            (pid, value)
            for pid, p in catalog.promises.items()
            if (value := record_table.scope_value(flat, p.scope)) is not None
        ]
    pairs = {pair for found in scopes_of.values() for pair in found}
    state_table.lock_shards(session, shards_of(catalog, pairs))
    busy = {
        (row.promise_id, row.scope)
        for row in outcomes_in(session, pairs)
        if row.state in OPEN_STATES
    }
    unknown = select(OutcomeRow.evidence).where(
        OutcomeRow.state.in_(OPEN_STATES), OutcomeRow.promise_id.not_in(list(catalog.promises))
    )
    needed = {e for evidence in session.scalars(unknown) for e in evidence}
    doomed = [
        r
        for r in records
        if r.id not in needed and not any(pair in busy for pair in scopes_of[r.id])
    ]
    report.kept_for_open += len(records) - len(doomed)
    if not doomed:
        return
    affected = {pair for r in doomed for pair in scopes_of[r.id]}
    marks = {
        (pid, value): latest_in_scope(session, catalog.promises[pid].scope, value)
        for pid, value in affected
    }
    checkpoint_table.forget(session, affected)  # they may hold the records' values
    counts = delete_records(session, [r.id for r in doomed])
    report.records += counts["interactions"]
    report.scope_keys += counts["scope_keys"]
    gone = {r.id for r in doomed}
    for row in outcomes_in(session, affected):
        if row.state in OPEN_STATES:
            continue  # cannot happen (busy scopes keep their records); never seal an open one
        expired = [EXPIRED + e if e in gone else e for e in row.evidence]
        if expired != row.evidence:
            report.evidence_expired += sum(e in gone for e in row.evidence)
            row.evidence = expired
        mark = from_micros(marks[(row.promise_id, row.scope)] or 0)
        if row.sealed_at is None:
            report.outcomes_sealed += 1
        row.sealed_at = max(row.sealed_at or mark, mark)
    report.scopes |= affected
