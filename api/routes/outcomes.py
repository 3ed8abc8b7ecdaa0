"""Outcomes, breaches and compliance: what the engine decided, and how breaches are handled."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from api.deps import (
    AppState,
    Listing,
    OutcomeId,
    OutcomeState,
    Reader,
    Since,
    StateDep,
    Until,
    aware,
    team_of,
)
from api.errors import refusal
from api.schemas import (
    BreachAction,
    BreachHandling,
    ComplianceAnswer,
    ComplianceGroup,
    OutcomeOut,
    OutcomePage,
    RevisionOut,
)
from engine.errors import NotFound
from engine.keys import ApiKey
from engine.outcomes import State
from engine.reading import breaches
from engine.reading.period import Bounds
from engine.reading.queries import GroupBy, OutcomeFilter, StoredOutcome

router = APIRouter(tags=["compliance"])


def outcome_out(stored: StoredOutcome) -> OutcomeOut:
    handling = BreachHandling(**vars(stored.handling)) if stored.handling else None
    return OutcomeOut(
        id=stored.id, team=stored.team, channel=stored.channel, handling=handling, **stored.fields
    )


def _page(
    state: AppState, key: ApiKey, listing: Listing, outcome_state: State | None, by_decision: bool
) -> OutcomePage:
    where = OutcomeFilter(
        promise=listing.promise,
        team=team_of(key, listing.team),
        customer_id=listing.customer_id,
        case_id=listing.case_id,
        scope=listing.scope,
        state=outcome_state,
        since=listing.since,
        until=listing.until,
        by_decision=by_decision,
    )
    page = state.queries.outcomes(where, listing.cursor, listing.limit)
    return OutcomePage(items=[outcome_out(o) for o in page.items], next_cursor=page.next_cursor)


@router.get("/outcomes", response_model=OutcomePage)
def get_outcomes(
    state: StateDep,
    key: Reader,
    listing: Annotated[Listing, Depends()],
    outcome_state: OutcomeState = None,
) -> OutcomePage:
    """Outcomes, oldest first; `from`/`to` bound when the opportunity opened."""
    return _page(state, key, listing, outcome_state, by_decision=False)


@router.get("/outcomes/{outcome_id}", response_model=OutcomeOut)
def get_outcome(outcome_id: OutcomeId, state: StateDep, key: Reader) -> OutcomeOut:
    """One outcome: what alerts link to."""
    return outcome_out(_visible(state, key, outcome_id))


def _visible(state: AppState, key: ApiKey, outcome_id: int) -> StoredOutcome:
    """The outcome, if the key may read it (another team's answers as a missing one)."""
    stored = state.queries.outcome(outcome_id)
    if stored is None or key.team not in (None, stored.team):
        raise NotFound(f"no outcome {outcome_id}")
    return stored


@router.get("/outcomes/{outcome_id}/revisions", response_model=list[RevisionOut])
def get_revisions(outcome_id: OutcomeId, state: StateDep, key: Reader) -> list[RevisionOut]:
    """How the outcome's verdict changed, oldest first, and why (a late record, the clock
    passing a due time, a new version of the promise, an erasure); empty if it never did."""
    _visible(state, key, outcome_id)
    return [RevisionOut(**vars(r)) for r in state.queries.revisions(outcome_id)]


@router.get("/breaches", response_model=OutcomePage)
def get_breaches(
    state: StateDep,
    key: Reader,
    listing: Annotated[Listing, Depends()],
    _: Annotated[
        Literal["broken"] | None,
        Query(alias="state", description="Breaches are broken outcomes; see /outcomes?state="),
    ] = None,
) -> OutcomePage:
    """Broken outcomes, oldest first; `from`/`to` bound when the promise broke. Any other
    `state` is refused (422): ask `/outcomes?state=` for those."""
    return _page(state, key, listing, "broken", by_decision=True)


@router.patch("/breaches/{outcome_id}", response_model=OutcomeOut)
def patch_breach(
    outcome_id: OutcomeId, action: BreachAction, state: StateDep, key: Reader
) -> OutcomeOut:
    """Acknowledge or resolve a breach, with an assignee and a root-cause note; kept with
    the key that acted and when. A team-restricted key acts for its own team only."""
    breaches.act(
        state.sessions,
        outcome_id,
        action.status,
        key.name,
        assignee=action.assignee,
        note=action.note,
        team=key.team,
    )
    stored = state.queries.outcome(outcome_id)
    assert stored is not None  # it was just acted upon
    return outcome_out(stored)


@router.get(
    "/compliance",
    response_model=ComplianceAnswer,
    responses={400: refusal("The period is longer than PROMISE_MAX_PERIOD_DAYS")},
)
def get_compliance(
    state: StateDep,
    key: Reader,
    since: Since = None,
    until: Until = None,
    group_by: GroupBy = "promise",
) -> ComplianceAnswer:
    """Kept, broken and compliance (kept / decided) of outcomes decided in the period (at
    most PROMISE_MAX_PERIOD_DAYS long, else 400)."""
    aware({"from": since, "to": until})
    Bounds.from_settings(state.settings).check_period(since, until)
    rows = state.queries.compliance(since, until, group_by, team=key.team)
    return ComplianceAnswer(
        group_by=group_by,
        since=since,
        until=until,
        groups=[
            ComplianceGroup(
                group=r.group,
                kept=r.kept,
                broken=r.broken,
                compliance=r.compliance,
                objective=r.objective,
            )
            for r in rows
        ],
    )
