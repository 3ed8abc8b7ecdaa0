"""Objective alerts: a promise on course to miss its ``objective``, by multi-window burn rates
of its error budget, decided in event time (windows end at the engine's clock).

The burn rate over a window is the broken share of the opportunities decided in it, divided
by the share the objective allows: ``(broken / decided) / (1 - objective)``; 1 spends the
budget exactly as fast as the objective can bear. An alert opens, once, when both windows
of a :class:`rules.models.BurnRate` burn at its factor or more, and is resolved when either
stops (the short window drops first: the burn is over). The rows go through the outbox like
every alert, to the team's routes that take ``alerts: objective`` (or ``all``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.alerting.outbox import OBJECTIVE, active_alert, takes
from engine.clock import now
from engine.storage.schema import OutcomeRow
from rules.durations import format_duration
from rules.models import BurnRate, Promise, Team

BURNING = "burning"
RESOLVED = "resolved"


@dataclass(frozen=True)
class Burn:
    """One burn-rate rule of a promise, measured at a moment."""

    rule: BurnRate
    long: float | None
    """The burn rate over the long window; None when nothing was decided in it."""
    short: float | None

    @property
    def key(self) -> str:
        """Names the alert among the promise's (``outcome_key`` of its rows)."""
        return f"burn {self.rule.name}"

    @property
    def burning(self) -> bool:
        return all(r is not None and r >= self.rule.factor for r in (self.long, self.short))


def wanted(promise: Promise, team: Team | None) -> bool:
    """Whether ``promise`` has burn rates and its team a route that takes objective alerts."""
    return bool(promise.burn_rates) and any(takes(r, OBJECTIVE) for r in team.routes if team)


def rate(broken: int, decided: int, objective: float) -> float | None:
    """The burn rate of ``broken`` among ``decided`` opportunities; None when none were.
    Rounded, so that a rate exactly at a factor is not a hair under it in binary floating
    point (1 broken in 10 against 95% is 2, not 1.9999999999999982)."""
    return round(broken / decided / (1 - objective), 9) if decided else None


def measure(session: Session, promise: Promise, moment: datetime) -> list[Burn]:
    """Each of ``promise``'s burn rates over the windows ending at ``moment``: one query."""
    if promise.objective is None or not promise.burn_rates:
        return []
    spans = sorted({span for rule in promise.burn_rates for span in (rule.long, rule.short)})
    columns = []
    for span in spans:
        inside = OutcomeRow.decided_at > moment - span
        columns.append(func.count().filter(inside))
        columns.append(func.count().filter(inside, OutcomeRow.state == "broken"))
    longest = moment - spans[-1]
    counts = session.execute(
        select(*columns).where(
            OutcomeRow.promise_id == promise.id,
            OutcomeRow.state.in_(("kept", "broken")),
            OutcomeRow.decided_at > longest,
            OutcomeRow.decided_at <= moment,
        )
    ).one()
    rates = {
        span: rate(counts[2 * i + 1], counts[2 * i], promise.objective)
        for i, span in enumerate(spans)
    }
    return [Burn(rule, rates[rule.long], rates[rule.short]) for rule in promise.burn_rates]


def owed(session: Session, promise: Promise, moment: datetime) -> list[dict[str, Any]]:
    """The objective alerts to open, and those to resolve, at ``moment`` (rows for
    :func:`engine.alerting.outbox.queue`)."""
    rows = []
    for burn in measure(session, promise, moment):
        opened = active_alert(session, promise.id, burn.key, BURNING, kind=OBJECTIVE)
        if burn.burning and opened is None:
            rows.append(_row(promise, burn, BURNING, moment, None))
        elif not burn.burning and opened is not None:
            rows.append(_row(promise, burn, RESOLVED, moment, opened))
    return rows


def _row(
    promise: Promise, burn: Burn, state: str, moment: datetime, corrects: int | None
) -> dict[str, Any]:
    def shown(rate: float | None) -> str:
        return "nothing decided" if rate is None else f"{rate:.1f}x"

    rule = burn.rule
    reason = (
        f"error budget burning {shown(burn.long)} over {format_duration(rule.long)} and "
        f"{shown(burn.short)} over {format_duration(rule.short)} at {moment.isoformat()} "
        f"(alert at {rule.factor:g}x; objective {promise.objective:.2%})"
    )
    return {
        "kind": OBJECTIVE,
        "team": promise.owner,
        "promise_id": promise.id,
        "outcome_key": burn.key,
        "state": state,
        "corrects": corrects,
        "customer_id": None,
        "outcome": None,
        "reason": reason,
        "created_at": now(),
    }
