"""Promises: the catalog in force, its reload, backtests of drafts, and quarantine release."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import Admin, Reader, StateDep, ValidPromise, Whole, team_of
from api.errors import refusal
from api.schemas import (
    BacktestAnswer,
    DefinitionErrors,
    DraftPromise,
    PromiseDetail,
    PromiseOut,
    PromiseVersion,
    QuarantineOut,
    ReleaseAnswer,
    ReloadAnswer,
)
from engine.evaluation.quarantine import Quarantine
from rules.models import Promise
from rules.summary import summarise
from rules.version import canonical

router = APIRouter(tags=["promises"])


@router.post(
    "/promises/reload",
    response_model=ReloadAnswer,
    responses={
        422: refusal(
            "The edited catalog is invalid; the running promises stay in force.", DefinitionErrors
        )
    },
)
def reload_promises(state: StateDep, _: Admin) -> ReloadAnswer:
    """Pick up edits to the promise files without a restart (also on SIGHUP).

    The catalog is validated first: an invalid edit is refused with the same
    `FILE:LINE: message` problems as `promise check`, and nothing changes.
    """
    changed = state.reload()
    return ReloadAnswer(promises=len(state.catalog.promises), changed=changed)


@router.post(
    "/promises/backtest",
    response_model=BacktestAnswer,
    responses={422: refusal("The draft is invalid (FILE:LINE problems).", DefinitionErrors)},
)
def backtest_promise(draft: DraftPromise, state: StateDep, _: Whole, key: Reader) -> Any:
    """Evaluate a draft definition over the stored history, storing nothing: its
    outcomes, and which opportunities would change state against the version in force.

    A draft may match any record (its `start` broadly, a `matches` condition as an oracle
    on attribute values), and judging it takes every record of its scopes, whoever handled
    them: there is no team's share of the history to run it over, so a team key gets 403.
    """
    return BacktestAnswer(**state.sandbox.backtest(draft.yaml))


@router.get("/promises", response_model=list[PromiseOut])
def get_promises(state: StateDep, key: Reader) -> list[PromiseOut]:
    """Every promise in force, with its owner, a plain-language summary, and whether it
    is quarantined (its evaluation crashed, so it is not evaluated for now)."""
    held = state.queries.quarantined()
    return [
        _promise(p, held.get(p.id))
        for p in state.catalog.promises.values()
        if key.team in (None, p.owner)
    ]


@router.get("/promises/{promise_id}", response_model=PromiseDetail)
def get_promise(key: Reader, promise: ValidPromise, state: StateDep) -> PromiseDetail:
    """One promise: its definition, owner, summary and version history."""
    team_of(key, promise.owner)
    return PromiseDetail(
        **_promise(promise, state.queries.quarantined().get(promise.id)).model_dump(),
        definition=canonical(promise),
        versions=[PromiseVersion(**v) for v in state.queries.versions(promise.id)],
    )


@router.delete("/promises/{promise_id}/quarantine", response_model=ReleaseAnswer)
def release_promise(_: Admin, promise: ValidPromise, state: StateDep) -> ReleaseAnswer:
    """Evaluate a quarantined promise again, after fixing what made it crash; the scopes
    it skipped meanwhile are evaluated first. Loading a changed version does the same."""
    return ReleaseAnswer(released=state.service.release(promise.id))


def _promise(promise: Promise, held: Quarantine | None = None) -> PromiseOut:
    return PromiseOut(
        id=promise.id,
        title=promise.title,
        kind=promise.kind,
        owner=promise.owner,
        version=promise.version,
        objective=promise.objective,
        summary=summarise(promise),
        quarantine=QuarantineOut(version=held.version, reason=held.reason, since=held.since)
        if held
        else None,
    )
