"""Silences: mute a team's alerts, or one promise's, for a time window, saying why and who.

They come from teams.yaml (part of the catalog, changed by editing it) and from the API
(stored); the dispatcher applies both when an alert is due to be sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import now
from engine.errors import Invalid, NotFound, OtherTeam
from engine.storage.schema import SilenceRow
from rules.models import Catalog, Silence


@dataclass(frozen=True)
class SilenceView:
    id: int | None
    """None for silences written in teams.yaml (changed by editing the file)."""
    team: str
    promise: str | None
    starts_at: datetime
    ends_at: datetime
    reason: str
    by: str
    source: str


class SilenceProblem(Invalid):
    """A silence that cannot be set or ended; the message says why."""


def active(session: Session, catalog: Catalog, moment: datetime) -> list[Silence]:
    """Silences in force at ``moment``: those in teams.yaml and those set through the API."""
    rows = session.scalars(
        select(SilenceRow).where(SilenceRow.starts_at <= moment, SilenceRow.ends_at > moment)
    )
    defined = [s for team in catalog.teams.values() for s in team.silences]
    return [s for s in defined if s.starts <= moment < s.ends] + [_silence(r) for r in rows]


def listed(
    sessions: sessionmaker[Session], catalog: Catalog, team: str | None, active_at: datetime | None
) -> list[SilenceView]:
    """Silences of teams.yaml and of the API (of one team, in force at a moment if given)."""
    defined = [
        _view(None, s, "teams.yaml")
        for t in catalog.teams.values()
        for s in t.silences
        if team in (None, s.team)
    ]
    query = select(SilenceRow).order_by(SilenceRow.id)
    if team is not None:
        query = query.where(SilenceRow.team == team)
    with sessions() as session:
        stored = [_view(r.id, _silence(r), "api") for r in session.scalars(query)]
    every = defined + stored
    if active_at is not None:
        every = [s for s in every if s.starts_at <= active_at < s.ends_at]
    return every


def add(sessions: sessionmaker[Session], catalog: Catalog, silence: Silence) -> SilenceView:
    if silence.team not in catalog.teams:
        raise SilenceProblem(
            f"unknown team '{silence.team}'; teams: {', '.join(sorted(catalog.teams))}"
        )
    promise = catalog.promises.get(silence.promise or "")
    if silence.promise is not None and (promise is None or promise.owner != silence.team):
        owned = sorted(p.id for p in catalog.promises.values() if p.owner == silence.team)
        raise SilenceProblem(
            f"team '{silence.team}' owns no promise '{silence.promise}'; "
            f"it owns: {', '.join(owned) or 'none'}"
        )
    if silence.ends <= silence.starts:
        raise SilenceProblem("'until' must be later than 'from'")
    with sessions.begin() as session:
        row = SilenceRow(
            team=silence.team,
            promise_id=silence.promise,
            starts_at=silence.starts,
            ends_at=silence.ends,
            reason=silence.reason,
            created_by=silence.by,
            created_at=now(),
        )
        session.add(row)
        session.flush()
        return _view(row.id, silence, "api")


def end(sessions: sessionmaker[Session], number: int, team: str | None) -> SilenceView:
    """End a silence now (it stays listed, with its new end, for the record)."""
    with sessions.begin() as session:
        row = session.get(SilenceRow, number)
        if row is None:
            raise NotFound(f"no silence {number} (silences in teams.yaml end by editing it)")
        if team is not None and row.team != team:
            raise OtherTeam(f"silence {number}", row.team)
        row.ends_at = min(row.ends_at, max(now(), row.starts_at))
        return _view(row.id, _silence(row), "api")


def _silence(row: SilenceRow) -> Silence:
    return Silence(row.team, row.starts_at, row.ends_at, row.reason, row.created_by, row.promise_id)


def _view(number: int | None, silence: Silence, source: str) -> SilenceView:
    return SilenceView(
        number,
        silence.team,
        silence.promise,
        silence.starts,
        silence.ends,
        silence.reason,
        silence.by,
        source,
    )
