"""Configuration from the environment, read once and passed in (never at import time)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import Field, field_serializer, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rules.durations import format_duration, parse_duration

BACKFILL_ALERT_WINDOW = timedelta(hours=24)


class Settings(BaseSettings):
    """Every setting is ``PROMISE_<NAME>`` in the environment, with a working default."""

    model_config = SettingsConfigDict(env_prefix="PROMISE_", extra="ignore")

    database_url: str = "sqlite:///promise.db"
    """SQLAlchemy URL; the default is a SQLite file in the working directory."""
    dir: Path = Path("promises")
    """The promise catalog."""
    features_dir: Path | None = None
    """Living documentation; unset: beside the catalog (engine.docs.features.features_dir)."""
    """The living documentation (``<promise-id>.feature``), shown on the dashboard."""
    docs_results: Path = Path(".reports/cucumber.json")
    """The Cucumber JSON of the last feature run (``promise test --cucumber-json``): each
    scenario's result in the docs."""

    public_url: str = "http://127.0.0.1:8000"
    """Where people reach this service; alerts link to outcomes under it."""
    metrics_open: bool = False
    """Serve ``/metrics`` without a key, for a Prometheus that cannot send one (keep the port
    off the internet: the figures name promises and teams). Off: scrape with a key of the
    ``metrics`` scope (``promise keys create prometheus --scopes metrics``)."""
    alert_max_attempts: int = 10
    """Delivery attempts per alert and route before it is marked dead."""
    alert_backoff_seconds: float = 5.0
    """The wait after the first failed attempt; doubled after each further failure."""
    alert_backoff_max_seconds: float = 3600.0
    alert_lease_seconds: float = 60.0
    """How long a claimed delivery is left to its dispatcher before another may retry it
    (a dispatcher killed in mid-delivery loses nothing: the alert is sent again)."""
    backfill_alert_window: timedelta = BACKFILL_ALERT_WINDOW
    """History sent as a backfill (``POST /interactions?backfill=true``, ``promise import``,
    ``promise replay --db``) alerts only for opportunities still open or decided within this
    long (e.g. ``24h``, ``3d``) before the engine's clock or the wall clock, whichever is later;
    older breaches are stored and reported as backfilled, and page nobody."""
    webhook_timeout_seconds: float = 10.0
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "promise-engine@localhost"

    erasure_key: str | None = None
    """The secret of the keyed hashes (HMAC-SHA256) that replace an erased customer's ids;
    erasure is refused without it. Keep it stable: tombstones are checked with it."""
    retention_days: int | None = Field(default=None, ge=1)
    """Delete records older than this many days once no open outcome needs them; none
    keeps records forever."""
    max_period_days: int = Field(default=400, ge=1, le=100 * 366)
    """The longest period (``from`` to ``to``) the API, reports and the dashboard answer for;
    longer ones get 400 naming this limit. A weekly trend shows at most this many days' weeks,
    the latest, also over periods open at one end (all time on that side)."""
    report_max_rows: int = Field(default=500, ge=1, le=1_000_000)
    """Breaches listed per promise in a report, and outcomes listed as at risk; the report
    says how many more there are and does not show them (figures count them all)."""
    max_future_seconds: float = Field(default=86_400.0, ge=0, le=100 * 366 * 86_400)
    """How far after the wall clock a record's ``occurred_at`` may lie (default one day, for
    senders' clock skew); later records are refused: the engine's clock is the latest event
    time seen, so one record from the future would break every open deadline at once."""

    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    """After SIGTERM or SIGINT, how long ``promise serve`` lets requests in flight, the
    worker's round and the dispatcher's deliveries finish before it kills what is left; also
    how long an orphaned worker or dispatcher may take to stop once its parent is gone."""
    sandbox_processes: int = Field(default=2, ge=1, le=64)
    """Child processes for pre-flight checks, backtests and a customer's given items; a
    request that finds them all busy is answered 503 with Retry-After."""
    sandbox_timeout_seconds: float = Field(default=30.0, gt=0)
    """The longest one sandboxed evaluation may take; its child is then killed and replaced,
    and the request answered 503 with Retry-After."""
    sandbox_memory_mb: int | None = Field(default=1024, ge=128)
    """The address space (RLIMIT_AS) of each sandbox child, in MiB; an evaluation that needs
    more fails with 503 and its child is replaced. None: no limit."""

    @field_validator("backfill_alert_window", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        """Written as promises write durations (``24h``, ``90m``, ``2d``)."""
        return parse_duration(value) if isinstance(value, str) else value

    @field_serializer("backfill_alert_window", when_used="json")
    def _written(self, value: timedelta) -> str:
        """Dumped as it is read (``1d``), so that the settings a sandbox child is given
        (``model_dump(mode="json")``) validate again there."""
        return format_duration(value)
