"""API keys: created once and shown once, stored only as a hash, scoped, team-bound and
optionally expiring.

A key's team restricts what it reads and acts on; an ``admin`` key acts on every team's
data (retries, releases, reloads, keys) and a ``metrics`` key counts every team's, so neither
can have a team; a team must be one the catalog names (a misspelt team would make a key
that sees nothing, silently).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import now
from engine.errors import Invalid, NotFound
from engine.storage.schema import ApiKeyRow

Scope = Literal["ingest", "read", "metrics", "admin"]
SCOPES: tuple[Scope, ...] = ("ingest", "read", "metrics", "admin")
"""``metrics`` lets Prometheus scrape ``/metrics`` and nothing else (a ``read`` key without a
team may scrape too)."""
UNKNOWN = "unknown or revoked API key"
"""Why an unknown or revoked key is refused (the same words: one must not tell them apart)."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    scopes: frozenset[str]
    team: str | None
    expires_at: datetime | None = None

    def allows(self, scope: Scope) -> bool:
        """``admin`` may do everything, unless the key has a team (keys made before such
        keys were refused keep their team: their admin scope grants nothing)."""
        granted = self.scopes - {"admin"} if self.team is not None else self.scopes
        return scope in granted or "admin" in granted

    def refusal(self) -> str | None:
        """Why the key cannot be used now, or None."""
        if self.expires_at is not None and self.expires_at <= now():
            return (
                f"the API key '{self.name}' expired at {self.expires_at.isoformat()}; "
                "ask an admin for a new one"
            )
        return None


@dataclass(frozen=True)
class KeyInfo:
    """A key as listed: everything but the key itself, which is never stored."""

    name: str
    scopes: list[str]
    team: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now():
            return "expired"
        return "active"


class KeyProblem(Invalid):
    """A key cannot be created or changed as asked."""


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    sessions: sessionmaker[Session],
    name: str,
    scopes: list[str],
    team: str | None = None,
    *,
    teams: Collection[str] | None = None,
    expires_at: datetime | None = None,
) -> str:
    """A new key; the only time it exists in clear is this return value. ``teams`` are
    the catalog's: a ``team`` must be one of them (None: not checked, for tests' fixtures)."""
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise KeyProblem(f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(scopes)}")
    if team and "admin" in scopes:
        raise KeyProblem(
            "an admin key acts on every team's data (retries, releases, reloads, keys), so it "
            "cannot be limited to a team: drop --team, or give the key 'read' (and 'ingest')"
        )
    if team and "metrics" in scopes:
        raise KeyProblem(
            "metrics count every team's records and outcomes, so a 'metrics' key cannot be "
            "limited to a team: drop --team, or make a separate key for Prometheus"
        )
    if team and "read" not in scopes:
        raise KeyProblem("--team restricts what a key may read: give it the 'read' scope")
    if team and teams is not None and team not in teams:
        raise KeyProblem(
            f"no team '{team}' in the catalog's teams.yaml; teams: {', '.join(sorted(teams))}"
        )
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise KeyProblem("the expiry needs a UTC offset or Z, e.g. 2025-01-01T00:00:00Z")
        if expires_at <= now():
            raise KeyProblem(f"the expiry {expires_at.isoformat()} is not in the future")
    key = "pk_" + secrets.token_urlsafe(32)
    with sessions.begin() as session:
        if session.get(ApiKeyRow, name) is not None:
            raise KeyProblem(f"a key named {name!r} exists; revoke it or pick another name")
        session.add(
            ApiKeyRow(
                name=name,
                key_hash=_hash(key),
                scopes=sorted(set(scopes)),
                team=team,
                created_at=now(),
                revoked_at=None,
                expires_at=expires_at,
            )
        )
    return key


def verify(sessions: sessionmaker[Session], key: str) -> ApiKey | None:
    """The key, expired or not (``ApiKey.refusal`` says); None if unknown or revoked."""
    with sessions() as session:
        row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == _hash(key)))
        if row is None or row.revoked_at is not None:
            return None
        return ApiKey(row.name, frozenset(row.scopes), row.team, row.expires_at)


def revoke(sessions: sessionmaker[Session], name: str) -> KeyInfo:
    with sessions.begin() as session:
        row = session.get(ApiKeyRow, name)
        if row is None:
            raise NotFound(f"no key named {name!r}")
        row.revoked_at = row.revoked_at or now()
        return _info(row)


def list_keys(sessions: sessionmaker[Session]) -> list[KeyInfo]:
    with sessions() as session:
        return [_info(r) for r in session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.name))]


def key_info(sessions: sessionmaker[Session], name: str) -> KeyInfo:
    with sessions() as session:
        row = session.get(ApiKeyRow, name)
        if row is None:
            raise NotFound(f"no key named {name!r}")
        return _info(row)


def _info(row: ApiKeyRow) -> KeyInfo:
    return KeyInfo(row.name, row.scopes, row.team, row.created_at, row.expires_at, row.revoked_at)
