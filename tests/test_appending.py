"""Replaying or importing into a database that already holds history (issue #15, "appending
is appending"): only what the new records touch is evaluated, with the verdicts of loading
everything at once, and a bulk load killed before its evaluation is finished by the next."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from itertools import groupby
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect

from conftest import ROOT
from engine.outcomes import Outcome
from engine.records import Interaction, parse_record
from engine.sandbox.in_memory import replay
from engine.service import PromiseService
from engine.storage.database import session_factory
from engine.storage.schema import InteractionRow, OutcomeRow
from rules.models import Catalog

sys.path.insert(0, str(ROOT / "bench"))
from synthetic import history


def _verdicts(outcomes: list[Outcome]) -> Counter:
    return Counter((o.promise, o.key, o.scope, *o.verdict()) for o in outcomes)


def _parsed(raw: list[dict[str, Any]]) -> list[Interaction]:
    records = [parse_record(r) for r in raw]
    assert all(isinstance(r, Interaction) for r in records)
    return sorted(records, key=lambda r: r.order)  # type: ignore[arg-type, union-attr]


def test_importing_day_by_day_gives_the_verdicts_of_one_load(
    db_engine: Engine, catalog: Catalog
) -> None:
    records = _parsed(history(1_000, seed=4))  # two weeks of days, as 2,500 would be
    days = [list(day) for _, day in groupby(records, key=lambda r: r.occurred_at.date())]
    rnd = random.Random(4)
    arrive_late = 0
    for n in range(1, len(days)):  # some records of each day arrive a day late
        late = [r for r in days[n - 1] if rnd.random() < 0.05]
        days[n - 1] = [r for r in days[n - 1] if r not in late]
        days[n] = sorted([*late, *days[n]], key=lambda r: r.order)
        arrive_late += len(late)
    assert len(days) > 3 and arrive_late > len(days)

    sessions = session_factory(db_engine)
    for day in days:  # each import is a new process, as `promise import` runs daily
        PromiseService(catalog, sessions, alerts=False).backfill(day)
    stored = PromiseService(catalog, sessions).outcomes()

    assert _verdicts(stored) == _verdicts(replay(catalog, records).outcomes)


class Stopped(Exception):
    """The process stopped while storing (a Ctrl-C, a full disk)."""


def _indexes(engine: Engine, table: Any) -> set[str]:
    return {index["name"] for index in inspect(engine).get_indexes(table.__tablename__)}


def test_a_bulk_load_stopped_while_storing_is_finished_with_its_indexes_by_the_next(
    db_engine: Engine, catalog: Catalog
) -> None:
    """A bulk load stores records without the indexes that only reads need: stopped before
    it builds them, the next backfill builds them, and evaluates everything."""
    records = _parsed(history(300, seed=5))
    schema = {index.name for index in InteractionRow.__table__.indexes}
    assert schema <= _indexes(db_engine, InteractionRow)
    sessions = session_factory(db_engine)

    def stop(answers: list[Any]) -> None:
        raise Stopped

    with pytest.raises(Stopped):  # after the first chunk was stored: all of these records
        PromiseService(catalog, sessions).backfill(records, on_answers=stop)
    assert PromiseService(catalog, sessions).record_count() == len(records)
    assert not schema & _indexes(db_engine, InteractionRow)

    PromiseService(catalog, sessions).backfill(records)
    assert schema <= _indexes(db_engine, InteractionRow)
    assert {index.name for index in OutcomeRow.__table__.indexes} <= _indexes(db_engine, OutcomeRow)
    stored = PromiseService(catalog, sessions).outcomes()
    assert _verdicts(stored) == _verdicts(replay(catalog, records).outcomes)


def test_a_bulk_load_killed_before_evaluating_is_evaluated_by_the_next(
    tmp_path: Path, catalog: Catalog
) -> None:
    raw = history(300, seed=6)
    source = tmp_path / "records.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in raw))
    url = f"sqlite:///{tmp_path / 'promise.db'}"
    command = [
        str(Path(sys.executable).parent / "promise"),
        "replay",
        str(source),
        "--db",
        url,
        "--promises",
        str(ROOT / "promises"),
        "--json",
    ]
    version = catalog.promises["email-reply-1bd"].version
    faulty = os.pathsep.join([str(ROOT / "tests" / "faulty"), os.environ.get("PYTHONPATH", "")])
    killed = subprocess.run(
        command,
        env={
            **os.environ,
            "PYTHONPATH": faulty,
            "PROMISE_TEST_CRASH": f"email-reply-1bd@{version}:segfault",
        },
        capture_output=True,
        text=True,
    )
    assert killed.returncode < 0, killed.stderr  # died of the signal, records stored

    again = subprocess.run(command, capture_output=True, text=True, check=True)
    document = json.loads(again.stdout)
    expected = replay(catalog, _parsed(raw)).outcomes
    assert sum(document["summary"]["email-reply-1bd"].values()) > 0
    assert len(document["outcomes"]) == len(expected)
    assert Counter((o["promise"], o["state"]) for o in document["outcomes"]) == Counter(
        (o.promise, o.state) for o in expected
    )
