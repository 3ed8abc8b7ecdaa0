"""Scope locks on PostgreSQL: a batch of any size can be evaluated, and a transaction that
evaluates a scope keeps every other worker out of it until it commits.

A worker that fell behind (after a restart, a kill or an outage) takes batches of 2,000
queued records, which touch thousands of (promise, scope) pairs: more advisory locks than
the server's shared lock table holds (``max_locks_per_transaction`` x ``max_connections``).
Each attempt then failed with "out of shared memory", was retried as an outage, and the
queue never drained (the kill test's CI failure).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from engine.service import PromiseService
from engine.storage import state_table
from engine.storage.database import session_factory
from rules.models import Catalog

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from synthetic import history


@pytest.fixture
def postgres(db_engine: Engine) -> Engine:
    if db_engine.dialect.name != "postgresql":
        pytest.skip("advisory scope locks exist on PostgreSQL only (SQLite has one writer)")
    return db_engine


def _pairs(count: int, prefix: str = "S") -> list[tuple[str, str]]:
    return [("ask-once", f"{prefix}-{n}") for n in range(count)]


@pytest.fixture
def holding(postgres: Engine) -> Iterator[Session]:
    """A second transaction, as another worker's, whose locks are held until the test ends."""
    with session_factory(postgres)() as session, session.begin():
        yield session


def _blocked(postgres: Engine, pairs: list[tuple[str, str]]) -> bool:
    """Whether locking ``pairs`` waits for another transaction."""
    with session_factory(postgres)() as session, session.begin():
        session.execute(text("SET LOCAL lock_timeout = '300ms'"))
        try:
            state_table.lock_scopes(session, pairs)
        except OperationalError as exc:
            assert "lock timeout" in str(exc)
            return True
        return False


def test_a_worker_far_behind_drains_its_backlog_in_one_batch(
    postgres: Engine, catalog: Catalog
) -> None:
    records = history(3_000, seed=3)
    service = PromiseService(catalog, session_factory(postgres))
    for start in range(0, len(records), 500):
        service.accept(records[start : start + 500])
    assert service.evaluate_pending(len(records)) == len(records)
    assert service.evaluate_pending() == 0
    assert service.outcomes()


def test_many_scopes_lock_every_scope_and_wait_for_one(postgres: Engine, holding: Session) -> None:
    many = _pairs(state_table.MAX_SCOPE_LOCKS + 1, "many")
    with session_factory(postgres)() as session, session.begin():
        state_table.lock_scopes(session, _pairs(20_000, "huge"))  # more than the lock table
    state_table.lock_scopes(holding, [("ask-once", "C-1")])
    assert _blocked(postgres, many)  # a scope in use elsewhere holds up a large batch
    assert not _blocked(postgres, [("ask-once", "C-2")])  # other scopes are free


def test_a_large_batch_keeps_every_scope_to_itself(postgres: Engine, holding: Session) -> None:
    state_table.lock_scopes(holding, _pairs(state_table.MAX_SCOPE_LOCKS + 1, "many"))
    assert _blocked(postgres, [("ask-once", "anything")])


def test_small_batches_of_other_scopes_do_not_wait(postgres: Engine, holding: Session) -> None:
    state_table.lock_scopes(holding, _pairs(state_table.MAX_SCOPE_LOCKS, "mine"))
    assert not _blocked(postgres, _pairs(state_table.MAX_SCOPE_LOCKS, "yours"))
    assert _blocked(postgres, [("ask-once", "mine-7")])
