"""The engine's own state rows: the event-time clock, worker heartbeats, named counters and
scope locks. SQL only.
"""

from __future__ import annotations

import hashlib
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


def get_clock(session: Session) -> int | None:
    row = session.get(EngineStateRow, CLOCK)
    return row.value if row else None


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


def lock_scopes(session: Session, keys: Iterable[tuple[str, str]]) -> None:
    """Serialise evaluation of each (promise, scope) across workers (PostgreSQL advisory
    locks, released at commit), all in one statement, taken in ascending lock order so that
    workers cannot deadlock."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite serialises writers itself
    locks = sorted(
        {
            int.from_bytes(
                hashlib.blake2b(f"{promise}\x00{scope}".encode(), digest_size=8).digest(),
                "big",
                signed=True,
            )
            for promise, scope in keys
        }
    )
    if locks:
        session.execute(
            text(
                "SELECT count(pg_advisory_xact_lock(k)) FROM "
                "(SELECT k FROM unnest(CAST(:locks AS bigint[])) AS t(k) ORDER BY k) AS ordered"
            ),
            {"locks": locks},
        )


def beat(session: Session, name: str) -> None:
    """Record that ``name`` (a worker) is alive now."""
    set_state(session, name, to_micros(now()))


def last_beat(session: Session, name: str) -> datetime | None:
    row = session.get(EngineStateRow, name)
    return from_micros(row.value) if row else None


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
