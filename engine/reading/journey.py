"""A customer's journey: every stored record of one customer, across channels and teams, in
event time, each with the outcomes it is evidence of, so that the "moments of truth" (the
record that broke or kept a promise) show where they happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from engine.outcomes import OPEN_STATES
from engine.reading.queries import OutcomeFilter, Queries, StoredOutcome
from engine.records import Interaction
from engine.storage import record_table


@dataclass(frozen=True)
class Mark:
    """An outcome shown at one of its evidence records.

    ``decisive`` marks the record that decided it (the last evidence of a decided outcome);
    the other evidence records (the earlier answer, the start of a clock) are context.
    """

    outcome: StoredOutcome
    decisive: bool


@dataclass(frozen=True)
class Step:
    record: Interaction
    marks: list[Mark] = field(default_factory=list)


@dataclass(frozen=True)
class Journey:
    customer_id: str
    steps: list[Step]
    """The latest ``limit`` records, oldest first."""
    total: int
    """Records stored for the customer: more than ``len(steps)`` when the journey is cut."""
    open: list[StoredOutcome]


def customer_journey(
    sessions: sessionmaker[Session],
    queries: Queries,
    customer_id: str,
    *,
    team: str | None = None,
    limit: int = 500,
    outcomes: int = 2_000,
) -> Journey:
    """The customer's records and the outcomes they decided; with ``team``, that team's
    outcomes and only the records it handled or its outcomes rest on (a team does not read
    what other teams were told), counted in ``total`` alone."""
    with sessions() as session:
        records, total = record_table.customer_records(session, customer_id, limit)
    steps = {record.id: Step(record) for record in records}
    found = queries.latest(OutcomeFilter(customer_id=customer_id, team=team), outcomes)
    if team is not None:
        evidence = {i for outcome in found for i in outcome.fields["evidence"]}
        steps = {i: s for i, s in steps.items() if s.record.team == team or i in evidence}
        total = len(steps)
    for outcome in reversed(found):
        evidence: list[str] = outcome.fields["evidence"]
        decided = outcome.fields["state"] not in OPEN_STATES
        for position, record_id in enumerate(evidence):
            if record_id in steps:
                last = position == len(evidence) - 1
                steps[record_id].marks.append(Mark(outcome, decisive=decided and last))
    return Journey(
        customer_id=customer_id,
        steps=list(steps.values()),
        total=total,
        open=[o for o in reversed(found) if o.fields["state"] in OPEN_STATES],
    )
