"""Digests: a team that wants one gets a single message per period listing its new alerts.

A digest is set in teams.yaml (``digest: {every: 30m}``) or through the API, which
overrides the file (including to switch digests off) until the override is cleared. The
override lives in the engine-state table as seconds (0 = off), so the dispatcher, which
applies digests at send time, sees a change on its next pass.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from engine.storage import state_table
from rules.models import Catalog

_PREFIX = "digest:"


def effective(session: Session, catalog: Catalog) -> dict[str, timedelta | None]:
    """Every team's digest period (None: one message per alert), overrides applied."""
    periods = {team.id: team.digest_every for team in catalog.teams.values()}
    for name, seconds in state_table.states_named(session, _PREFIX).items():
        team = name.removeprefix(_PREFIX)
        if team in periods:
            periods[team] = timedelta(seconds=seconds) if seconds else None
    return periods


def override(sessions: sessionmaker[Session], team: str, every: timedelta | None) -> None:
    """Set ``team``'s digest period through the API (None switches digests off)."""
    with sessions.begin() as session:
        state_table.set_state(session, _PREFIX + team, int(every.total_seconds()) if every else 0)


def clear(sessions: sessionmaker[Session], team: str) -> None:
    """Forget the API's override: teams.yaml decides again."""
    with sessions.begin() as session:
        state_table.delete_state(session, _PREFIX + team)


def overridden(sessions: sessionmaker[Session]) -> set[str]:
    with sessions() as session:
        return {name.removeprefix(_PREFIX) for name in state_table.states_named(session, _PREFIX)}
