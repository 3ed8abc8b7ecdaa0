"""The engine's own state rows: the event-time clock, worker heartbeats, named counters and
shard locks. SQL only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import case, delete, select, text, update
from sqlalchemy.orm import Session

from engine.clock import from_micros, now, to_micros
from engine.storage.schema import (
    EngineStateRow,
)

CLOCK = "clock"
WORKER = "worker_heartbeat"
"""The heartbeat row the worker beats and /readyz reads."""


# --- engine state ------------------------------------------------------------------------------


def get_state(session: Session, name: str) -> int | None:
    row = session.get(EngineStateRow, name)
    return row.value if row else None


def get_clock(session: Session) -> int | None:
    return get_state(session, CLOCK)


def set_clock(session: Session, micros: int) -> None:
    """Move the stored clock forward (never back), safely against concurrent workers."""
    if session.get(EngineStateRow, CLOCK) is None:
        session.add(EngineStateRow(name=CLOCK, value=micros))
        session.flush()
        return
    value = EngineStateRow.value
    session.execute(
        update(EngineStateRow)
        .where(EngineStateRow.name == CLOCK)
        .values(value=case((value < micros, micros), else_=value))
        .execution_options(synchronize_session=False)
    )


_SHARD_LOCK = 0x70726F6D
"""The first key of the shard locks, in the two-int space of advisory locks."""


def lock_shards(session: Session, shards: Iterable[int]) -> None:
    """Serialise evaluation of the scopes of ``shards`` (:mod:`engine.shards`) across
    workers: PostgreSQL advisory locks, released at commit, taken in ascending order so that
    workers cannot deadlock. Workers that own disjoint ranges never wait for each other. At
    most :data:`~engine.shards.SHARDS` locks, whatever the batch (a per-scope lock
    would need thousands, beyond the server's lock table). Call it once per transaction."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite serialises writers itself
    for number in sorted(set(shards)):
        session.execute(
            text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": _SHARD_LOCK, "b": number}
        )


def beat(session: Session, name: str) -> None:
    """Record that ``name`` (a worker) is alive now."""
    set_state(session, name, to_micros(now()))


def last_beat(session: Session, name: str) -> datetime | None:
    value = get_state(session, name)
    return None if value is None else from_micros(value)


def states_named(session: Session, prefix: str) -> dict[str, int]:
    """Engine-state values whose names start with ``prefix``."""
    rows = session.execute(
        select(EngineStateRow.name, EngineStateRow.value).where(
            EngineStateRow.name.startswith(prefix, autoescape=True)
        )
    )
    return dict(rows.tuples().all())


def set_state(session: Session, name: str, value: int) -> None:
    row = session.get(EngineStateRow, name)
    if row is None:
        session.add(EngineStateRow(name=name, value=value))
    else:
        row.value = value


def delete_state(session: Session, name: str) -> None:
    session.execute(delete(EngineStateRow).where(EngineStateRow.name == name))
