"""The database tables (SQLAlchemy 2 typed ORM). Schema changes go through Alembic."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    TypeDecorator,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TEXT = 256
ID_TYPE = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER only


_SQLITE_TEXT = "%04d-%02d-%02d %02d:%02d:%02d.%06d"
"""SQLAlchemy's storage format for SQLite DATETIME (its ``DATETIME._storage_format``)."""


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: give a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Any) -> Any:
        """On SQLite, the text SQLAlchemy's DATETIME stores, in one step: 2.4 µs a value
        through the two processors, 1 µs here, and a replay stores millions of them."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetimes are not stored: give a time zone")
            if value.utcoffset():
                value = value.astimezone(UTC)
            return _SQLITE_TEXT % (
                value.year,
                value.month,
                value.day,
                value.hour,
                value.minute,
                value.second,
                value.microsecond,
            )

        return process

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[str]: JSON,
        str: String(TEXT),
    }


class InteractionRow(Base):
    """A record as received; ``id`` makes re-sending idempotent, ``fingerprint`` spots conflicts."""

    __tablename__ = "interactions"
    __table_args__ = (
        # a scope's records after a checkpoint (engine.storage.record_table.records_after)
        Index("ix_interactions_customer_at", "customer_id", "at_us"),
        Index("ix_interactions_case_at", "case_id", "at_us"),
    )

    id: Mapped[str] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime]
    at_us: Mapped[int] = mapped_column(BigInteger, index=True)
    customer_id: Mapped[str] = mapped_column(index=True)
    case_id: Mapped[str | None] = mapped_column(index=True)
    channel: Mapped[str]
    direction: Mapped[str] = mapped_column(String(16))
    type: Mapped[str]
    team: Mapped[str | None]
    agent: Mapped[str | None]
    attributes: Mapped[dict[str, Any]]
    fingerprint: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime]


class PendingRow(Base):
    """A stored record not yet evaluated in the scopes of one shard (engine.shards):
    the workers' queue, emptied in the same transaction that stores the outcomes, so a
    crash loses or doubles nothing. A record has a row per shard its scopes fall in."""

    __tablename__ = "pending_records"
    __table_args__ = (Index("ix_pending_records_shard", "shard", "backfill"),)

    record_id: Mapped[str] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), primary_key=True
    )
    shard: Mapped[int] = mapped_column(primary_key=True, default=0, server_default="0")
    backfill: Mapped[bool] = mapped_column(default=False, server_default=false())
    """Sent as history (``POST /interactions?backfill=true``): its old breaches are stored
    and reported but not alerted (engine.alerting.outbox)."""


class ScopeKeyRow(Base):
    """Which records belong to a scope value, for scopes that are attribute paths.

    Lets one scope's records be read back with one indexed query when the scope is an
    attribute (``attributes.booking.ref``); column scopes use the column's index.
    """

    __tablename__ = "scope_keys"

    field: Mapped[str] = mapped_column(primary_key=True)
    value: Mapped[str] = mapped_column(primary_key=True)
    record_id: Mapped[str] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), primary_key=True
    )


class PromiseVersionRow(Base):
    """Every version of every promise the engine has evaluated with."""

    __tablename__ = "promise_versions"

    promise_id: Mapped[str] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str]
    owner: Mapped[str]
    definition: Mapped[dict[str, Any]]
    first_seen_at: Mapped[datetime]


class OutcomeRow(Base):
    """One opportunity and its current verdict."""

    __tablename__ = "outcomes"
    __table_args__ = (
        Index("ix_outcomes_promise_key", "promise_id", "key", unique=True),
        # a scope's outcomes, and those opened since a checkpoint (outcome_table.opened_between)
        Index("ix_outcomes_promise_scope_opened", "promise_id", "scope", "opened_at"),
        Index("ix_outcomes_state_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True, autoincrement=True)
    promise_id: Mapped[str]
    version: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(2 * TEXT))
    owner: Mapped[str] = mapped_column(index=True)
    scope: Mapped[str]
    customer_id: Mapped[str | None] = mapped_column(index=True)
    channel: Mapped[str | None]
    state: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    warn_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None] = mapped_column(index=True)
    evidence: Mapped[list[str]]
    roles: Mapped[list[str] | None]
    """The role of each evidence record (``engine.outcomes.Role``); NULL on outcomes stored
    before migration 0006 until their scope is evaluated again."""
    updated_at: Mapped[datetime]
    sealed_at: Mapped[datetime | None]
    """Set when records behind the outcome were erased or expired (event time: the latest
    record of its scope then); a sealed outcome is final (docs/semantics.md)."""


class RevisionRow(Base):
    """A change of an outcome's verdict, with why: the audit trail of late records and ticks."""

    __tablename__ = "outcome_revisions"
    __table_args__ = (Index("ix_revisions_promise_key", "promise_id", "key"),)

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True, autoincrement=True)
    promise_id: Mapped[str]
    key: Mapped[str] = mapped_column(String(2 * TEXT))
    old_state: Mapped[str | None] = mapped_column(String(16))
    new_state: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(1024))
    changed_at: Mapped[datetime]
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class EngineStateRow(Base):
    """Small named values the engine must remember: its clock, which scope fields are indexed."""

    __tablename__ = "engine_state"

    name: Mapped[str] = mapped_column(primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class ApiKeyRow(Base):
    """An API key, stored only as a SHA-256 hash (keys are long random tokens)."""

    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]]
    team: Mapped[str | None]
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]


class BreachActionRow(Base):
    """Someone acknowledged or resolved a breach: who, when, assignee, root-cause note."""

    __tablename__ = "breach_actions"

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True, autoincrement=True)
    outcome_id: Mapped[int] = mapped_column(
        ID_TYPE, ForeignKey("outcomes.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    assignee: Mapped[str | None]
    note: Mapped[str | None] = mapped_column(String(4000))
    actor: Mapped[str]
    acted_at: Mapped[datetime]


class AlertRow(Base):
    """A message owed to a team: an outcome became at risk or broken, a breach was
    corrected, or a digest of held alerts. Written in the transaction that changed the
    outcome (the outbox), so an alert exists exactly when its cause does."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_promise_key", "promise_id", "outcome_key"),)

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # alert | correction | digest
    team: Mapped[str] = mapped_column(index=True)
    promise_id: Mapped[str | None]
    outcome_key: Mapped[str | None] = mapped_column(String(2 * TEXT))
    state: Mapped[str] = mapped_column(String(16))
    corrects: Mapped[int | None] = mapped_column(ID_TYPE)
    customer_id: Mapped[str | None] = mapped_column(index=True)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime]


class DeliveryRow(Base):
    """One alert on one of its team's routes: retried with backoff until delivered or dead."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (Index("ix_deliveries_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(
        ID_TYPE, ForeignKey("alerts.id", ondelete="CASCADE"), index=True
    )
    route: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(String(1024))
    delivered_at: Mapped[datetime | None]
    digest_id: Mapped[int | None] = mapped_column(ID_TYPE)


class SilenceRow(Base):
    """A silence set through the API (those in teams.yaml live in the catalog)."""

    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True, autoincrement=True)
    team: Mapped[str]
    promise_id: Mapped[str | None]
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(1024))
    created_by: Mapped[str]
    created_at: Mapped[datetime]


class ErasedRecordRow(Base):
    """A tombstone: the keyed hash of an erased record's id, so that re-sending the record
    cannot bring it back (the id itself is not kept)."""

    __tablename__ = "erased_records"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[datetime]


class ErasureRow(Base):
    """One erasure of a customer's data: who, when, why and how much; never the customer."""

    __tablename__ = "erasures"

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True, autoincrement=True)
    erased_at: Mapped[datetime]
    actor: Mapped[str]
    reason: Mapped[str] = mapped_column(String(1024))
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)


class QuarantineRow(Base):
    """A promise version that crashed evaluation: it is not evaluated until released."""

    __tablename__ = "quarantines"

    promise_id: Mapped[str] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(primary_key=True)
    reason: Mapped[str] = mapped_column(String(2000))
    since: Mapped[datetime]


class BacklogRow(Base):
    """A scope a quarantined promise skipped, to be evaluated once the promise is released."""

    __tablename__ = "quarantine_backlog"

    promise_id: Mapped[str] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(primary_key=True)


class CheckpointRow(Base):
    """Where the evaluation of one (promise, scope) stood after one of its records, so that
    later records continue from there (engine.evaluation.checkpoint): the ``latest`` one,
    after the last evaluated record, and ``kept`` ones every few hundred records, for
    records that arrive late. Written in the transaction that stores the outcomes."""

    __tablename__ = "checkpoints"
    __table_args__ = (Index("ix_checkpoints_latest", "promise_id", "scope", "latest"),)

    promise_id: Mapped[str] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(primary_key=True)
    last_at_us: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    last_id: Mapped[str] = mapped_column(primary_key=True)
    version: Mapped[str]
    n: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(BigInteger)
    latest: Mapped[bool]
    kept: Mapped[bool]
    state: Mapped[dict[str, Any]]
