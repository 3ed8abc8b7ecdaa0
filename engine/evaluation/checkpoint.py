"""Where a scope's evaluation stands after its last evaluated record, so the next records
continue from there instead of from the scope's first record (issue #15).

A checkpoint is taken after a scope's last record is fed and before the clock moves past
it: a record that comes after continues exactly as a fresh evaluation would, ticking the
clock to its own time first. Its ``state`` is plain JSON (each kind says what it holds:
``Runner.snapshot``), stored next to the outcomes in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from engine.clock import from_micros, to_micros
from engine.outcomes import Outcome
from engine.storage.schema import CheckpointRow

Order = tuple[datetime, str]
SPACING = 256
"""Records of a scope between the checkpoints it keeps for late records: a late record
re-reads at most about this many records before it, and usually as many after it."""


@dataclass(frozen=True)
class Checkpoint:
    """The state of one (promise version, scope) after the record at ``order`` (occurred,
    id), the ``n``-th of the scope; ``seq`` is the last record rank handed out, which the
    next records must exceed (the rules compare ranks to tell earlier records from later
    ones)."""

    order: Order
    seq: int
    state: dict[str, Any]
    n: int


def same_state(a: Checkpoint, b: Checkpoint) -> bool:
    """Whether two checkpoints hold the same state, whatever ranks their records were given
    (a run that took in a late record numbers the records after it differently)."""
    return _unranked(a.state) == _unranked(b.state)


def _unranked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _unranked(v) for k, v in value.items() if k != "seq"}
    if isinstance(value, list):
        return [_unranked(v) for v in value]
    return value


def from_row(row: CheckpointRow) -> Checkpoint:
    return Checkpoint((from_micros(row.last_at_us), row.last_id), row.seq, row.state, row.n)


def columns(checkpoint: Checkpoint, version: str, *, latest: bool, kept: bool) -> dict[str, Any]:
    """A checkpoint of ``version`` of its promise as ``CheckpointRow`` columns."""
    occurred, last_id = checkpoint.order
    return {
        "version": version,
        "last_at_us": to_micros(occurred),
        "last_id": last_id,
        "seq": checkpoint.seq,
        "state": checkpoint.state,
        "n": checkpoint.n,
        "latest": latest,
        "kept": kept,
    }


def outcome_state(outcome: Outcome) -> dict[str, Any]:
    """An open outcome as JSON (times ISO 8601), for :func:`outcome_from`."""
    return {
        f.name: value.isoformat() if isinstance(value, datetime) else value
        for f in fields(Outcome)
        if (value := getattr(outcome, f.name)) is not None
    }


_TIMES = {"opened_at", "due_at", "decided_at", "warn_at"}


def outcome_from(state: dict[str, Any]) -> Outcome:
    return Outcome(**{k: datetime.fromisoformat(v) if k in _TIMES else v for k, v in state.items()})


def micros_of(span: timedelta | None) -> int | None:
    return None if span is None else span // timedelta(microseconds=1)


def span_of(micros: int | None) -> timedelta | None:
    return None if micros is None else timedelta(microseconds=micros)
