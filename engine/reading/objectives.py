"""How fast promises burn their error budgets now, for ``/metrics`` and the dashboard: the
burn rates of :mod:`engine.alerting.burn`, measured as the alerts are (over windows ending
at the engine's clock), and which of the promises' objective alerts are open.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from engine.alerting.burn import BURNING, Burn, measure
from engine.alerting.outbox import OBJECTIVE, active_alert
from engine.clock import from_micros
from engine.storage import state_table
from rules.models import Promise


@dataclass(frozen=True)
class Objective:
    """A promise's burn-rate rules as they stand at the engine's clock."""

    promise: Promise
    burns: list[Burn]
    alerted: frozenset[str]
    """The rules (:attr:`rules.models.BurnRate.name`) whose objective alert is open: sent
    as burning, not resolved yet."""


def burn_rates(session: Session, promises: Iterable[Promise]) -> dict[str, list[Burn]]:
    """The burn rates of each of ``promises`` that has burn-rate rules. Before any record
    (no clock yet) nothing was decided in any window."""
    clock = state_table.get_clock(session)
    return {
        p.id: measure(session, p, from_micros(clock))
        if clock is not None
        else [Burn(rule, None, None) for rule in p.burn_rates]
        for p in promises
        if p.burn_rates
    }


def objectives(session: Session, promises: Iterable[Promise]) -> dict[str, Objective]:
    """:func:`burn_rates`, with the objective alerts open for each rule."""
    by_id = {p.id: p for p in promises}
    return {
        pid: Objective(
            by_id[pid],
            burns,
            frozenset(
                b.rule.name
                for b in burns
                if active_alert(session, pid, b.key, BURNING, kind=OBJECTIVE) is not None
            ),
        )
        for pid, burns in burn_rates(session, by_id.values()).items()
    }
