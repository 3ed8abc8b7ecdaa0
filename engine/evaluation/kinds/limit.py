"""``limit``: at most ``max`` counted records per scope, within a sliding window.

durable-rules picks the counted records; the engine numbers them per scope in event-time
order and posts ``counted`` facts, and the ``over`` rule joins the k-th with the
(k - max)-th: inside the window means the window ending at the k-th holds more than
``max``. Only the last ``max`` counted facts of a scope can still join, so older ones are
retracted.

With a window, each counted record is an opportunity of its own (broken when ``over``
fires for it), so every excess episode is reported, however long after the last one.
Without one, the scope is the opportunity: once over, it is over for good
(docs/semantics.md, "limit").
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from engine.evaluation.checkpoint import Checkpoint, outcome_from, outcome_state
from engine.evaluation.rules_core import Fact, Firing
from engine.evaluation.runner import Runner
from engine.outcomes import Outcome
from engine.records import Interaction
from engine.storage.schema import OutcomeRow
from rules.compiler import COUNTED, GUARD
from rules.models import LimitPromise


@dataclass
class _Scope:
    ids: deque[str]  # counted record ids: every one, or with a window the latest max + 1
    k: int = 0  # how many records were counted
    live: deque[Fact] = field(default_factory=deque)
    whole: Outcome | None = None  # without a window: the scope's one opportunity


class LimitRunner(Runner):
    promise: LimitPromise

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.scopes: dict[str, _Scope] = {}
        self._windowed = self.promise.within is not None

    def on_record(self, scope: str, record: Interaction, fact: Fact, firings: list[Firing]) -> None:
        self.retract(fact)
        if not any(f.rule == "count" for f in firings):
            return
        state = self.scopes.get(scope) or self._new_scope(scope)
        state.ids.append(record.id)
        state.k += 1
        counted = {
            "id": f"{record.id}#{state.k}",
            "t": COUNTED,
            "k": state.k,
            "at": record.at,
            "scope": scope,
            "sid": self.bucket(scope),
            GUARD: 1,
        }
        over = any(f.rule == "over" for f in self.assert_held(counted))
        state.live.append(counted)
        while len(state.live) > self.promise.max:
            self.retract(state.live.popleft())
        if self._windowed:
            self._each_record(scope, record, state, over)
        else:
            self._whole_scope(scope, record, state, over)

    def _each_record(self, scope: str, record: Interaction, state: _Scope, over: bool) -> None:
        """The record is an opportunity: broken with the ``max`` + 1 counted records that
        put its window over (itself last), else kept on its own evidence."""
        outcome = self._outcome(record.id, scope, record)
        outcome.decided_at = record.occurred_at
        if over:
            outcome.state = "broken"
            outcome.evidence = list(state.ids)
        else:
            outcome.evidence = [record.id]
        outcome.roles = ["count"] * len(outcome.evidence)
        self.emit(outcome)

    def _whole_scope(self, scope: str, record: Interaction, state: _Scope, over: bool) -> None:
        """The scope is the opportunity, opened at its first counted record: kept so far
        (every counted record as evidence), or broken for good at the first excess."""
        if state.whole is None:
            state.whole = self._outcome(scope, scope, record)
        outcome = state.whole
        if outcome.state == "broken":
            return
        if over:
            outcome.state = "broken"
            outcome.evidence = list(state.ids)[-(self.promise.max + 1) :]
        else:
            outcome.evidence = list(state.ids)
        outcome.roles = ["count"] * len(outcome.evidence)
        outcome.decided_at = record.occurred_at
        self.emit(outcome)

    def _outcome(self, key: str, scope: str, record: Interaction) -> Outcome:
        return Outcome(
            promise=self.promise.id,
            version=self.promise.version,
            key=key,
            scope=scope,
            customer_id=record.customer_id,
            channel=record.channel,
            state="kept",
            opened_at=record.occurred_at,
        )

    def _new_scope(self, scope: str) -> _Scope:
        state = _Scope(deque(maxlen=self.promise.max + 1 if self._windowed else None))
        self.scopes[scope] = state
        return state

    def snapshot(self, scope: str) -> dict[str, Any] | None:
        """The count, the counted ids the evidence may name, the counted facts that can
        still join, and without a window the scope's opportunity."""
        state = self.scopes.get(scope)
        if state is None:
            return {"k": 0}
        whole = state.whole
        return {
            "k": state.k,
            "ids": list(state.ids),
            "live": list(state.live),
            "whole": outcome_state(whole) if whole is not None else None,
        }

    def open_keys(self, scope: str) -> set[str]:
        state = self.scopes.get(scope)
        return {state.whole.key} if state is not None and state.whole is not None else set()

    def opened_after(self, checkpoint: Checkpoint, row: OutcomeRow) -> bool:
        """Without a window, the scope's one opportunity goes on whatever comes later."""
        return self._windowed and super().opened_after(checkpoint, row)

    def restore(self, scope: str, state: dict[str, Any]) -> None:
        if not state["k"]:
            return
        restored = self._new_scope(scope)
        restored.k = state["k"]
        restored.ids.extend(state["ids"])
        for fact in state["live"]:
            self.assert_held(fact)
            restored.live.append(fact)
        if state["whole"] is not None:
            restored.whole = outcome_from(state["whole"])

    def reset_scope(self, scope: str) -> None:
        state = self.scopes.pop(scope, None)
        if state is not None:
            for fact in state.live:
                self.retract(fact)
