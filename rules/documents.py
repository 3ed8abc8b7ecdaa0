"""The YAML documents' schema, as pydantic models: types, required and unknown keys.

These mirror what a rule author writes; :mod:`rules.loader` turns them into the typed
dataclasses of :mod:`rules.models`. Match expressions stay raw here and are parsed by
:mod:`rules.matches`, which can point at their nested keys.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from rules.durations import parse_duration

PROMISE_ID = re.compile(r"[a-z0-9][a-z0-9-]*")
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

RawMatch = dict[str, Any]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _unit_interval(name: str, value: float | None) -> float | None:
    if value is not None and not 0 < value <= 1:
        raise ValueError(f"{name} must be a share in (0, 1], e.g. 0.95; got {value}")
    return value


class BurnRateDoc(_Strict):
    """One multi-window burn-rate alert: the error budget burns at least ``factor`` times the
    sustainable rate over both the ``long`` and the ``short`` window ending now."""

    long: timedelta
    short: timedelta
    factor: Annotated[float, Field(gt=0)]

    @field_validator("long", "short", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @model_validator(mode="after")
    def _short_within_long(self) -> BurnRateDoc:
        if self.short >= self.long:
            raise ValueError(
                "the short window must be shorter than the long one (it says the burn is still "
                "going on), e.g. {long: 1h, short: 5m, factor: 14.4}"
            )
        return self


class PromiseDoc(_Strict):
    id: str
    title: str
    owner: str
    kind: str
    scope: str
    description: str | None = None
    objective: float | None = None
    burn_rates: list[BurnRateDoc] | None = None

    @field_validator("burn_rates")
    @classmethod
    def _budget_to_burn(
        cls, value: list[BurnRateDoc] | None, info: ValidationInfo
    ) -> list[BurnRateDoc] | None:
        objective = info.data.get("objective")
        if value is not None and (objective is None or objective >= 1):
            now = "there is none" if objective is None else f"it is {objective}"
            raise ValueError(
                "burn_rates need an error budget to burn: an objective below 1, "
                f"e.g. objective: 0.95 ({now})"
            )
        return value

    @field_validator("id")
    @classmethod
    def _id_is_a_slug(cls, value: str) -> str:
        if not PROMISE_ID.fullmatch(value):
            raise ValueError(
                f"promise id {value!r} must be lower-case letters, digits and dashes, e.g. ask-once"
            )
        return value

    @field_validator("objective")
    @classmethod
    def _objective_share(cls, value: float | None) -> float | None:
        return _unit_interval("objective", value)


class DeadlineDoc(PromiseDoc):
    kind: Literal["deadline"]
    start: RawMatch
    stop: RawMatch
    within: str
    pause: RawMatch | None = None
    resume: RawMatch | None = None
    cancel: RawMatch | None = None
    calendar: str | None = None
    warn_at: float | None = None

    @field_validator("warn_at")
    @classmethod
    def _warn_share(cls, value: float | None) -> float | None:
        return _unit_interval("warn_at", value)


class NeverDoc(PromiseDoc):
    kind: Literal["never"]
    first: RawMatch
    then: RawMatch
    same: list[str] = []
    within: str | None = None


class LimitDoc(PromiseDoc):
    kind: Literal["limit"]
    count: RawMatch
    max: Annotated[int, Field(ge=0)]
    within: str | None = None


KIND_DOCS: dict[str, type[PromiseDoc]] = {
    "deadline": DeadlineDoc,
    "never": NeverDoc,
    "limit": LimitDoc,
}


class _RouteDoc(_Strict):
    alerts: Literal["each", "objective", "all"] = "each"
    """An alert per opportunity (and corrections), the objective's burn-rate alerts, or both."""


class WebhookRouteDoc(_RouteDoc):
    webhook: str
    secret: str | None = None

    @field_validator("secret")
    @classmethod
    def _secret_from_environment(cls, value: str | None) -> str | None:
        if value is not None and not ENV_REFERENCE.fullmatch(value):
            raise ValueError(
                "secrets come only from the environment: write the variable's name as "
                "${NAME}, e.g. secret: ${CC_WEBHOOK_SECRET}"
            )
        return value


def _chat_url_from_environment(platform: str, key: str, value: str) -> str:
    """A chat platform's incoming-webhook URL is itself the secret: whoever holds it can post
    to the channel, so it must not sit in a file under version control."""
    if not ENV_REFERENCE.fullmatch(value):
        raise ValueError(
            f"a {platform} incoming-webhook URL is a secret (anyone holding it can post to "
            f"the channel): write the environment variable's name as ${{NAME}}, e.g. "
            f"{key}: ${{{key.upper()}_WEBHOOK_URL}}"
        )
    return value


class SlackRouteDoc(_RouteDoc):
    slack: str

    @field_validator("slack")
    @classmethod
    def _from_environment(cls, value: str) -> str:
        return _chat_url_from_environment("Slack", "slack", value)


class TeamsRouteDoc(_RouteDoc):
    teams: str

    @field_validator("teams")
    @classmethod
    def _from_environment(cls, value: str) -> str:
        return _chat_url_from_environment("Microsoft Teams", "teams", value)


class EmailRouteDoc(_RouteDoc):
    email: str


class LogRouteDoc(_RouteDoc):
    log: Literal[True]


ROUTE_DOCS: dict[str, type[_RouteDoc]] = {
    "webhook": WebhookRouteDoc,
    "email": EmailRouteDoc,
    "log": LogRouteDoc,
    "slack": SlackRouteDoc,
    "teams": TeamsRouteDoc,
}


class DigestDoc(_Strict):
    every: str  # a duration, parsed by the loader so that a bad one points at its line


class SilenceDoc(_Strict):
    """Mute a team's alerts (or one promise's) for a time window, saying why and who."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    promise: str | None = None
    from_: str = Field(alias="from")  # ISO 8601 with offset, parsed by the loader
    until: str
    reason: str
    by: str


class TeamDoc(_Strict):
    name: str
    timezone: str | None = None  # an IANA name, checked by the loader
    alerts: list[dict[str, Any]] = []
    digest: DigestDoc | None = None
    silences: list[dict[str, Any]] = []  # each a SilenceDoc, validated on its own
    burn_rates: list[BurnRateDoc] | None = None  # for promises with an objective naming none


class TeamsFileDoc(_Strict):
    teams: dict[str, dict[str, Any]]  # each entry is a TeamDoc, validated on its own


class HolidaysDoc(_Strict):
    country: str
    subdiv: str | None = None


class CalendarDoc(_Strict):
    timezone: str
    hours: dict[str, str | list[str]]
    holidays: HolidaysDoc | None = None
    closed: list[Annotated[date, Field(strict=False)]] = []


class CalendarsFileDoc(_Strict):
    calendars: dict[str, dict[str, Any]]  # each entry is a CalendarDoc, validated on its own
