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


MAX_SCOPE_LOCKS = 1_000
"""Most scope locks one transaction takes one by one. PostgreSQL keeps advisory locks in one
table for the whole server, sized about ``max_locks_per_transaction`` x ``max_connections``
(6,400 by default): a worker's batch of 2,000 records touches some 7,000 (promise, scope)
pairs, and a transaction that runs out of that table fails ("out of shared memory"), again
on every retry. A larger set takes the one exclusive lock on every scope instead."""
_EVERY_SCOPE = {"a": 0x70726F6D, "b": 0}
"""The lock on every scope: a key in the two-int space of advisory locks, which never
overlaps the one-bigint keys of single scopes."""


def lock_scopes(session: Session, keys: Iterable[tuple[str, str]]) -> None:
    """Serialise evaluation of each (promise, scope) across workers (PostgreSQL advisory
    locks, released at commit). Up to :data:`MAX_SCOPE_LOCKS` scopes: the shared lock on
    every scope, then one lock per scope in ascending order, so that workers cannot
    deadlock. More: the exclusive lock on every scope, which waits for the others and keeps
    them out, so a transaction holds at most ``MAX_SCOPE_LOCKS + 1`` locks. Call it once per
    transaction (a shared lock is not upgraded)."""
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
    if not locks:
        return
    if len(locks) > MAX_SCOPE_LOCKS:
        session.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"), _EVERY_SCOPE)
        return
    session.execute(text("SELECT pg_advisory_xact_lock_shared(:a, :b)"), _EVERY_SCOPE)
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
