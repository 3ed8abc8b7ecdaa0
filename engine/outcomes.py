"""Outcomes: one per opportunity to keep a promise, with the evidence that decided it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

State = Literal["pending", "at_risk", "kept", "broken", "cancelled"]
STATES: tuple[State, ...] = ("pending", "at_risk", "kept", "broken", "cancelled")
OPEN_STATES: tuple[State, ...] = ("pending", "at_risk")
Role = Literal["start", "stop", "cancel", "first", "then", "count"]
"""The part an evidence record played, named after the compiled rule that took it
(``rules.compiler``). Pauses and resumes, and the clock, decide no outcome alone: they are
never evidence."""


@dataclass
class Outcome:
    """``key`` identifies the opportunity within its promise across re-evaluations.

    Runners hand listeners the live object, which changes until it is decided: copy it to
    keep a snapshot.
    """

    promise: str
    version: str
    key: str
    scope: str
    customer_id: str | None
    state: State
    opened_at: datetime
    due_at: datetime | None = None
    decided_at: datetime | None = None
    evidence: list[str] = field(default_factory=list)
    warn_at: datetime | None = None
    """When a deadline becomes at risk; kept so a running server knows when to look again."""
    channel: str | None = None
    """The channel of the record that opened the opportunity, for compliance by channel."""
    sealed: bool = False
    """Records behind it were erased or expired: its verdict is final (engine.privacy.erasure)."""
    roles: list[Role] | None = field(default_factory=list)
    """The role of each evidence record, in step with ``evidence``, as the runner decided it;
    None for an outcome stored before roles were (migration 0006). Not part of the verdict:
    it follows from the evidence and the promise version."""

    def verdict(self) -> tuple[Any, ...]:
        """Everything a user sees; two outcomes with equal verdicts need no revision."""
        return (
            self.state,
            self.opened_at,
            self.due_at,
            self.decided_at,
            tuple(self.evidence),
            self.customer_id,
            self.version,
        )

    def spec(self) -> dict[str, Any]:
        """The SPEC §6 outcome fields, times as datetimes."""
        return {
            "promise": self.promise,
            "version": self.version,
            "scope": self.scope,
            "customer_id": self.customer_id,
            "state": self.state,
            "opened_at": self.opened_at,
            "due_at": self.due_at,
            "decided_at": self.decided_at,
            "evidence": list(self.evidence),
        }

    def to_json(self) -> dict[str, Any]:
        """The SPEC §6 outcome object (times ISO 8601 with offset)."""
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in self.spec().items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], key: str) -> Outcome:
        """The outcome :meth:`to_json` wrote (with ``roles`` when they were added, as an
        alert keeps them), under its ``key``."""
        times = {
            name: datetime.fromisoformat(data[name]) if data.get(name) else None
            for name in ("due_at", "decided_at")
        }
        return cls(
            promise=data["promise"],
            version=data["version"],
            key=key,
            scope=data["scope"],
            customer_id=data["customer_id"],
            state=data["state"],
            opened_at=datetime.fromisoformat(data["opened_at"]),
            evidence=list(data["evidence"]),
            roles=data.get("roles"),
            **times,
        )


def attainment(kept: int, broken: int) -> float | None:
    """Compliance (SPEC §5): the kept share of the decided opportunities, kept / (kept +
    broken); None when none was decided (cancelled and open ones never count)."""
    decided = kept + broken
    return kept / decided if decided else None


def iso_week(day: date) -> str:
    """The ISO week compliance counts ``day`` in, like ``2024-W09``: give a UTC date (or a
    UTC datetime: its own date is taken)."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"
