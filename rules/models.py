"""The promise language as the rest of the system sees it: validated, typed, immutable.

These dataclasses are built by :mod:`rules.loader` from YAML; nothing here reads files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from rules.business_time import Calendar
from rules.durations import BusinessDays, format_duration
from rules.regex import CoreRegex

Scalar = str | int | float | bool

RECORD_FIELDS = (
    "id",
    "customer_id",
    "case_id",
    "channel",
    "direction",
    "type",
    "team",
    "agent",
)
"""Record fields a match, ``scope`` or ``same`` may name (besides ``attributes.<path>``)."""

CHANNELS = ("phone", "email", "chat", "web", "sms", "social", "video", "branch", "app", "other")
DIRECTIONS = ("inbound", "outbound", "internal")


# --- conditions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Equals:
    value: Scalar


@dataclass(frozen=True)
class OneOf:
    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class Compare:
    op: Literal["gte", "gt", "lte", "lt", "ne"]
    value: Scalar


@dataclass(frozen=True)
class Exists:
    present: bool


@dataclass(frozen=True)
class Matches:
    source: str
    core: CoreRegex = field(compare=False)


@dataclass(frozen=True)
class Not:
    inner: Condition


Condition = Equals | OneOf | Compare | Exists | Matches | Not


@dataclass(frozen=True)
class Match:
    """All conditions must hold; keys are record fields or ``attributes.<path>``."""

    conditions: tuple[tuple[str, Condition], ...]


# --- promises ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BurnRate:
    """Alert when the error budget burns at ``factor`` times its sustainable rate over both
    windows ending at the engine's clock: the long one says it is serious, the short one
    that it is still happening (so the alert resolves soon after the burn stops)."""

    long: timedelta
    short: timedelta
    factor: float

    @property
    def name(self) -> str:
        return f"{format_duration(self.long)}/{format_duration(self.short)}"


DEFAULT_BURN_RATES = (
    BurnRate(timedelta(hours=1), timedelta(minutes=5), 14.4),
    BurnRate(timedelta(hours=6), timedelta(minutes=30), 6.0),
)
"""The classic pair: 2% of a 30-day budget in an hour, 5% in six hours."""


@dataclass(frozen=True)
class PromiseBase:
    id: str
    title: str
    owner: str
    scope: str
    version: str
    source: str = field(compare=False)
    description: str | None = None
    objective: float | None = None
    burn_rates: tuple[BurnRate, ...] = field(default=(), compare=False)
    """Alerting, not meaning: not part of the version (an edit re-decides no outcome).
    For a promise with an objective below 1 that names none: its team's
    (:attr:`Team.burn_rates`), else :data:`DEFAULT_BURN_RATES`."""


@dataclass(frozen=True)
class DeadlinePromise(PromiseBase):
    kind: Literal["deadline"] = "deadline"
    start: Match = Match(())
    stop: Match = Match(())
    within: timedelta | BusinessDays = timedelta(0)
    pause: Match | None = None
    resume: Match | None = None
    cancel: Match | None = None
    calendar: str | None = None
    warn_at: float | None = None


@dataclass(frozen=True)
class NeverPromise(PromiseBase):
    kind: Literal["never"] = "never"
    first: Match = Match(())
    then: Match = Match(())
    same: tuple[str, ...] = ()
    within: timedelta | None = None


@dataclass(frozen=True)
class LimitPromise(PromiseBase):
    kind: Literal["limit"] = "limit"
    count: Match = Match(())
    max: int = 0
    within: timedelta | None = None


Promise = DeadlinePromise | NeverPromise | LimitPromise

ROLES = ("start", "stop", "pause", "resume", "cancel", "first", "then", "count")
"""The keys of a promise that hold a match, in every kind."""


def roles(promise: Promise) -> dict[str, Match]:
    """The matches ``promise`` has, by role."""
    return {role: match for role in ROLES if (match := getattr(promise, role, None)) is not None}


# --- teams and calendars -----------------------------------------------------------------------


AlertChoice = Literal["each", "objective", "all"]
"""What a route receives: an alert per opportunity (and corrections), the promise's
objective (burn-rate) alerts, or both."""


@dataclass(frozen=True)
class WebhookRoute:
    url: str
    secret_env: str | None = None
    alerts: AlertChoice = field(default="each", kw_only=True)


@dataclass(frozen=True)
class EmailRoute:
    address: str
    alerts: AlertChoice = field(default="each", kw_only=True)


@dataclass(frozen=True)
class LogRoute:
    alerts: AlertChoice = field(default="each", kw_only=True)


@dataclass(frozen=True)
class ChatRoute:
    """A Slack or Microsoft Teams channel's incoming webhook, whose URL (a secret) is read
    from the environment variable ``url_env``."""

    platform: Literal["slack", "teams"]
    url_env: str
    alerts: AlertChoice = field(default="each", kw_only=True)


Route = WebhookRoute | EmailRoute | LogRoute | ChatRoute


@dataclass(frozen=True)
class Silence:
    """Alerts of ``team`` (only ``promise``'s, when given) are not sent in [starts, ends)."""

    team: str
    starts: datetime
    ends: datetime
    reason: str
    by: str
    promise: str | None = None

    def covers(self, team: str, promise: str, moment: datetime) -> bool:
        return (
            self.team == team
            and self.promise in (None, promise)
            and self.starts <= moment < self.ends
        )


@dataclass(frozen=True)
class Team:
    id: str
    name: str
    routes: tuple[Route, ...] = ()
    digest_every: timedelta | None = None
    """Send one message per this period listing new alerts, instead of one per alert."""
    silences: tuple[Silence, ...] = ()
    timezone: str | None = None
    """Where the team reads times (alerts, reports) for promises without a calendar."""
    burn_rates: tuple[BurnRate, ...] | None = None
    """The burn rates of the team's promises that have an objective and name none of their
    own; None: :data:`DEFAULT_BURN_RATES`."""


@dataclass(frozen=True)
class Catalog:
    """Everything loaded from a promises directory, cross-checked."""

    promises: Mapping[str, Promise]
    teams: Mapping[str, Team]
    calendars: Mapping[str, Calendar]

    def calendar_for(self, promise: Promise) -> Calendar | None:
        name = getattr(promise, "calendar", None)
        return self.calendars[name] if name else None

    def timezone_for(self, promise: Promise) -> str:
        """The zone a person reads ``promise``'s times in: its calendar's, else its owning
        team's (teams.yaml), else UTC."""
        zone = getattr(self.calendar_for(promise), "timezone", None)
        team = self.teams.get(promise.owner)
        return str(zone or (team.timezone if team is not None else None) or "UTC")
