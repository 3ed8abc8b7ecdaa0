"""``promise replay``: evaluate files of records in memory and summarise the outcomes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.evaluation.evaluator import Evaluator
from engine.ingest.dedup import Deduplicator
from engine.ingest.sources import BadLine, read_records
from engine.outcomes import STATES, Outcome
from engine.records import DEFAULT_LIMITS, Interaction, RecordLimits
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
    limits: RecordLimits = DEFAULT_LIMITS,
) -> tuple[list[Interaction], int]:
    """All valid records of ``files`` in event-time order, and how many duplicates were dropped.

    Each record is answered by one :class:`Deduplicator` across the files: a record id seen
    again with other content is refused (``on_bad``, with its line) and the first one kept.
    """
    known = Deduplicator()
    kept: list[Interaction] = []
    duplicates = 0
    for file in files:
        for line, item in read_records(file, limits):
            on_read(1)
            if isinstance(item, BadLine):
                on_bad(item)
                continue
            answer = known.admit(item)
            if answer.status == "accepted":
                kept.append(item)
            elif answer.status == "duplicate":
                duplicates += 1
            else:
                on_bad(BadLine(file, line, answer.problems))
    return sorted(kept, key=lambda r: r.order), duplicates


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
