"""Bulk storage stores what SQLAlchemy would: the same text for a time on SQLite (rows
written before are compared with new ones in SQL), each row's values with the shared ones,
and the Python default of a column left out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite.base import DATETIME

from engine.storage.bulk import insert_rows
from engine.storage.database import session_factory
from engine.storage.schema import InteractionRow, PendingRow, UTCDateTime

MOMENTS = [
    datetime(2024, 1, 8, 8, 0, 9, 714983, tzinfo=UTC),
    datetime(2024, 3, 31, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2024, 10, 27, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-8))),
    datetime(999, 1, 1, tzinfo=UTC),
]


@pytest.mark.parametrize("moment", MOMENTS, ids=str)
def test_a_time_is_stored_on_sqlite_as_sqlalchemy_stores_it_in_utc(moment: datetime) -> None:
    dialect = sqlite.dialect()
    ours = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    theirs = DATETIME().bind_processor(dialect)
    assert ours(moment) == theirs(moment.astimezone(UTC).replace(tzinfo=None))
    assert ours(None) is None
    with pytest.raises(ValueError, match="naive"):
        ours(moment.replace(tzinfo=None))


def test_bulk_rows_keep_their_values_the_shared_ones_and_defaults(db_engine: Engine) -> None:
    sessions = session_factory(db_engine)
    records = [
        {
            "id": f"r{n}",
            "occurred_at": moment,
            "at_us": n,
            "customer_id": "C-1",
            "case_id": None,
            "channel": "email",
            "direction": "inbound",
            "type": "message",
            "team": None,
            "agent": None,
            "attributes": {"n": n, "text": "café"},
            "fingerprint": f"f{n}",
        }
        for n, moment in enumerate(MOMENTS)
    ]
    received = datetime(2025, 5, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    with sessions.begin() as session:
        insert_rows(session, InteractionRow, records, received_at=received)
        insert_rows(session, PendingRow, [{"record_id": r["id"]} for r in records[:2]])
    with sessions() as session:
        stored = {row.id: row for row in session.scalars(select(InteractionRow))}
        queued = select(PendingRow.record_id, PendingRow.shard, PendingRow.backfill)
        assert sorted(session.execute(queued).tuples()) == [("r0", 0, False), ("r1", 0, False)]
    assert len(stored) == len(records)
    for record in records:
        row = stored[record["id"]]
        assert row.occurred_at == record["occurred_at"]
        assert row.attributes == record["attributes"]
        assert row.case_id is None
        assert row.received_at == received
