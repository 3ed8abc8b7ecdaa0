"""Upgrading a database keeps what it holds: records queued before the queue was split by
shard are evaluated after the upgrade, and going back keeps them queued."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

import reference
from engine.service import PromiseService
from engine.shards import SHARDS
from engine.storage.database import MIGRATIONS, session_factory
from rules.models import Catalog

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from synthetic import history


def _to(engine: Engine, revision: str, *, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def _queue(engine: Engine) -> list[str]:
    """The queue's record ids, one per row."""
    with engine.connect() as connection:
        return sorted(connection.scalars(text("SELECT record_id FROM pending_records")))


def test_records_queued_before_the_split_by_shard_are_evaluated_after_it(
    db_engine: Engine, catalog: Catalog, tmp_path: Path
) -> None:
    records = history(40, seed=11)
    queued = PromiseService(catalog, session_factory(db_engine))
    queued.accept(records)
    _to(db_engine, "0009", down=True)
    assert _queue(db_engine) == sorted(r["id"] for r in records)  # one row per record again

    _to(db_engine, "head")
    assert len(_queue(db_engine)) == len(records) * SHARDS  # each record in every shard
    service = PromiseService(catalog, session_factory(db_engine))
    assert service.evaluate_pending() == len(records)
    assert service.queue_empty()

    stored = sorted(_brief(o.spec()) for o in service.outcomes())
    timed = [{**r, "occurred_at": datetime.fromisoformat(r["occurred_at"])} for r in records]
    assert stored == sorted(_brief(o) for o in reference.evaluate(catalog, timed))


def _brief(outcome: dict) -> tuple:
    return tuple(str(outcome[k]) for k in ("promise", "scope", "state", "evidence"))
