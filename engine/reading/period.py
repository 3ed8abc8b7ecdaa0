"""The bounds of what one read may ask for: how long a period, how many rows listed.

A dashboard page or report over ``0001-01-01`` to ``9999-12-31`` drew half a million empty
weeks per promise and took tens of seconds, blocking other clients; every question about a
period now passes :meth:`Bounds.check_period` at the edge (API, reports, dashboard), and
lists stop at ``max_rows`` with a count of the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.errors import TooLarge
from engine.settings import Settings


class PeriodTooLong(TooLarge):
    """A period longer than ``PROMISE_MAX_PERIOD_DAYS``; the message names the limit."""


@dataclass(frozen=True)
class Bounds:
    max_period_days: int = 400
    max_rows: int = 500

    @classmethod
    def from_settings(cls, settings: Settings) -> Bounds:
        return cls(settings.max_period_days, settings.report_max_rows)

    @property
    def max_weeks(self) -> int:
        """Weeks a trend may show: those a longest period touches."""
        return self.max_period_days // 7 + 2

    def check_period(self, since: datetime | None, until: datetime | None) -> None:
        """Refuse a period from ``since`` to ``until`` longer than ``max_period_days``.

        A period open at one end or both is all time on that side, as it always was: its
        figures are counted by the database and its trend shows the latest ``max_weeks``,
        so it costs what the data holds, not what the dates span."""
        if since is None or until is None or until - since <= timedelta(self.max_period_days):
            return
        raise PeriodTooLong(
            f"the period from {since.isoformat()} to {until.isoformat()} is "
            f"{(until - since).days} days long; the longest allowed is {self.max_period_days} "
            "days (PROMISE_MAX_PERIOD_DAYS): ask for shorter periods one after another"
        )


DEFAULT_BOUNDS = Bounds()
"""The settings' defaults, for callers outside a server (the CLI's reports, tests)."""
