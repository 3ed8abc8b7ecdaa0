"""What the HTTP API answers, as pydantic models (the OpenAPI schema comes from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from engine.keys import Scope


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
"""Text the database can store (PostgreSQL refuses NUL characters)."""


class Problem(BaseModel):
    field: str = Field(examples=["occurred_at"])
    reason: str = Field(examples=["needs a UTC offset or Z, e.g. 2024-03-01T10:00:00Z"])


class ErrorOut(BaseModel):
    """Every error answer: what is wrong, and each field (parameter, body field) at fault."""

    detail: str = Field(examples=["state: Input should be 'broken'"])
    errors: list[Problem] = Field(
        default_factory=list, description="Each field at fault and why; empty when none is."
    )


class DefinitionErrors(ErrorOut):
    problems: list[str] = Field(
        description="Every problem of the definitions, as `FILE:LINE: message`.",
        examples=[["ask-once.yaml:4: unknown kind 'nevr'"]],
    )


class RecordResult(BaseModel):
    id: str | None = Field(examples=["evt-000123"])
    status: Literal["accepted", "duplicate", "rejected"]
    problems: list[Problem] = []


class IngestAnswer(BaseModel):
    accepted: int = Field(description="Records stored, to be evaluated.")
    duplicate: int = Field(description="Records stored before with the same content.")
    rejected: int = Field(description="Records refused; each one's `problems` say why.")
    results: list[RecordResult] = Field(description="One per record sent, in order.")


class IngestRefused(IngestAnswer, ErrorOut):
    """The 422 answer when every record sent was rejected: the counts and results as on
    success, plus the error shape, with ``errors`` naming ``<index>.<field>``."""


class BreachHandling(BaseModel):
    status: Literal["acknowledged", "resolved"]
    assignee: str | None
    note: str | None = Field(description="Root cause, or what was done.")
    actor: str = Field(description="The API key that acted.")
    acted_at: datetime


class BreachAction(BaseModel):
    model_config = {"extra": "forbid"}

    status: Literal["acknowledged", "resolved"]
    assignee: Text | None = Field(default=None, max_length=256, examples=["j.smith"])
    note: Text | None = Field(
        default=None, max_length=4000, examples=["Claims template asked again; template fixed"]
    )


class OutcomeOut(BaseModel):
    """The SPEC §6 outcome fields, plus the row id, the owning team and the channel."""

    id: int
    promise: str = Field(examples=["email-reply-1bd"])
    version: str
    scope: str = Field(examples=["K-9"])
    customer_id: str | None = Field(examples=["C-1"])
    state: Literal["pending", "at_risk", "kept", "broken", "cancelled"]
    opened_at: datetime
    due_at: datetime | None
    decided_at: datetime | None
    evidence: list[str] = Field(examples=[["evt-1", "evt-7"]])
    team: str = Field(examples=["contact-centre"])
    channel: str | None = Field(examples=["email"])
    handling: BreachHandling | None = Field(
        default=None, description="The latest acknowledgement or resolution of a breach."
    )


class RevisionOut(BaseModel):
    """A change of an outcome's verdict (an outcome's creation is not one)."""

    old_state: str | None = Field(examples=["broken"])
    new_state: str | None = Field(examples=["kept"])
    reason: str = Field(examples=["late record e7 (2024-03-01T11:00:00Z) re-evaluated K-9"])
    changed_at: datetime = Field(description="When the engine made the change (wall clock).")
    before: dict[str, Any] | None = Field(description="The outcome before, as in `--json`.")
    after: dict[str, Any] | None = Field(description="The outcome after.")


class OutcomePage(BaseModel):
    items: list[OutcomeOut]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null on the last page."
    )


class ComplianceGroup(BaseModel):
    group: str = Field(examples=["email-reply-1bd"])
    kept: int
    broken: int
    compliance: float | None = Field(description="kept / (kept + broken); null if none decided")
    objective: float | None


class ComplianceAnswer(BaseModel):
    group_by: Literal["promise", "team", "channel", "week"]
    since: datetime | None = Field(alias="from")
    until: datetime | None = Field(alias="to")
    groups: list[ComplianceGroup]

    model_config = {"populate_by_name": True}


class GivenOut(BaseModel):
    promise: str = Field(examples=["ask-once"])
    record: str
    occurred_at: datetime
    channel: str
    team: str | None
    same: dict = Field(
        description="The values that must not be asked for again.",
        examples=[{"attributes.item": "policy_number"}],
    )


class CustomerStanding(BaseModel):
    customer_id: str
    open: list[OutcomeOut] = Field(description="Open clocks, with their due times.")
    at_risk: list[OutcomeOut]
    recent_breaches: list[OutcomeOut]
    given: list[GivenOut] = Field(description="What the customer already gave (Ask Once).")


class PromiseVersion(BaseModel):
    version: str
    first_seen_at: datetime
    title: str
    owner: str


class QuarantineOut(BaseModel):
    """Why a promise is not being evaluated: its evaluation crashed (raised, or killed the
    worker in the rules core). Released by a changed version or by an admin."""

    version: str
    reason: str
    since: datetime


class PromiseOut(BaseModel):
    id: str = Field(examples=["ask-once"])
    title: str
    kind: Literal["deadline", "never", "limit"]
    owner: str
    version: str
    objective: float | None
    summary: str = Field(description="The promise in plain words, generated from its definition.")
    quarantine: QuarantineOut | None = Field(
        default=None, description="Set while this version is quarantined (not evaluated)."
    )


class PromiseDetail(PromiseOut):
    definition: dict
    versions: list[PromiseVersion]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "degraded"]
    database: bool
    worker_seen_seconds_ago: float | None
    evaluation_lag: int = Field(description="Records accepted but not evaluated yet.")
    quarantined_count: int = Field(
        default=0, description="Promises not evaluated because their evaluation crashed."
    )
    quarantined: list[str] | None = Field(
        default=None,
        description="Which promises are quarantined (a team key: its team's); null without "
        "a key that reads.",
    )


class ProspectiveRecord(BaseModel):
    """A record about to happen; the customer comes from the path, the id is optional."""

    model_config = {"extra": "forbid"}

    id: str | None = Field(default=None, examples=["planned-1"])
    occurred_at: datetime | None = Field(default=None, description="Default: now.")
    case_id: str | None = None
    channel: str = Field(examples=["email"])
    direction: Literal["inbound", "outbound", "internal"] = Field(examples=["outbound"])
    type: str = Field(examples=["info_requested"])
    team: str | None = Field(default=None, examples=["claims"])
    agent: str | None = None
    attributes: dict = Field(default_factory=dict, examples=[{"item": "policy_number"}])


class EvidenceOut(BaseModel):
    id: str
    occurred_at: datetime
    type: str
    channel: str
    team: str | None


class WouldBreak(BaseModel):
    promise: str
    title: str
    owner: str
    why: str = Field(examples=["already: info provided by phone on 2024-03-01 to claims"])
    evidence: list[EvidenceOut]


class CheckAnswer(BaseModel):
    customer_id: str
    ok: bool = Field(description="True when the record would break no promise.")
    would_break: list[WouldBreak]


class ReleaseAnswer(BaseModel):
    released: int = Field(description="Quarantines lifted (0: the promise was not quarantined).")


class ReloadAnswer(BaseModel):
    promises: int = Field(description="Promises now in force.")
    changed: list[str] = Field(description="Promises with a new version, or new.")


class DraftPromise(BaseModel):
    model_config = {"extra": "forbid"}

    yaml: str = Field(
        max_length=100_000,
        description="A promise file's text, as in promises/.",
        examples=[
            "id: two-handoffs\ntitle: At most one handoff\nowner: operations\n"
            "kind: limit\nscope: case_id\ncount: {type: handoff}\nmax: 1\n"
        ],
    )


class BacktestChange(BaseModel):
    key: str
    scope: str
    current: str | None
    draft: str | None


class BacktestAnswer(BaseModel):
    promise: str
    version: str = Field(description="The draft's version.")
    summary: dict[str, int] = Field(description="The draft's outcomes by state.")
    current_summary: dict[str, int] | None = Field(
        description="The version in force, by state; null if the promise is new."
    )
    changed: list[BacktestChange] = Field(description="Opportunities whose state would differ.")
    outcomes: list[dict]


class DeliveryOut(BaseModel):
    route: str = Field(examples=["webhook https://hooks.example.org/cc"])
    status: Literal["pending", "held", "delivered", "digested", "silenced", "dead"] = Field(
        description="held: waiting for the team's digest; digested: sent in a digest."
    )
    attempts: int
    next_attempt_at: datetime | None = Field(description="When a pending delivery is tried next.")
    last_error: str | None = Field(description="Why the last attempt failed, or the silence.")
    delivered_at: datetime | None


class AlertOut(BaseModel):
    id: str = Field(examples=["alert-12"], description="Also the receivers' idempotency key.")
    kind: Literal["alert", "correction", "digest", "objective", "backfilled"] = Field(
        description="objective: a burn-rate alert on the promise's objective (state burning "
        "or resolved); backfilled: a breach of history loaded as a backfill, recorded and "
        "never sent (decided before PROMISE_BACKFILL_ALERT_WINDOW)."
    )
    team: str
    promise: str | None
    state: str = Field(description="at_risk or broken; for a correction, the outcome's new state.")
    customer_id: str | None
    corrects: str | None = Field(description="The alert a correction takes back.")
    reason: str
    created_at: datetime
    outcome: dict[str, Any] | None = Field(description="The outcome when the alert was raised.")
    deliveries: list[DeliveryOut]


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None


class RetryAnswer(BaseModel):
    alert: AlertOut
    requeued: int = Field(description="Dead deliveries given a fresh set of attempts.")


class SilenceIn(BaseModel):
    model_config = {"extra": "forbid", "populate_by_name": True}

    team: Text = Field(max_length=256, examples=["contact-centre"])
    promise: Text | None = Field(
        default=None, max_length=256, description="Only this promise; all of the team's if absent."
    )
    starts_at: datetime | None = Field(
        default=None, alias="from", description="ISO 8601 with offset; default now."
    )
    ends_at: datetime = Field(alias="until", examples=["2024-03-01T18:00:00Z"])
    reason: Text = Field(min_length=1, max_length=1024, examples=["mail server migration"])


class SilenceOut(BaseModel):
    id: int | None = Field(description="null for silences written in teams.yaml")
    team: str
    promise: str | None
    starts_at: datetime
    ends_at: datetime
    reason: str
    by: str = Field(description="Who set it: the API key's name, or `by` in teams.yaml.")
    source: Literal["teams.yaml", "api"]


class TeamOut(BaseModel):
    id: str = Field(examples=["contact-centre"])
    name: str
    routes: list[str] = Field(examples=[["webhook https://hooks.example.org/cc", "log"]])
    digest_every: str | None = Field(
        description="One message per this period listing new alerts (null: one per alert).",
        examples=["30m"],
    )
    digest_source: Literal["teams.yaml", "api"]


class DigestIn(BaseModel):
    model_config = {"extra": "forbid"}

    every: Text | None = Field(
        max_length=32,
        description="A duration such as 30m or 1h; null switches digests off.",
        examples=["30m"],
    )


class CustomerExport(BaseModel):
    """Everything held about one customer (`GET /customers/{id}/export`)."""

    customer_id: str
    exported_at: datetime
    interactions: list[dict[str, Any]] = Field(description="Their records, as received.")
    outcomes: list[dict[str, Any]] = Field(
        description="Outcomes that name them; other customers' evidence ids show as `redacted`."
    )
    revisions: list[dict[str, Any]] = Field(description="Every change of those outcomes.")
    alerts: list[dict[str, Any]] = Field(description="Alerts that named them.")
    breach_actions: list[dict[str, Any]] = Field(description="Handling notes on their breaches.")


class ErasureRequest(BaseModel):
    model_config = {"extra": "forbid"}

    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"\S",
        examples=["customer request by email, ticket K-2231"],
        description="Why: kept in the erasure log (which never holds the customer id).",
    )


class ErasureAnswer(BaseModel):
    erasure: int = Field(description="The erasure log entry's id.")
    erased_at: datetime
    counts: dict[str, int] = Field(
        description="What was removed (interactions, pending_records, scope_keys, tombstones) "
        "and rewritten (outcomes_pseudonymised, outcomes_sealed, outcomes_cancelled, "
        "revisions_rewritten, alerts_rewritten, breach_actions_rewritten)."
    )


class KeyIn(BaseModel):
    name: Text = Field(min_length=1, max_length=256, examples=["crm"])
    scopes: list[Scope] = Field(
        min_length=1,
        examples=[["read"]],
        description="ingest: send records; read: read outcomes and reports; metrics: scrape "
        "/metrics only; admin: everything, every team.",
    )
    team: Text | None = Field(
        default=None,
        description="A team of teams.yaml; not with `admin` or `metrics`.",
        examples=["claims"],
    )
    expires_at: datetime | None = Field(
        default=None,
        description="When the key stops working (ISO 8601 with offset); none: never.",
        examples=["2025-06-30T00:00:00Z"],
    )


class KeyOut(BaseModel):
    """A key as listed: never the key itself, which is stored only as a hash."""

    name: str
    scopes: list[str]
    team: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    status: Literal["active", "expired", "revoked"]


class KeyCreated(KeyOut):
    key: str = Field(description="The key: shown in this answer only, never again.")
