"""Handling breaches: acknowledge or resolve one, with an assignee and a root-cause note."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import now
from engine.errors import NotFound, OtherTeam
from engine.storage.schema import BreachActionRow, OutcomeRow

Status = Literal["acknowledged", "resolved"]


@dataclass(frozen=True)
class Handling:
    status: Status
    assignee: str | None
    note: str | None
    actor: str
    acted_at: datetime


class NotABreach(NotFound):
    """No such outcome, or it is not broken (any more)."""


def act(
    sessions: sessionmaker[Session],
    outcome_id: int,
    status: Status,
    actor: str,
    assignee: str | None = None,
    note: str | None = None,
    team: str | None = None,
) -> None:
    with sessions.begin() as session:
        row = session.get(OutcomeRow, outcome_id)
        if row is None:
            raise NotABreach(f"no outcome {outcome_id}")
        if row.state != "broken":
            raise NotABreach(f"outcome {outcome_id} is not a breach (it is {row.state})")
        if team is not None and row.owner != team:
            raise OtherTeam(f"breach {outcome_id}", row.owner)
        session.add(
            BreachActionRow(
                outcome_id=outcome_id,
                status=status,
                assignee=assignee,
                note=note,
                actor=actor,
                acted_at=now(),
            )
        )


def latest(session: Session, outcome_ids: list[int]) -> dict[int, Handling]:
    """The most recent action on each of ``outcome_ids`` that has one."""
    if not outcome_ids:
        return {}
    rows = session.scalars(
        select(BreachActionRow)
        .where(BreachActionRow.outcome_id.in_(outcome_ids))
        .order_by(BreachActionRow.id)
    )
    return {r.outcome_id: Handling(r.status, r.assignee, r.note, r.actor, r.acted_at) for r in rows}
