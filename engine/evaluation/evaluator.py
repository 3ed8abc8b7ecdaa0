"""Evaluate interaction records against a catalog, in event time, on durable-rules.

Records are fed in event-time order (``occurred_at``, then ``id``); the clock only moves
when a record or the caller moves it. A scope that must be looked at again (a record
arrived late) is evaluated afresh from its records with :meth:`Evaluator.reevaluate`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

import orjson

from engine.clock import to_micros
from engine.evaluation.checkpoint import SPACING, Checkpoint
from engine.evaluation.kinds.deadline import DeadlineRunner
from engine.evaluation.kinds.limit import LimitRunner
from engine.evaluation.kinds.never import NeverRunner
from engine.evaluation.rules_core import RulesCore
from engine.evaluation.runner import Runner
from engine.outcomes import Outcome
from engine.records import Interaction
from rules.models import Catalog, DeadlinePromise, NeverPromise

_RUNNERS: dict[type, type[Runner]] = {
    DeadlinePromise: DeadlineRunner,
    NeverPromise: NeverRunner,
}


class OutOfOrder(ValueError):
    """A record came before one already evaluated; use ``reevaluate`` for its scopes."""


class Evaluator:
    """One catalog, one rules core, one thread. ``on_change`` hears every outcome change."""

    def __init__(
        self,
        catalog: Catalog,
        on_change: Callable[[Outcome], None],
        core: RulesCore | None = None,
        spacing: int = SPACING,
    ) -> None:
        """``spacing``: records of a scope between the checkpoints a run keeps (ScopeRun)."""
        self.catalog = catalog
        self.spacing = spacing
        self.core = core or RulesCore()
        self._on_change = on_change
        self._capture: dict[str, Outcome] | None = None
        self.runners: dict[str, Runner] = {}  # built by runner(), on first use
        self.clock: int | None = None  # µs
        self._last: tuple[datetime, str] | None = None
        self._seq = 0

    def runner(self, promise_id: str) -> Runner:
        """The promise's runner. Its ruleset enters the rules core on first use, so a promise
        that is never evaluated (quarantined: the core refused it) never reaches the core."""
        runner = self.runners.get(promise_id)
        if runner is None:
            promise = self.catalog.promises[promise_id]
            runner = _RUNNERS.get(type(promise), LimitRunner)(
                promise, self.core, self.catalog.calendar_for(promise), self._emit
            )
            self.runners[promise_id] = runner
        return runner

    def _emit(self, outcome: Outcome) -> None:
        if self._capture is not None:
            self._capture[outcome.key] = outcome
        self._on_change(outcome)

    def add(self, record: Interaction) -> None:
        """Evaluate the next record in event-time order."""
        if self._last is not None and record.order <= self._last:
            raise OutOfOrder(
                f"record {record.id!r} at {record.occurred_at.isoformat()} comes "
                f"before records already evaluated"
            )
        self._last = record.order
        self.advance(record.occurred_at)
        fields = record.fields()
        self._seq += 1
        for pid in self.catalog.promises:
            self.runner(pid).feed(record, fields, self._seq)

    def add_all(self, records: Iterable[Interaction]) -> None:
        for record in records:
            self.add(record)

    def advance(self, moment: datetime) -> None:
        """Move the clock forward to ``moment`` (never back) and decide what fell due."""
        now = to_micros(moment)
        if self.clock is not None and now <= self.clock:
            return
        self.clock = now
        for runner in self.runners.values():
            runner.tick(now)

    def reevaluate(
        self,
        promise_id: str,
        scope: str,
        records: Iterable[Interaction],
        clock: int | None = None,
    ) -> dict[str, Outcome]:
        """Evaluate one scope of one promise afresh from all of its records.

        The clock ends at ``clock`` (µs) if given, else at the engine's clock. Returns the
        scope's outcomes by key; a key held before and missing now is no opportunity any
        more. Other scopes are untouched and keep their verdicts.
        """
        return self.continue_scope(promise_id, scope, records, clock)[0]

    def continue_scope(
        self,
        promise_id: str,
        scope: str,
        records: Iterable[Interaction],
        clock: int | None = None,
        start: Checkpoint | None = None,
    ) -> tuple[dict[str, Outcome], Checkpoint | None]:
        """Evaluate one scope of one promise from ``start`` (else afresh) through
        ``records`` (those after ``start``), ending at ``clock`` like :meth:`reevaluate`.

        Returns the outcomes that changed on the way (from ``start``: only those; afresh:
        all of the scope's), and the checkpoint after the last record (``start`` when there
        was none; None when the runner cannot be continued from its state)."""
        with self.scope_run(promise_id, scope, start, forget=False) as run:
            run.feed(records)
            return run.finish(clock), run.latest

    def scope_run(
        self, promise_id: str, scope: str, start: Checkpoint | None, *, forget: bool = True
    ) -> ScopeRun:
        """A run over one scope of one promise, from ``start`` or afresh (see ScopeRun);
        unless told to ``forget`` it at the end, the scope's state stays (pre-flight checks
        read what a customer gave from it)."""
        return ScopeRun(self, self.runner(promise_id), scope, start, forget)

    def forget(self, promise_id: str, scope: str) -> None:
        """Drop a scope's state and facts (its outcomes are kept elsewhere)."""
        self.runner(promise_id).reset_scope(scope)


class ScopeRun:
    """One scope of one promise evaluated from a checkpoint (or afresh) record by record,
    as a context: the outcomes it changes are captured, its state is dropped at the end.

    It keeps a checkpoint every ``spacing`` records of the scope (``kept``), so that a
    record that arrives late restarts near its time, not at the scope's first record."""

    def __init__(
        self,
        evaluator: Evaluator,
        runner: Runner,
        scope: str,
        start: Checkpoint | None,
        forget: bool,
    ) -> None:
        self._evaluator = evaluator
        self._forget = forget
        self.runner = runner
        self.scope = scope
        self.start = start
        self.latest = start
        self.kept: list[Checkpoint] = []
        self.n = start.n if start is not None else 0
        self.continuable = True
        self._bucket = runner.bucket(scope)
        self._last: Interaction | None = None

    def __enter__(self) -> ScopeRun:
        evaluator, runner = self._evaluator, self.runner
        runner.reset_scope(self.scope)
        evaluator._capture = {}
        if self.start is not None:
            evaluator._seq = max(evaluator._seq, self.start.seq)
            runner.restore(self.scope, self.start.state)
        return self

    def __exit__(self, *exc: object) -> None:
        self._evaluator._capture = None
        if self._forget:
            self.runner.reset_scope(self.scope)

    @property
    def changed(self) -> dict[str, Outcome]:
        assert self._evaluator._capture is not None, "only inside the run"
        return self._evaluator._capture

    def feed(self, records: Iterable[Interaction]) -> None:
        """Feed the scope's next ``records`` (in any order; all after what was fed)."""
        evaluator, runner = self._evaluator, self.runner
        for record in sorted(records, key=lambda r: r.order):
            fields = record.fields()
            if runner.scope_of(fields) != self.scope:
                continue
            runner.tick_bucket(self._bucket, record.at)
            evaluator._seq += 1
            runner.feed(record, fields, evaluator._seq)
            self._last = record
            self.n += 1
            if self.n % evaluator.spacing == 0 and (kept := self.checkpoint()) is not None:
                self.kept.append(kept)
        if self._last is not None:
            self.latest = self.checkpoint()

    def checkpoint(self) -> Checkpoint | None:
        """The state after the last record fed (None when it cannot be continued from)."""
        if self._last is None:
            return self.start
        state = self.runner.snapshot(self.scope)
        if state is None:
            self.continuable = False
            return None
        # a copy: later records and the final tick change what the snapshot names
        copied = orjson.loads(orjson.dumps(state))
        return Checkpoint(self._last.order, self._evaluator._seq, copied, self.n)

    def finish(self, clock: int | None) -> dict[str, Outcome]:
        """Move the scope's clock to ``clock`` (else the engine's); the changed outcomes."""
        final = clock if clock is not None else self._evaluator.clock
        if final is not None:
            self.runner.tick_bucket(self._bucket, final)
        return self.changed
