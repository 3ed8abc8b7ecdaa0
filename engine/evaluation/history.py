"""Which stored records a scope is judged from, and how fresh verdicts meet stored ones.

Erasure and retention seal outcomes whose records are gone (:mod:`engine.privacy`): their
verdict is final, and a deadline scope is evaluated afterwards only from the records after
the seal (docs/semantics.md, "Erased and expired records"). The worker, pre-flight checks
and backtests all judge a scope through :func:`judge`, so they cannot disagree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.clock import to_micros
from engine.evaluation.checkpoint import Checkpoint, Order, same_state
from engine.evaluation.evaluator import Evaluator, ScopeRun
from engine.outcomes import Outcome
from engine.records import Interaction
from engine.storage.outcome_table import row_to_outcome
from engine.storage.schema import OutcomeRow
from rules.models import Promise

# --- how a scope is judged (the worker, pre-flight and backtests alike) -------------------------


def judged_from(
    promise: Promise, records: list[Interaction], stored: dict[str, OutcomeRow]
) -> list[Interaction]:
    """The records a scope is judged from, given its ``records`` and ``stored`` outcomes. A
    deadline scope with sealed outcomes starts after its seal (or at the opening of an
    outcome not sealed): earlier records were judged together with records that are gone,
    and their verdicts stand."""
    seals = [row.sealed_at for row in stored.values() if row.sealed_at is not None]
    if not seals or promise.kind != "deadline":
        return records
    since = max(seals)
    live = [row.opened_at for row in stored.values() if row.sealed_at is None]
    start = min(live) if live else None
    return [
        r
        for r in records
        if r.occurred_at > since or (start is not None and r.occurred_at >= start)
    ]


def judge(
    evaluator: Evaluator,
    promise: Promise,
    scope: str,
    records: list[Interaction],
    stored: dict[str, OutcomeRow],
    clock: int | None,
) -> dict[str, Outcome]:
    """A scope's outcomes by key, as its ``stored`` outcomes make it judge ``records`` (all
    of the scope's records, in any order) at ``clock`` (µs): evaluated from
    :func:`judged_from`, keyed like the stored outcomes, and every sealed outcome as it
    stands (it is final). What of it differs from ``stored`` is the change to store."""
    return judge_afresh(evaluator, promise, scope, records, stored, clock).outcomes


@dataclass
class Judged:
    """What judging one scope decided: its ``outcomes`` (all of the scope's when
    ``complete``, else those that changed), the checkpoints to keep (``kept`` ones, and the
    ``latest``: None when the scope cannot be continued, or when a late record's run met
    the stored evaluation again at ``met``, and went ``onwards`` from the latest checkpoint),
    and which stored outcomes a late record's run decided again (``redecided``: gone
    unless in ``outcomes``). Judged afresh, it ``read`` that many records."""

    outcomes: dict[str, Outcome]
    kept: list[Checkpoint]
    latest: Checkpoint | None
    complete: bool = False
    redecided: Callable[[OutcomeRow], bool] = lambda row: False
    met: Checkpoint | None = None
    onwards: Judged | None = None
    """After ``met``: what the records after the latest checkpoint decided from it."""
    read: int = 0


def judge_afresh(
    evaluator: Evaluator,
    promise: Promise,
    scope: str,
    records: list[Interaction],
    stored: dict[str, OutcomeRow],
    clock: int | None,
) -> Judged:
    """:func:`judge`, with the checkpoints to continue from. A deadline scope with sealed
    outcomes is judged from after its seal, its opportunities numbered after the stored
    ones (:func:`_renumbered`); its latest checkpoint carries that numbering (:data:`SEALED`),
    and it keeps no others (a late record there is judged afresh)."""
    with evaluator.scope_run(promise.id, scope, None) as run:
        run.feed(judged_from(promise, records, stored))
        fresh = run.finish(clock)
    sealed = {k: row_to_outcome(row) for k, row in stored.items() if row.sealed_at is not None}
    if not sealed or promise.kind != "deadline":  # a seal changes neither records nor keys
        latest = run.latest if run.continuable else None
        kept = run.kept if latest is not None else []
        return Judged({**fresh, **sealed}, kept, latest, complete=True, read=len(records))
    by_start = {row.evidence[0]: key for key, row in stored.items() if row.evidence}
    last = max((_number(key) for key in stored), default=0)

    def matched(outcome: Outcome) -> str | None:
        return by_start.get(outcome.evidence[0]) if outcome.evidence else None

    keys, last = _renumbered(fresh, matched, last)
    outcomes = {**_keyed(fresh, keys), **sealed}
    since = max(row.sealed_at for row in stored.values() if row.sealed_at is not None)
    steady = all(row.opened_at > since for row in stored.values() if row.sealed_at is None) and (
        max(_number(key) for key in outcomes) == last
    )  # else the next judgement reads other records, or numbers from a lower number
    if not (steady and run.continuable and run.latest is not None):
        return Judged(outcomes, [], None, complete=True)
    latest = _numbering(run.latest, keys, last, to_micros(since))
    return Judged(outcomes, [], latest, complete=True, read=len(records))


def judge_onwards(
    evaluator: Evaluator,
    promise: Promise,
    scope: str,
    start: Checkpoint,
    records: list[Interaction],
    clock: int | None,
) -> Judged:
    """The outcomes that the scope's ``records`` after ``start`` (and the clock reaching
    ``clock``) change: what :func:`judge_afresh` would decide of them, reading none of the
    records before ``start``. A sealed deadline scope's new opportunities are numbered
    after the stored ones, as :func:`judge_afresh` numbers them."""
    with evaluator.scope_run(promise.id, scope, start) as run:
        run.feed(records)
        outcomes = run.finish(clock)
    latest = run.latest if run.continuable else None
    numbering = start.state.get(SEALED)
    if numbering is None:
        return Judged(outcomes, run.kept, latest)
    keys = {}
    if (held := _open_key(start)) is not None:
        keys[held] = numbering["open"]
    known, last = _renumbered(outcomes, lambda o: keys.get(o.key), numbering["last"])
    keys.update(known)
    if latest is not None and latest is not start:
        latest = _numbering(latest, keys, last, numbering["since"])
    return Judged(_keyed(outcomes, keys), [], latest)


Reader = Callable[[Order, Order | None], list[Interaction]]
"""The scope's stored records after one place and up to another (None: all after)."""


BEGINNING = datetime(1, 1, 1, tzinfo=UTC)


def beginning(evaluator: Evaluator, promise: Promise, scope: str) -> Checkpoint:
    """The checkpoint before a scope's first record (its state then: nothing yet), where a
    record older than every kept checkpoint restarts."""
    state = evaluator.runner(promise.id).snapshot(scope)  # a scope it holds nothing of
    assert state is not None
    return Checkpoint((BEGINNING, ""), 0, state, 0)


def judge_late(
    evaluator: Evaluator,
    promise: Promise,
    scope: str,
    start: Checkpoint,
    latest: Checkpoint,
    later: list[Checkpoint],
    read: Reader,
    clock: int | None,
    last_late: Order,
) -> Judged:
    """A scope with new records before its ``latest`` checkpoint (the last of them at
    ``last_late``), judged from ``start``, a kept checkpoint before them: page by page up
    to each ``later`` checkpoint at or after ``last_late``, until the state there is what
    the stored evaluation had. From there on the stored run stands up to ``latest``, and
    the records after ``latest`` go on from it. Else it is judged to the end. Reads the
    records after ``start`` only as far as that, and those after ``latest``."""
    with evaluator.scope_run(promise.id, scope, start) as run:
        since = start.order
        for stop in later:
            run.feed(read(since, stop.order))
            since = stop.order
            now = run.latest
            if (
                stop.order >= last_late
                and now is not None
                and now.order == stop.order
                and same_state(now, stop)
            ):
                met = _met_again(run, start, stop)
                break
        else:
            run.feed(read(since, None))
            outcomes = run.finish(clock)
            return Judged(
                outcomes,
                run.kept,
                run.latest if run.continuable else None,
                redecided=lambda row: run.runner.opened_after(start, row),
            )
    onwards = judge_onwards(evaluator, promise, scope, latest, read(latest.order, None), clock)
    met.outcomes.update(onwards.outcomes)
    met.onwards = onwards
    return met


def _met_again(run: ScopeRun, start: Checkpoint, stop: Checkpoint) -> Judged:
    """A late record's run whose state at ``stop`` is what the stored run had there: what
    it decided before ``stop`` stands; an outcome still open there went on as stored."""
    runner, still_open = run.runner, run.runner.open_keys(run.scope)

    def redecided(row: OutcomeRow) -> bool:
        return (
            row.key not in still_open
            and runner.opened_after(start, row)
            and not runner.opened_after(stop, row)
        )

    return Judged(
        {k: o for k, o in run.changed.items() if k not in still_open},
        [c for c in run.kept if c.order < stop.order],
        None,
        redecided=redecided,
        met=stop,
    )


SEALED = "sealed"
"""Where a sealed deadline scope's checkpoint state keeps its numbering: the highest
opportunity number stored (``last``) and the stored key of the open opportunity (``open``),
whose run numbered it from 1 after the seal; and the seal (``since``, µs): records up to it
are judged by nobody."""


def _renumbered(
    fresh: dict[str, Outcome], known: Callable[[Outcome], str | None], last: int
) -> tuple[dict[str, str], int]:
    """In a deadline scope with sealed outcomes, the stored key of each fresh opportunity
    (keyed as its run numbered it, from 1 after the seal): the one ``known`` gives (a
    stored opportunity with the same opening record), else the next number after ``last``
    in opening order, so that none collides with a sealed outcome. Returns the keys and
    the last number."""
    keys = {}
    for outcome in sorted(fresh.values(), key=lambda o: (o.opened_at, o.key)):
        key = known(outcome)
        if key is None:
            last += 1
            key = f"{outcome.scope}#{last}"
        keys[outcome.key] = key
    return keys, last


def _keyed(fresh: dict[str, Outcome], keys: dict[str, str]) -> dict[str, Outcome]:
    return {keys[k]: dataclasses.replace(o, key=keys[k]) for k, o in fresh.items()}


def _open_key(checkpoint: Checkpoint) -> str | None:
    """The run's key of the opportunity open at a deadline scope's checkpoint."""
    held = checkpoint.state["open"]
    return None if held is None else held["outcome"]["key"]


def _numbering(checkpoint: Checkpoint, keys: dict[str, str], last: int, since: int) -> Checkpoint:
    held = _open_key(checkpoint)
    numbering = {"last": last, "open": None if held is None else keys[held], "since": since}
    return dataclasses.replace(checkpoint, state={**checkpoint.state, SEALED: numbering})


def _number(key: str) -> int:
    number = key.rpartition("#")[2]
    return int(number) if number.isdigit() else 0


def sealed_scopes(session: Session) -> set[tuple[str, str]]:
    """(promise, scope) pairs with a sealed outcome."""
    query = select(OutcomeRow.promise_id, OutcomeRow.scope).where(OutcomeRow.sealed_at.is_not(None))
    return set(session.execute(query.distinct()).tuples())


def outside(items: dict[str, Any], promise_id: str, scopes: set[tuple[str, str]]) -> dict[str, Any]:
    """``items`` (outcomes or rows, by key) that are not in one of ``scopes``."""
    return {k: v for k, v in items.items() if (promise_id, v.scope) not in scopes}
