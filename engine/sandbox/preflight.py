"""Pre-flight: would this prospective record break a promise? Evaluated, never stored.

Each promise the record could concern is evaluated twice over its scope's stored records,
with and without the record, at the engine's clock; what is broken only with it is the
answer, with the earlier records that make it so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from engine.evaluation import history
from engine.evaluation.evaluator import Evaluator
from engine.evaluation.kinds.never import NeverRunner
from engine.records import Interaction
from engine.storage import outcome_table, record_table, state_table
from rules.models import Catalog, NeverPromise


@dataclass(frozen=True)
class EvidenceRecord:
    id: str
    occurred_at: str
    type: str
    channel: str
    team: str | None


@dataclass(frozen=True)
class Verdict:
    promise: str
    title: str
    owner: str
    why: str
    evidence: list[EvidenceRecord] = field(default_factory=list)


def would_break(
    catalog: Catalog, sessions: sessionmaker[Session], record: Interaction
) -> list[Verdict]:
    evaluator = Evaluator(catalog, on_change=lambda outcome: None)
    fields = record.fields()
    verdicts: list[Verdict] = []
    with sessions() as session:
        clock = max(state_table.get_clock(session) or 0, record.at)
        for pid, promise in catalog.promises.items():
            scope = record_table.scope_value(fields, promise.scope)
            if scope is None:
                continue
            stored = outcome_table.outcomes_in_scope(session, pid, scope)
            records = [
                r
                for r in record_table.scope_records(session, promise.scope, scope)
                if r.id != record.id
            ]
            before = history.judge(evaluator, promise, scope, records, stored, clock)
            broken_before = {k for k, o in before.items() if o.state == "broken"}
            after = history.judge(evaluator, promise, scope, [*records, record], stored, clock)
            by_id = {r.id: r for r in records}
            for key, outcome in after.items():
                if outcome.state != "broken" or key in broken_before:
                    continue
                earlier = [by_id[i] for i in outcome.evidence if i in by_id]
                verdicts.append(
                    Verdict(
                        pid,
                        promise.title,
                        promise.owner,
                        _why(earlier),
                        [_evidence(r) for r in earlier],
                    )
                )
    return verdicts


def _why(earlier: list[Interaction]) -> str:
    if not earlier:
        return "it would break this promise"
    parts = [
        f"{r.type.replace('_', ' ')} by {r.channel} on {r.occurred_at:%Y-%m-%d}"
        + (f" to {r.team}" if r.team else "")
        for r in earlier
    ]
    return "already: " + "; ".join(parts)


def _evidence(record: Interaction) -> EvidenceRecord:
    return EvidenceRecord(
        record.id, record.occurred_at.isoformat(), record.type, record.channel, record.team
    )


def as_json(items: list[Verdict] | list[Given]) -> list[dict[str, Any]]:
    return [asdict(item) for item in items]


@dataclass(frozen=True)
class Given:
    """Something the customer already gave, as a ``never`` promise's ``first`` record."""

    promise: str
    record: str
    occurred_at: str
    channel: str
    team: str | None
    same: dict[str, Any]


def already_given(
    catalog: Catalog, sessions: sessionmaker[Session], customer_id: str
) -> list[Given]:
    """For promises scoped by customer whose ``first`` records are still within their window."""
    evaluator = Evaluator(catalog, on_change=lambda outcome: None)
    promises = {
        pid: p
        for pid, p in catalog.promises.items()
        if isinstance(p, NeverPromise) and p.scope == "customer_id"
    }
    with sessions() as session:
        clock = state_table.get_clock(session) or 0
        records = record_table.scope_records(session, "customer_id", customer_id)
        stored = {
            pid: outcome_table.outcomes_in_scope(session, pid, customer_id) for pid in promises
        }
    by_id = {r.id: r for r in records}
    given: list[Given] = []
    for pid, promise in promises.items():
        judged = history.judged_from(promise, records, stored[pid])
        evaluator.reevaluate(pid, customer_id, judged, clock)
        runner = evaluator.runner(pid)
        assert isinstance(runner, NeverRunner)
        for record_id, same in runner.given(customer_id, clock).items():
            r = by_id[record_id]
            given.append(Given(pid, r.id, r.occurred_at.isoformat(), r.channel, r.team, same))
        evaluator.forget(pid, customer_id)
    return given
