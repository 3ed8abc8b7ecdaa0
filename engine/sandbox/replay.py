"""``promise replay``: evaluate files of records in memory and summarise the outcomes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.evaluation.evaluator import Evaluator
from engine.ingest.sources import BadLine, read_records
from engine.outcomes import STATES, Outcome
from engine.records import Interaction, Rejection
from rules.models import Catalog


@dataclass
class ReplayResult:
    records: int
    rejected: list[BadLine]
    outcomes: list[Outcome]
    duplicates: int = 0
    catalog: Catalog | None = field(default=None, repr=False)

    def summary(self) -> dict[str, dict[str, int]]:
        counts: dict[str, Counter] = {
            pid: Counter() for pid in (self.catalog.promises if self.catalog else ())
        }
        for outcome in self.outcomes:
            counts.setdefault(outcome.promise, Counter())[outcome.state] += 1
        return {pid: {state: c[state] for state in STATES} for pid, c in counts.items()}

    def to_json(self) -> dict[str, Any]:
        """The SPEC §6 document."""
        return {
            "records": self.records,
            "rejected": len(self.rejected),
            "outcomes": [o.to_json() for o in self.outcomes],
            "summary": self.summary(),
        }


def load_records(
    files: Iterable[Path],
    on_bad: Callable[[BadLine], None],
    on_read: Callable[[int], None] = lambda n: None,
) -> tuple[list[Interaction], int]:
    """All valid records of ``files`` in event-time order, and how many duplicates were dropped.

    A record id seen twice with the same content is one record; with different content the
    later one is reported as a conflict and skipped.
    """
    by_id: dict[str, Interaction] = {}
    duplicates = 0
    for file in files:
        for line, item in read_records(file):
            on_read(1)
            if isinstance(item, BadLine):
                on_bad(item)
                continue
            seen = by_id.get(item.id)
            if seen is None:
                by_id[item.id] = item
            elif seen == item:
                duplicates += 1
            else:
                reason = f"{item.id!r} was already given with other content; kept the first"
                on_bad(BadLine(file, line, [Rejection("id", reason)]))
    return sorted(by_id.values(), key=lambda r: r.order), duplicates


def replay(
    catalog: Catalog,
    records: list[Interaction],
    until: datetime | None = None,
    progress: Callable[[int], None] = lambda n: None,
) -> ReplayResult:
    """Evaluate sorted ``records``; the clock ends at the last record's time or ``until``."""
    latest: dict[tuple[str, str], Outcome] = {}
    evaluator = Evaluator(catalog, lambda o: latest.__setitem__((o.promise, o.key), o))
    for record in records:
        evaluator.add(record)
        progress(1)
    if until is not None:
        evaluator.advance(until)
    outcomes = sorted(latest.values(), key=lambda o: (o.promise, o.opened_at, o.key))
    return ReplayResult(records=len(records), rejected=[], outcomes=outcomes, catalog=catalog)
