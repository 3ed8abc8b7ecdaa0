"""Every path that decides outcomes, as the differential tests run them: in a child process
that is replaced every ``RECYCLE`` examples.

durable-rules never gives back the memory of a ruleset's sessions (its ``delete_state``
frees uninitialised pointers: docs/durable-rules-findings.md), so each evaluation keeps
about a megabyte for good, and a long run in one process would exhaust the machine. A
crash of the rules core kills only the child, and fails the example that caused it.

Each function takes the catalog as its YAML documents (the child loads it as ``promise
check`` does) and returns outcomes in the reference's form (SPEC §6 fields, UTC times).
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import random
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from empty_databases import empty, sqlite_copy
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import engine_adapter
from engine.clock import to_micros
from engine.evaluation.checkpoint import Checkpoint
from engine.evaluation.evaluator import Evaluator
from engine.outcomes import Outcome
from engine.privacy import erasure, retention
from engine.records import Interaction
from engine.sandbox.backtest import backtest
from engine.sandbox.preflight import would_break
from engine.service import PromiseService
from engine.shards import Share
from engine.storage.database import make_engine, session_factory
from engine.storage.schema import OutcomeRow, RevisionRow
from rules.models import Catalog
from strategies import load

RECYCLE = 150
"""Examples per child process: bounds what the rules core keeps (about 1-4 MB each)."""

T = TypeVar("T")
Outcomes = list[dict[str, Any]]
Files = dict[str, Any]
Records = list[dict[str, Any]]


class Paths:
    """The child process, replaced after ``RECYCLE`` calls or a crash."""

    def __init__(self) -> None:
        self._pool = self._start()

    @staticmethod
    def _start() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            max_tasks_per_child=RECYCLE,
        )

    def run(self, path: Callable[..., T], *args: Any) -> T:
        try:
            return self._pool.submit(path, *args).result()
        except BrokenProcessPool:
            self._pool = self._start()
            raise AssertionError(f"the process running {path.__name__} died") from None

    def close(self) -> None:
        self._pool.shutdown()


def _catalog(files: Files) -> Catalog:
    catalog = load(files)
    assert catalog is not None, "the parent loaded this catalog"
    return catalog


def sorted_outcomes(outcomes: Outcomes) -> Outcomes:
    return sorted(outcomes, key=lambda o: (o["promise"], o["scope"], o["opened_at"], o["evidence"]))


def _spec(outcome: Outcome) -> dict[str, Any]:
    spec = outcome.spec()
    for name in ("opened_at", "due_at", "decided_at"):
        if spec[name] is not None:
            spec[name] = spec[name].astimezone(UTC)
    return spec


def _stored(service: PromiseService) -> Outcomes:
    return sorted_outcomes([_spec(o) for o in service.outcomes()])


def _sent(record: dict[str, Any]) -> dict[str, Any]:
    """A record as a service sends it: JSON, the time as ISO 8601 text."""
    return {**record, "occurred_at": record["occurred_at"].isoformat()}


@contextmanager
def _database(where: str) -> Iterator[sessionmaker[Session]]:
    """An empty, migrated database: ``where`` is a folder for SQLite files (a migrated
    template is copied), or a PostgreSQL URL (its tables are emptied)."""
    if where.startswith("postgresql"):
        engine = make_engine(where)
        empty(engine)
        try:
            yield session_factory(engine)
        finally:
            engine.dispose()
        return
    path = Path(where) / f"example-{os.getpid()}.db"
    engine = sqlite_copy(Path(where) / f"template-{os.getpid()}.db", path)
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()
        for leftover in Path(where).glob(f"{path.name}*"):
            leftover.unlink()


# --- the paths (run in the child) ----------------------------------------------------------------


def in_memory(files: Files, records: Records, until: datetime | None) -> Outcomes:
    """``promise replay``."""
    return engine_adapter.evaluate(_catalog(files), records, until)


def continued(files: Files, records: Records, until: datetime | None, seed: int) -> Outcomes:
    """Each scope of each promise evaluated in random slices of its records, each slice
    continuing from the checkpoint the one before left (through JSON, as it is stored),
    under a clock that may run ahead of the next slice (another scope moved it): what the
    worker does when records arrive in order."""
    catalog = _catalog(files)
    rnd = random.Random(seed)
    interactions = sorted(
        (engine_adapter.to_interaction(r) for r in records), key=lambda r: r.order
    )
    last = max([r.at for r in interactions] + ([to_micros(until)] if until else []), default=0)
    evaluator = Evaluator(catalog, lambda outcome: None)
    found: dict[tuple[str, str], Outcome] = {}
    for pid in catalog.promises:
        runner = evaluator.runner(pid)
        scopes: dict[str, list[Interaction]] = {}
        for record in interactions:
            if (scope := runner.scope_of(record.fields())) is not None:
                scopes.setdefault(scope, []).append(record)
        for scope, mine in scopes.items():
            start: Checkpoint | None = None
            clock = 0
            while mine:
                size = rnd.randint(1, 4)
                piece, mine = mine[:size], mine[size:]
                ahead = mine[min(len(mine) - 1, rnd.randint(0, 3))].at if mine else last
                clock = max(clock, piece[-1].at, rnd.choice([piece[-1].at, ahead]))
                if not mine:
                    clock = max(clock, last)
                fresh, start = evaluator.continue_scope(pid, scope, piece, clock, start)
                evaluator.forget(pid, scope)
                assert start is not None, f"{pid}: no checkpoint after {piece[-1].id}"
                start = dataclasses.replace(start, state=json.loads(json.dumps(start.state)))
                found.update(((pid, k), dataclasses.replace(o)) for k, o in fresh.items())
    return sorted_outcomes([_spec(o) for o in found.values()])


def into_database(files: Files, records: Records, until: datetime | None, where: str) -> Outcomes:
    """``promise replay --db``: the records stored in bulk, then evaluated in one pass."""
    with _database(where) as sessions:
        service = PromiseService(_catalog(files), sessions)
        ordered = sorted((engine_adapter.to_interaction(r) for r in records), key=lambda r: r.order)
        service.backfill(ordered, until)
        return _stored(service)


@dataclass(frozen=True)
class ServiceRun:
    """What the service stored, each promise's backtest (outcomes as the API prints them,
    and what the backtest says changed), the pre-flight answer for one more record (promise
    and earlier evidence of each verdict), and what was stored once that record was sent."""

    stored: Outcomes
    backtests: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]
    preflight: list[tuple[str, tuple[str, ...]]]
    stored_after: Outcomes


def through_service(
    files: Files,
    records: Records,
    until: datetime | None,
    where: str,
    seed: int,
    next_record: dict[str, Any],
) -> ServiceRun:
    """Records arrive in random batches and orders and are evaluated as the worker does, in
    random slices, by one worker or by two or three that share the scopes (each when it
    happens to run), and the clock is advanced to ``until``; then each promise is
    backtested; then ``next_record`` is checked before it is sent, and sent."""
    catalog = _catalog(files)
    rnd = random.Random(seed)
    with _database(where) as sessions:
        # checkpoints kept every few records, so that late records restart from them
        spacing = rnd.randint(1, 6)
        count = rnd.choice([1, 1, 2, 3])
        workers = [
            PromiseService(catalog, sessions, checkpoint_spacing=spacing, share=Share(k, count))
            for k in range(1, count + 1)
        ]
        service = workers[0]
        arriving = list(records)
        rnd.shuffle(arriving)
        if rnd.random() < 0.5:  # mostly in order: scopes continue from their checkpoints
            arriving.sort(key=lambda r: (r["occurred_at"], r["id"]))
            for _ in range(rnd.randint(0, 2)):  # and a late record or two
                i, j = sorted(rnd.sample(range(len(arriving)), 2)) if len(arriving) > 1 else (0, 0)
                arriving.insert(j, arriving.pop(i))
        while arriving:
            size = rnd.randint(1, 6)
            batch, arriving = arriving[:size], arriving[size:]
            answers = service.accept([_sent(r) for r in batch])
            assert {a.status for a in answers} == {"accepted"}, answers
            if rnd.random() < 0.7:  # sometimes two batches queue up, for some workers
                for worker in rnd.sample(workers, rnd.randint(1, count)):
                    _worker_round(worker, rnd)
        for worker in rnd.sample(workers, count):  # each drains its share...
            _worker_round(worker, rnd)
        for worker in workers:  # ...and decides what fell due by the final clock
            worker.catch_up()
            if until is not None:
                worker.advance(until)
        stored = _stored(service)
        backtests = {}
        for pid, promise in catalog.promises.items():
            tried = backtest(Catalog({pid: promise}, catalog.teams, catalog.calendars), sessions)
            mine = sorted(tried.outcomes, key=lambda o: (o["scope"], o["opened_at"], o["evidence"]))
            backtests[pid] = (mine, tried.changed)
        answer = would_break(catalog, sessions, engine_adapter.to_interaction(next_record))
        preflight = sorted((v.promise, tuple(e.id for e in v.evidence)) for v in answer)
        service.accept([_sent(next_record)])
        for worker in workers:
            _worker_round(worker, rnd)
        for worker in workers:
            worker.catch_up()
        return ServiceRun(stored, backtests, preflight, _stored(service))


@dataclass(frozen=True)
class SealedRun:
    """What the service stored around erasures and expiries: every outcome with its key and
    seal, and every revision (what changed and why)."""

    outcomes: list[tuple[Any, ...]]
    revisions: list[tuple[Any, ...]]


ERASURE_KEY = "differential-erasure-key"
AFRESH = 10**9
"""A checkpoint spacing no scope reaches: the service keeps no checkpoints."""


def around_seals(
    files: Files, records: Records, until: datetime | None, where: str, seed: int, spacing: int
) -> SealedRun:
    """Records arrive mostly in order, in random batches evaluated as the worker does, with
    a customer erased and records expired by retention at random moments between them; the
    seed draws the same moments whatever ``spacing`` (records of a scope between kept
    checkpoints: ``AFRESH`` keeps none, so every scope is judged afresh each time).

    Each round takes the whole queue. When a round takes part of it, a scope judged afresh
    also reads its records still queued, and one continued from its checkpoint does not
    read those before the checkpoint (a late record): the outcomes end the same, but which
    record a revision names differs (docs/PERFORMANCE.md §5, "Sealed scopes")."""
    catalog = _catalog(files)
    rnd = random.Random(seed)
    with _database(where) as sessions:
        service = PromiseService(
            catalog, sessions, erasure_key=ERASURE_KEY, checkpoint_spacing=spacing
        )
        arriving = sorted(records, key=lambda r: (r["occurred_at"], r["id"]))
        for _ in range(rnd.randint(0, 2) if len(arriving) > 1 else 0):  # late records
            i, j = sorted(rnd.sample(range(len(arriving)), 2))
            arriving.insert(j, arriving.pop(i))
        sent: list[dict[str, Any]] = []
        while arriving:
            size = rnd.randint(1, 6)
            batch, arriving = arriving[:size], arriving[size:]
            service.accept([_sent(r) for r in batch])
            sent += batch
            while service.evaluate_pending():  # the whole queue: see the docstring
                pass
            chance = rnd.random()
            if chance < 0.15:
                customer = rnd.choice(sorted({r["customer_id"] for r in sent}))
                erasure.erase_customer(
                    sessions, catalog, customer, reason="asked", actor="test", key=ERASURE_KEY
                )
            elif chance < 0.35:
                cutoff = rnd.choice(sent)["occurred_at"]
                retention.apply_retention(sessions, catalog, 1, now=cutoff + timedelta(days=1))
        if until is not None:
            service.advance(until)
        with sessions() as session:
            outcomes = [
                (r.promise_id, r.key, r.scope, r.state, r.opened_at, r.due_at, r.decided_at,
                 list(r.evidence), r.sealed_at)
                for r in session.scalars(select(OutcomeRow))
            ]  # fmt: skip
            revisions = [
                (r.promise_id, r.key, r.old_state, r.new_state, r.reason, r.before, r.after)
                for r in session.scalars(select(RevisionRow))
            ]
        return SealedRun(sorted(outcomes, key=repr), sorted(revisions, key=repr))


def _worker_round(worker: PromiseService, rnd: random.Random) -> None:
    """What ``promise worker --no-live`` does when it runs: its queue in random slices, then
    what fell due in its shards by the clock other workers moved."""
    while worker.evaluate_pending(limit=rnd.randint(1, 8)):
        pass
    worker.catch_up()
