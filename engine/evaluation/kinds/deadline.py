"""``deadline``: something must follow something else within a (business) time.

durable-rules tells which roles a record plays (start, stop, pause, resume, cancel) and,
through ``due``/``warn`` facts joined with the clock, when a deadline has passed or its
warning point is reached; Python keeps the per-scope state machine and computes due times
on the business calendar, which rules cannot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from engine.clock import to_micros
from engine.evaluation.checkpoint import Checkpoint, micros_of, outcome_from, outcome_state, span_of
from engine.evaluation.rules_core import Fact, Firing
from engine.evaluation.runner import Runner
from engine.outcomes import Outcome, Role, State
from engine.records import Interaction
from engine.storage.schema import OutcomeRow
from rules.business_time import BusinessCalendar
from rules.compiler import DUE, GUARD, WARN
from rules.durations import BusinessDays
from rules.models import DeadlinePromise

_ROLE_ORDER = ("cancel", "stop", "resume", "pause", "start")


@dataclass
class _Opportunity:
    outcome: Outcome
    scope: str
    due: int | None  # µs; None while paused
    warn: int | None  # µs; None once reached, or without warn_at, or while paused
    due_id: str | None = None  # the current time facts' ids; each is asserted only when
    warn_id: str | None = None  # the clock reaches it (Runner.wait), then held until used
    held: list[Fact] = field(default_factory=list)
    paused_due: timedelta | None = None  # business time left when paused
    paused_warn: timedelta | None = None

    @property
    def broken(self) -> bool:
        return self.outcome.state == "broken"


class DeadlineRunner(Runner):
    promise: DeadlinePromise
    uses_clock = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.open: dict[str, _Opportunity] = {}
        self.opened: dict[str, int] = {}  # scope -> opportunities opened so far
        self._by_key: dict[str, _Opportunity] = {}

    def on_record(self, scope: str, record: Interaction, fact: Fact, firings: list[Firing]) -> None:
        self.retract(fact)
        roles = {f.rule for f in firings}
        for role in _ROLE_ORDER:
            if role in roles:
                getattr(self, f"_{role}")(scope, record)

    # --- roles ---------------------------------------------------------------------------------

    def _start(self, scope: str, record: Interaction) -> None:
        if scope in self.open:
            return
        number = self.opened.get(scope, 0) + 1
        self.opened[scope] = number
        outcome = Outcome(
            promise=self.promise.id,
            version=self.promise.version,
            key=f"{scope}#{number}",
            scope=scope,
            customer_id=record.customer_id,
            channel=record.channel,
            state="pending",
            opened_at=record.occurred_at,
            evidence=[record.id],
            roles=["start"],
        )
        opp = _Opportunity(outcome, scope, due=None, warn=None)
        self.open[scope] = opp
        self._by_key[outcome.key] = opp
        self._set_times(opp, *self._deadline(record.occurred_at))
        self.emit(outcome)

    def _stop(self, scope: str, record: Interaction) -> None:
        self._close_by(scope, record, "kept", "stop")

    def _cancel(self, scope: str, record: Interaction) -> None:
        self._close_by(scope, record, "cancelled", "cancel")

    def _close_by(self, scope: str, record: Interaction, state: State, role: Role) -> None:
        """Close the open opportunity; one already broken stays broken (broken-late)."""
        opp = self.open.get(scope)
        if opp is None:
            return
        if not opp.broken:
            opp.outcome.state = state
            opp.outcome.decided_at = record.occurred_at
        opp.outcome.evidence.append(record.id)
        opp.outcome.roles.append(role)
        self._close(opp)

    def _pause(self, scope: str, record: Interaction) -> None:
        opp = self.open.get(scope)
        if opp is None or opp.broken or opp.due is None:
            return
        moment = record.occurred_at
        opp.paused_due = self.calendar.between(moment, self.at(opp.due))
        opp.paused_warn = (
            self.calendar.between(moment, self.at(opp.warn)) if opp.warn is not None else None
        )
        self._drop_facts(opp)
        opp.due = opp.warn = None
        opp.outcome.due_at = opp.outcome.warn_at = None
        self.emit(opp.outcome)

    def _resume(self, scope: str, record: Interaction) -> None:
        opp = self.open.get(scope)
        if opp is None or opp.paused_due is None:
            return
        moment, warn_remaining = record.occurred_at, opp.paused_warn
        due_at = self.calendar.add(moment, opp.paused_due)
        warn_at = self.calendar.add(moment, warn_remaining) if warn_remaining is not None else None
        opp.paused_due = opp.paused_warn = None
        self._set_times(opp, due_at, warn_at)
        self.emit(opp.outcome)

    # --- the clock -----------------------------------------------------------------------------

    def on_clock(self, firings: list[Firing], now: int) -> None:
        # Warnings first: if both points passed at one tick, the deadline's verdict wins.
        for firing in sorted(firings, key=lambda f: f.rule != "warn"):
            fact = firing.facts["d"]
            opp = self._by_key.get(fact["opp"])
            if opp is None:
                continue
            if firing.rule == "warn" and opp.warn_id == fact["id"]:
                held = next(f for f in opp.held if f["id"] == fact["id"])
                self.retract(held)
                opp.held.remove(held)
                opp.warn_id, opp.warn = None, None
                if opp.outcome.state == "pending":
                    opp.outcome.state = "at_risk"
                    self.emit(opp.outcome)
            elif firing.rule == "expire" and opp.due_id == fact["id"]:
                self._drop_facts(opp)
                opp.outcome.state = "broken"
                opp.outcome.decided_at = opp.outcome.due_at
                self.emit(opp.outcome)

    # --- helpers -------------------------------------------------------------------------------

    def _deadline(self, opened_at: datetime) -> tuple[datetime, datetime | None]:
        """Due time and warning point of an opportunity opened at ``opened_at``; the warning
        falls at ``warn_at`` of the business time it is given (docs/semantics.md)."""
        within = self.promise.within
        if isinstance(within, BusinessDays):
            assert isinstance(self.calendar, BusinessCalendar)  # the loader refuses bd without
            due_at = self.calendar.add_business_days(opened_at, within.days)
            allowed = self.calendar.between(opened_at, due_at)
        else:
            due_at = self.calendar.add(opened_at, within)
            allowed = within
        if self.promise.warn_at is None:
            return due_at, None
        warn = timedelta(seconds=round(allowed.total_seconds() * self.promise.warn_at))
        return due_at, self.calendar.add(opened_at, warn)

    def _set_times(self, opp: _Opportunity, due_at: datetime, warn_at: datetime | None) -> None:
        opp.due = to_micros(due_at)
        opp.outcome.due_at = due_at
        self._wait_due(opp)
        if warn_at is not None:
            opp.warn = to_micros(warn_at)
            opp.outcome.warn_at = warn_at
            self._wait_warn(opp)

    def _wait_due(self, opp: _Opportunity) -> None:
        assert opp.due is not None
        self._clocks += 1
        opp.due_id = f"{DUE}#{self._clocks}"
        self.wait(opp.due + 1, self.bucket(opp.scope), (opp, opp.due_id))  # strictly after

    def _wait_warn(self, opp: _Opportunity) -> None:
        assert opp.warn is not None
        self._clocks += 1
        opp.warn_id = f"{WARN}#{self._clocks}"
        self.wait(opp.warn, self.bucket(opp.scope), (opp, opp.warn_id))

    def on_time(self, item: tuple[_Opportunity, str]) -> None:
        """The clock reached a due or warning point: show its fact to the rules."""
        if self.still_waiting(item):
            opp, fact_id = item
            due = fact_id == opp.due_id
            fact = {
                "id": fact_id,
                "t": DUE if due else WARN,
                "at": opp.due if due else opp.warn,
                "opp": opp.outcome.key,
                "scope": opp.scope,
                "sid": self.bucket(opp.scope),
                GUARD: 1,
            }
            self.assert_held(fact)
            opp.held.append(fact)

    def still_waiting(self, item: tuple[_Opportunity, str]) -> bool:
        opp, fact_id = item
        return self._by_key.get(opp.outcome.key) is opp and fact_id in (opp.due_id, opp.warn_id)

    def live_waits(self) -> int:
        return 2 * len(self.open)

    def _drop_facts(self, opp: _Opportunity) -> None:
        """Retract what the rules core holds (only that: retracting a fact it never held
        corrupts its memory, docs/durable-rules-findings.md)."""
        for fact in opp.held:
            self.retract(fact)
        opp.held.clear()
        opp.due_id = opp.warn_id = None

    def _close(self, opp: _Opportunity) -> None:
        self._drop_facts(opp)
        del self.open[opp.scope]
        del self._by_key[opp.outcome.key]
        self.emit(opp.outcome)

    def snapshot(self, scope: str) -> dict[str, Any] | None:
        """How many opportunities the scope opened, and the open one: its outcome, times,
        the business time left if paused, and which points still wait for the clock. A
        due or warning fact is held only within the tick that reached it, so none is held
        between records; were one held, the scope is not continued from here."""
        opp = self.open.get(scope)
        if opp is None:
            return {"opened": self.opened.get(scope, 0), "open": None}
        if opp.held:
            return None
        return {
            "opened": self.opened.get(scope, 0),
            "open": {
                "outcome": outcome_state(opp.outcome),
                "due": opp.due,
                "warn": opp.warn,
                "due_waits": opp.due_id is not None,
                "warn_waits": opp.warn_id is not None,
                "paused_due": micros_of(opp.paused_due),
                "paused_warn": micros_of(opp.paused_warn),
            },
        }

    def open_keys(self, scope: str) -> set[str]:
        opp = self.open.get(scope)
        return {opp.outcome.key} if opp is not None else set()

    def opened_after(self, checkpoint: Checkpoint, row: OutcomeRow) -> bool:
        """Opportunities are numbered in the order they open: those after the checkpoint's
        count."""
        number = row.key.rpartition("#")[2]
        return number.isdigit() and int(number) > checkpoint.state["opened"]

    def restore(self, scope: str, state: dict[str, Any]) -> None:
        if state["opened"]:
            self.opened[scope] = state["opened"]
        saved = state["open"]
        if saved is None:
            return
        opp = _Opportunity(
            outcome_from(saved["outcome"]),
            scope,
            due=saved["due"],
            warn=saved["warn"],
            paused_due=span_of(saved["paused_due"]),
            paused_warn=span_of(saved["paused_warn"]),
        )
        self.open[scope] = opp
        self._by_key[opp.outcome.key] = opp
        if saved["due_waits"]:
            self._wait_due(opp)
        if saved["warn_waits"]:
            self._wait_warn(opp)

    def reset_scope(self, scope: str) -> None:
        opp = self.open.pop(scope, None)
        if opp is not None:
            self._drop_facts(opp)
            self._by_key.pop(opp.outcome.key, None)
        self.opened.pop(scope, None)
