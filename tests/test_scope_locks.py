"""Shard locks on PostgreSQL: a batch of any size can be evaluated, a transaction that
evaluates a scope keeps every other worker out of its shard until it commits, and workers
with disjoint shares never wait for each other.

A worker that fell behind (after a restart, a kill or an outage) takes batches of 2,000
queued records, which touch thousands of (promise, scope) pairs: one advisory lock per
scope was more than the server's shared lock table holds, and its replacement, one lock on
every scope for a large batch, made every worker wait for every other.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from engine.service import PromiseService
from engine.shards import SHARDS, Share
from engine.storage import state_table
from engine.storage.database import make_engine, session_factory
from rules.models import Catalog

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from synthetic import history


@pytest.fixture
def postgres(db_engine: Engine) -> Engine:
    if db_engine.dialect.name != "postgresql":
        pytest.skip("advisory shard locks exist on PostgreSQL only (SQLite has one writer)")
    return db_engine


@pytest.fixture
def impatient(postgres: Engine) -> Iterator[Engine]:
    """The same database, where waiting 300 ms for a lock fails the transaction."""
    engine = make_engine(
        postgres.url.render_as_string(False), connect_args={"options": "-c lock_timeout=300"}
    )
    yield engine
    engine.dispose()


@pytest.fixture
def holding(postgres: Engine) -> Iterator[Session]:
    """A second transaction, as another worker's, whose locks are held until the test ends."""
    with session_factory(postgres)() as session, session.begin():
        yield session


def _blocked(impatient: Engine, shards: range) -> bool:
    """Whether locking ``shards`` waits for another transaction."""
    with session_factory(impatient)() as session, session.begin():
        try:
            state_table.lock_shards(session, shards)
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


def test_a_shard_in_use_holds_up_only_itself(impatient: Engine, holding: Session) -> None:
    state_table.lock_shards(holding, [3])
    assert _blocked(impatient, range(3, 4))
    assert _blocked(impatient, range(SHARDS))
    assert not _blocked(impatient, range(4, SHARDS))


def test_workers_with_disjoint_shares_never_wait_for_each_other(
    postgres: Engine, impatient: Engine, holding: Session, catalog: Catalog
) -> None:
    """While one worker's round holds every shard of its share, the other worker evaluates
    its own whole queue, and a worker of the same share would wait."""
    service = PromiseService(catalog, session_factory(postgres))
    service.accept(history(600, seed=4))
    first, second = Share(1, 2), Share(2, 2)
    state_table.lock_shards(holding, first.shards)
    other = PromiseService(catalog, session_factory(impatient), share=second)
    assert other.evaluate_pending() > 0
    assert other.evaluate_pending() == 0
    rival = PromiseService(catalog, session_factory(impatient), share=first)
    with pytest.raises(OperationalError, match="lock timeout"):
        rival.evaluate_pending()
