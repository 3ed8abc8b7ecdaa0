"""One outcome explained for the person an alert sent to it: what happened in plain words and
its evidence on a timeline, in the zone its team reads the promise in (or the viewer's).

A key of one team sees its team's outcomes only, as the JSON ``GET /outcomes/{id}``; the
records shown are the evidence the outcome rests on, which that team may read (README,
*What a --team key sees*).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from engine.explain import ROLE_WORDS, decided_by_clock, explain, roles_of, stamp
from engine.outcomes import OPEN_STATES
from engine.reading.queries import Queries, StoredOutcome
from engine.records import Interaction
from engine.storage import outcome_table, record_table
from engine.storage.schema import OutcomeRow
from rules.models import Catalog, Promise


@dataclass(frozen=True)
class Moment:
    """A point on the outcome's timeline: an evidence record, or its due time."""

    at: datetime
    local: str
    """``Mon 4 Mar 15:30 GMT``."""
    what: str
    record: Interaction | None = None
    decisive: bool = False
    """The record, or the passing of the due time, that decided the outcome."""


@dataclass(frozen=True)
class ExplainedOutcome:
    outcome: StoredOutcome
    promise: Promise | None
    """None when the promise has left the catalog since."""
    timezone: str
    explanation: str | None
    timeline: list[Moment]

    def local(self, moment: datetime | None) -> str:
        return stamp(moment, ZoneInfo(self.timezone)) if moment is not None else ""


def explained_outcome(
    sessions: sessionmaker[Session],
    queries: Queries,
    catalog: Catalog,
    outcome_id: int,
    *,
    team: str | None = None,
    timezone: str | None = None,
) -> ExplainedOutcome | None:
    """The outcome with what happened and its timeline, its times in ``timezone`` (the
    dashboard viewer's; by default the zone its team reads the promise in); None when there is
    none, or it is another team's than ``team`` (as the JSON API answers 404)."""
    stored = queries.outcome(outcome_id)
    if stored is None or team not in (None, stored.team):
        return None
    with sessions() as session:
        row = session.get(OutcomeRow, outcome_id)
        if row is None:  # erased or re-evaluated away in between
            return None
        outcome = outcome_table.row_to_outcome(row)
        records = record_table.records_by_id(session, outcome.evidence)
    promise = catalog.promises.get(outcome.promise)
    zone = ZoneInfo(timezone or (catalog.timezone_for(promise) if promise else "UTC"))
    decided = outcome.state not in OPEN_STATES
    by_clock = decided_by_clock(outcome)
    roles = roles_of(outcome)
    timeline = [
        Moment(
            at=records[i].occurred_at,
            local=stamp(records[i].occurred_at, zone),
            what=ROLE_WORDS.get(role, role),
            record=records[i],
            decisive=decided and not by_clock and n == len(outcome.evidence) - 1,
        )
        for n, (i, role) in enumerate(zip(outcome.evidence, roles, strict=True))
        if i in records
    ]
    if outcome.due_at is not None:
        what = "the due time passed: the clock broke the promise" if by_clock else "due"
        timeline.append(
            Moment(outcome.due_at, stamp(outcome.due_at, zone), what, decisive=by_clock)
        )
    timeline.sort(key=lambda m: (m.at, m.record is None))
    return ExplainedOutcome(
        outcome=stored,
        promise=promise,
        timezone=zone.key,
        explanation=explain(outcome, promise, zone, records) if promise else None,
        timeline=timeline,
    )
