"""API keys: created once and shown once, stored only as a hash, scoped and team-bound."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import now
from engine.errors import Invalid
from engine.storage.schema import ApiKeyRow

Scope = Literal["ingest", "read", "admin"]
SCOPES: tuple[Scope, ...] = ("ingest", "read", "admin")


@dataclass(frozen=True)
class ApiKey:
    name: str
    scopes: frozenset[str]
    team: str | None

    def allows(self, scope: Scope) -> bool:
        """``admin`` may do everything."""
        return scope in self.scopes or "admin" in self.scopes


class KeyProblem(Invalid):
    """A key cannot be created or changed as asked."""


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    sessions: sessionmaker[Session], name: str, scopes: list[str], team: str | None = None
) -> str:
    """A new key; the only time it exists in clear is this return value."""
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise KeyProblem(f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(scopes)}")
    if team and "read" not in scopes:
        raise KeyProblem("--team restricts what a key may read: give it the 'read' scope")
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
            )
        )
    return key


def verify(sessions: sessionmaker[Session], key: str) -> ApiKey | None:
    with sessions() as session:
        row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == _hash(key)))
        if row is None or row.revoked_at is not None:
            return None
        return ApiKey(row.name, frozenset(row.scopes), row.team)


def revoke(sessions: sessionmaker[Session], name: str) -> None:
    with sessions.begin() as session:
        row = session.get(ApiKeyRow, name)
        if row is None:
            raise KeyProblem(f"no key named {name!r}")
        row.revoked_at = now()


def list_keys(sessions: sessionmaker[Session]) -> list[tuple[str, list[str], str | None, bool]]:
    with sessions() as session:
        return [
            (r.name, r.scopes, r.team, r.revoked_at is not None)
            for r in session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.name))
        ]
