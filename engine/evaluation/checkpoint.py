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


@dataclass(frozen=True)
class Checkpoint:
    """The state of one (promise version, scope) after the record at ``order`` (occurred,
    id); ``seq`` is the last record rank handed out, which the next records must exceed
    (the rules compare ranks to tell earlier records from later ones)."""

    order: Order
    seq: int
    state: dict[str, Any]


def from_row(row: CheckpointRow) -> Checkpoint:
    return Checkpoint((from_micros(row.last_at_us), row.last_id), row.seq, row.state)


def columns(checkpoint: Checkpoint, version: str) -> dict[str, Any]:
    """A checkpoint of ``version`` of its promise as ``CheckpointRow`` columns."""
    occurred, last_id = checkpoint.order
    return {
        "version": version,
        "last_at_us": to_micros(occurred),
        "last_id": last_id,
        "seq": checkpoint.seq,
        "state": checkpoint.state,
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
