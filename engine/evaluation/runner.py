"""What every promise kind shares: its ruleset, its scopes and sessions, and the clock.

All scopes of a promise share a few durable-rules sessions ("buckets": a hash of the scope
picks one), because a ruleset holds at most ~1,024 live sessions and the compiled rules
join on ``scope`` anyway. Few facts per session also keep clear of durable-rules' 32-bit
identity hash, which starts mistaking distinct facts for duplicates near 100k per session.
"""

from __future__ import annotations

import functools
import heapq
import zlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from engine.clock import from_micros
from engine.evaluation.checkpoint import Checkpoint
from engine.evaluation.rules_core import DuplicateFact, Fact, Firing, RulesCore
from engine.outcomes import Outcome
from engine.records import Interaction
from engine.storage.schema import OutcomeRow
from rules.business_time import AlwaysOpen, Calendar
from rules.compiler import (
    CLOCK,
    GUARD,
    RECORD,
    compile_promise,
    record_types,
    type_tags,
    typed_fields,
)
from rules.models import Promise

Emit = Callable[[Outcome], None]
BUCKETS = 256


def record_fact(
    record: Interaction, fields: dict[str, Any], seq: int, scope: str, typed: tuple[str, ...]
) -> Fact:
    """A record as one promise's ruleset sees it (the shape ``rules.compiler`` documents):
    ``fields`` (``record.fields()``) and the kinds of the attributes in ``typed``
    (``typed_fields`` of the promise)."""
    return {
        **fields,
        **type_tags(record.attributes, typed),
        "t": RECORD,
        "at": record.at,
        "seq": seq,
        "scope": scope,
        "sid": Runner.bucket(scope),
        GUARD: 1,
    }


class Runner:
    """Evaluates one promise version. Subclasses implement one kind each."""

    uses_clock = False
    """Whether the compiled rules join with the clock fact (only deadlines do)."""

    def __init__(
        self, promise: Promise, core: RulesCore, calendar: Calendar | None, emit: Emit
    ) -> None:
        self.promise = promise
        self.core = core
        self.calendar: Calendar = calendar or AlwaysOpen()
        self.emit = emit
        compiled = compile_promise(promise)
        if not core.is_registered(compiled.name):
            core.register(compiled)
        self.ruleset = compiled.name
        self.types = record_types(compiled)
        self.typed = typed_fields(promise)
        self._schedule: list[tuple[int, str]] = []  # (instant in µs, bucket) to tick at
        self._waiting: dict[str, list[tuple[int, int, Any]]] = {}  # bucket -> (when, n, item)
        self._clocks = 0

    # --- scopes and facts ----------------------------------------------------------------------

    def scope_of(self, fields: dict[str, Any]) -> str | None:
        value = fields.get(self.promise.scope)
        return None if value is None or value == "" else str(value)

    @staticmethod
    @functools.lru_cache(maxsize=65_536)
    def bucket(scope: str) -> str:
        return str(zlib.crc32(scope.encode()) % BUCKETS)

    def assert_fact(self, fact: Fact) -> list[Firing] | None:
        """Firings, or None if no rule wants ``fact`` (then it is not held: never retract it)."""
        try:
            return self.core.assert_fact(self.ruleset, fact)
        except DuplicateFact:
            # A 32-bit identity-hash collision with a live fact: any other id will do.
            fact["id"] = f"{fact['id']}~"
            return self.core.assert_fact(self.ruleset, fact)

    def assert_held(self, fact: Fact) -> list[Firing]:
        """Assert a fact that some rule always wants (time and counted facts)."""
        firings = self.assert_fact(fact)
        if firings is None:
            raise AssertionError(f"{self.ruleset}: no rule wants {fact['t']} facts")
        return firings

    def retract(self, fact: Fact) -> None:
        self.core.retract_fact(self.ruleset, fact)

    def feed(self, record: Interaction, fields: dict[str, Any], seq: int) -> None:
        if self.types is not None and fields["type"] not in self.types:
            return  # no rule of this promise can take a record of this type
        scope = self.scope_of(fields)
        if scope is None:
            return
        fact = record_fact(record, fields, seq, scope, self.typed)
        firings = self.assert_fact(fact)
        if firings is not None:
            self.on_record(scope, record, fact, firings)

    def on_record(self, scope: str, record: Interaction, fact: Fact, firings: list[Firing]) -> None:
        """React to a record some rule wanted; ``fact`` is held until retracted."""
        raise NotImplementedError

    # --- time ----------------------------------------------------------------------------------

    def schedule(self, instant: int, bucket: str) -> None:
        """Ask for a clock tick in ``bucket`` once the clock reaches ``instant``."""
        heapq.heappush(self._schedule, (instant, bucket))

    def wait(self, instant: int, bucket: str, item: Any) -> None:
        """Offer ``item`` to :meth:`on_time` once the clock reaches ``instant`` in ``bucket``.

        A deadline asserts a time fact (its due or warning point) only then, when the rule
        joining it with the clock can fire: held while it waits, it cost the rules core
        ~17 KB per open opportunity (docs/PERFORMANCE.md). A never promise retracts a
        ``first`` fact then, once its window is over."""
        self._clocks += 1
        heapq.heappush(self._waiting.setdefault(bucket, []), (instant, self._clocks, item))
        self.schedule(instant, bucket)
        if len(self._schedule) > 2 * self.live_waits() + 4_096:
            self._compact()

    def on_time(self, item: Any) -> None:
        """An item handed to :meth:`wait` is due (kinds that wait act on it)."""

    def still_waiting(self, item: Any) -> bool:
        """Whether an item handed to :meth:`wait` still matters (kinds that wait say)."""
        return True

    def live_waits(self) -> int:
        """How many waiting items may still matter (an upper bound)."""
        return len(self._schedule)

    def _compact(self) -> None:
        """Drop waiting items that no longer matter (their opportunity closed before its
        time came), so memory follows open opportunities, not every one ever opened. The
        clock schedule is rebuilt from what still waits (only waiting items schedule ticks):
        it also drops the ticks of items a scope's re-evaluation handed out itself
        (:meth:`tick_bucket`), which :meth:`tick` never pops in the worker."""
        for bucket, entries in list(self._waiting.items()):
            kept = [entry for entry in entries if self.still_waiting(entry[2])]
            heapq.heapify(kept)
            self._waiting[bucket] = kept
        self._schedule = [
            (entry[0], bucket) for bucket, entries in self._waiting.items() for entry in entries
        ]
        heapq.heapify(self._schedule)

    def tick(self, now: int) -> None:
        """Advance the clock: tick every bucket that has something due by ``now``."""
        due: set[str] = set()
        while self._schedule and self._schedule[0][0] <= now:
            due.add(heapq.heappop(self._schedule)[1])
        for bucket in sorted(due):
            self.tick_bucket(bucket, now)

    def tick_bucket(self, bucket: str, now: int) -> None:
        """Hand one session's waiting items whose time has come to :meth:`on_time`, then
        show the clock at ``now`` to the session and act on what it makes fire."""
        waiting = self._waiting.get(bucket)
        while waiting and waiting[0][0] <= now:
            self.on_time(heapq.heappop(waiting)[2])
        if not self.uses_clock:
            return
        self._clocks += 1
        clock = {"id": f"clock#{self._clocks}", "t": CLOCK, "now": now, "sid": bucket, GUARD: 1}
        firings = self.assert_held(clock)
        self.retract(clock)
        if firings:
            self.on_clock(firings, now)

    def on_clock(self, firings: list[Firing], now: int) -> None:
        """Kinds whose rules react to the clock override this."""

    # --- re-evaluation -------------------------------------------------------------------------

    def reset_scope(self, scope: str) -> None:
        """Forget a scope's state and facts, before evaluating its records again."""
        raise NotImplementedError

    def snapshot(self, scope: str) -> dict[str, Any] | None:
        """The scope's state as JSON (engine.evaluation.checkpoint), or None when it cannot
        be continued from (then the next evaluation starts from the scope's first record)."""
        raise NotImplementedError

    def open_keys(self, scope: str) -> set[str]:
        """The outcomes the scope's state holds open (records still to come change them)."""
        return set()

    def opened_after(self, checkpoint: Checkpoint, row: OutcomeRow) -> bool:
        """Whether a stored outcome of the scope was opened after ``checkpoint``: a run
        from there decides it again (opens it, or finds it is no opportunity any more)."""
        return (row.opened_at, row.key) > checkpoint.order

    def restore(self, scope: str, state: dict[str, Any]) -> None:
        """Take up a :meth:`snapshot` of a scope that holds nothing now: its facts go back
        to the rules core (what they make fire was acted on when they first came), its
        times back to the clock."""
        raise NotImplementedError

    def at(self, micros: int) -> datetime:
        return from_micros(micros)
