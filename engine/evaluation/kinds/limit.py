"""``limit``: at most ``max`` counted records per scope, within a sliding window.

durable-rules picks the counted records; the engine numbers them per scope in event-time
order and posts ``counted`` facts, and the ``over`` rule joins the k-th with the
(k - max)-th: inside the window means the window holds more than ``max``. Only the last
``max`` counted facts of a scope can still join, so older ones are retracted.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from engine.evaluation.rules_core import Fact, Firing
from engine.evaluation.runner import Runner
from engine.outcomes import Outcome
from engine.records import Interaction
from rules.compiler import COUNTED, GUARD
from rules.models import LimitPromise


@dataclass
class _Scope:
    outcome: Outcome
    counted: list[str] = field(default_factory=list)  # record ids, k = index + 1
    live: deque[Fact] = field(default_factory=deque)


class LimitRunner(Runner):
    promise: LimitPromise

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.scopes: dict[str, _Scope] = {}

    def on_record(self, scope: str, record: Interaction, fact: Fact, firings: list[Firing]) -> None:
        self.retract(fact)
        if not any(f.rule == "count" for f in firings):
            return
        state = self.scopes.get(scope)
        if state is None:
            state = _Scope(
                Outcome(
                    promise=self.promise.id,
                    version=self.promise.version,
                    key=scope,
                    scope=scope,
                    customer_id=record.customer_id,
                    channel=record.channel,
                    state="kept",
                    opened_at=record.occurred_at,
                )
            )
            self.scopes[scope] = state
        state.counted.append(record.id)
        k = len(state.counted)
        counted = {
            "id": f"{record.id}#{k}",
            "t": COUNTED,
            "k": k,
            "at": record.at,
            "scope": scope,
            "sid": self.bucket(scope),
            GUARD: 1,
        }
        over = [f for f in self.assert_held(counted) if f.rule == "over"]
        state.live.append(counted)
        while len(state.live) > self.promise.max:
            self.retract(state.live.popleft())
        outcome = state.outcome
        if outcome.state == "broken":
            return
        if over:
            first_k = over[0].facts["a"]["k"] if "a" in over[0].facts else k
            outcome.state = "broken"
            outcome.evidence = state.counted[first_k - 1 : k]
        else:
            outcome.evidence = list(state.counted)
        outcome.roles = ["count"] * len(outcome.evidence)
        outcome.decided_at = record.occurred_at
        self.emit(outcome)

    def reset_scope(self, scope: str) -> None:
        state = self.scopes.pop(scope, None)
        if state is not None:
            for fact in state.live:
                self.retract(fact)
