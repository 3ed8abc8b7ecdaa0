"""``never``: a pattern that must not occur (Ask Once).

durable-rules joins each ``then`` record with the earlier ``first`` records of its scope
that have the same ``same`` fields inside the window: the window is the rule's own join,
so verdicts never depend on when a fact leaves. ``first`` facts stay in the session while
the window can still reach them, and are retracted once the clock has left it
(:meth:`Runner.wait`, the same clock step in replay and in a scope's re-evaluation).
"""

from __future__ import annotations

from typing import Any

import orjson

from engine.evaluation.rules_core import Fact, Firing
from engine.evaluation.runner import Runner
from engine.outcomes import Outcome
from engine.records import Interaction
from rules.compiler import MICROSECOND, TAG
from rules.models import NeverPromise


class NeverRunner(Runner):
    promise: NeverPromise

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # scope -> record id -> the held ``first`` fact (whose own id may carry a suffix,
        # Runner.assert_fact), in event-time order
        self.firsts: dict[str, dict[str, Fact]] = {}
        self._held = 0
        self._window = (
            self.promise.within // MICROSECOND if self.promise.within is not None else None
        )

    def on_record(self, scope: str, record: Interaction, fact: Fact, firings: list[Firing]) -> None:
        rules = {f.rule for f in firings}
        if "then" in rules:
            earlier = [f.facts["a"] for f in firings if f.rule == "repeat"]
            outcome = Outcome(
                promise=self.promise.id,
                version=self.promise.version,
                key=record.id,
                scope=scope,
                customer_id=record.customer_id,
                channel=record.channel,
                state="kept",
                opened_at=record.occurred_at,
                decided_at=record.occurred_at,
                evidence=[record.id],
                roles=["then"],
            )
            if earlier:
                latest = max(earlier, key=lambda a: (a["at"], a["seq"]))
                outcome.state = "broken"
                outcome.evidence = [latest["id"], record.id]
                outcome.roles = ["first", "then"]
            self.emit(outcome)
        if "first" in rules:
            self._hold(scope, record.id, fact)
        else:
            self.retract(fact)

    def _hold(self, scope: str, record_id: str, fact: Fact) -> None:
        self.firsts.setdefault(scope, {})[record_id] = fact
        self._held += 1
        if self._window is not None:  # once the clock passes it, nothing can repeat it
            self.wait(fact["at"] + self._window + 1, fact["sid"], (scope, record_id, fact))

    def given(self, scope: str, now: int) -> dict[str, dict[str, Any]]:
        """What the customer of ``scope`` has already given, as of ``now`` (µs): for each
        ``first`` record a later ``then`` would still repeat (inside the window), its id and
        the values of its ``same`` fields, named as the rule author wrote them."""
        return {
            record_id: {name: fact.get(name) for name in self.promise.same}
            for record_id, fact in self.firsts.get(scope, {}).items()
            if self._window is None or fact["at"] + self._window >= now
        }

    def on_time(self, item: tuple[str, str, Fact]) -> None:
        """A ``first`` record has left the window: no later record can repeat it."""
        if self.still_waiting(item):
            scope, record_id, fact = item
            held = self.firsts[scope]
            del held[record_id]
            self._held -= 1
            self.retract(fact)
            if not held:
                del self.firsts[scope]

    def still_waiting(self, item: tuple[str, str, Fact]) -> bool:
        scope, record_id, fact = item
        return self.firsts.get(scope, {}).get(record_id) is fact

    def live_waits(self) -> int:
        return self._held

    def snapshot(self, scope: str) -> dict[str, Any] | None:
        """The held ``first`` records, only the latest of each distinct ``same`` value: a
        later ``then`` repeats the latest one if it repeats any (the verdict names the
        latest), so the state grows with what a customer gave, not with how often."""
        latest: dict[bytes, tuple[str, Fact]] = {}
        for record_id, fact in self.firsts.get(scope, {}).items():  # in event-time order
            latest[self._given_key(fact)] = (record_id, fact)
        return {"firsts": sorted(latest.values(), key=lambda item: item[1]["seq"])}

    def _given_key(self, fact: Fact) -> bytes:
        """What the ``same`` joins compare: each value, its presence, and its kind."""
        return orjson.dumps(
            [[name in fact, fact.get(name), fact.get(TAG + name)] for name in self.promise.same]
        )

    def restore(self, scope: str, state: dict[str, Any]) -> None:
        for record_id, fact in state["firsts"]:
            if self.assert_fact(fact) is None:
                raise AssertionError(f"{self.ruleset}: no rule wants a restored first record")
            self._hold(scope, record_id, fact)

    def reset_scope(self, scope: str) -> None:
        held = self.firsts.pop(scope, {})
        self._held -= len(held)
        for fact in held.values():
            self.retract(fact)
