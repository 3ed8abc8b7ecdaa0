"""HTTP routes for alerts, silences and digests: what reached each team, what died, what is
muted, and how often a team wants to hear."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as FastAPIPath

from api.deps import Admin, AppState, Reader, StateDep, aware, team_of
from api.schemas import (
    AlertOut,
    AlertPage,
    DeliveryOut,
    DigestIn,
    RetryAnswer,
    SilenceIn,
    SilenceOut,
    TeamOut,
)
from engine.alerting import digests, routes, silences
from engine.alerting import status as alert_status
from engine.alerting.status import Alert, AlertFilter
from engine.errors import NotFound
from rules.durations import format_duration, parse_duration
from rules.models import Silence

router = APIRouter(tags=["alerts"])
AlertNumber = Annotated[
    int, FastAPIPath(ge=1, le=2**63 - 1, description="The number in an alert id (alert-12: 12).")
]
DeliveryStatus = Annotated[
    str | None, Query(pattern="^(pending|held|delivered|digested|silenced|dead)$")
]
Kind = Annotated[str | None, Query(pattern="^(alert|correction|digest|objective|backfilled)$")]


@router.get("/alerts", response_model=AlertPage)
def get_alerts(
    state: StateDep,
    key: Reader,
    team: str | None = None,
    promise: str | None = None,
    customer_id: str | None = None,
    kind: Kind = None,
    status: DeliveryStatus = None,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the page before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlertPage:
    """Alerts raised to the owning teams, oldest first, each with its deliveries per route;
    `status=dead` lists the alerts that a route gave up on."""
    where = AlertFilter(team_of(key, team), promise, kind, status, customer_id)
    items, next_cursor = alert_status.list_alerts(state.sessions, where, cursor, limit)
    return AlertPage(items=[_out(a) for a in items], next_cursor=next_cursor)


@router.get("/alerts/{number}", response_model=AlertOut)
def get_alert(number: AlertNumber, state: StateDep, key: Reader) -> AlertOut:
    """One alert with its deliveries (route, status, attempts, last error)."""
    return _out(_owned(state, key.team, number))


@router.post("/alerts/{number}/retry", response_model=RetryAnswer)
def retry_alert(number: AlertNumber, state: StateDep, _: Admin) -> RetryAnswer:
    """Send a dead alert again: its dead deliveries get a fresh set of attempts."""
    _owned(state, None, number)
    requeued = alert_status.retry_dead(state.sessions, number)
    return RetryAnswer(alert=_out(_owned(state, None, number)), requeued=requeued)


@router.get("/silences", response_model=list[SilenceOut])
def get_silences(
    state: StateDep,
    key: Reader,
    team: str | None = None,
    active: Annotated[bool, Query(description="Only those in force now.")] = False,
) -> list[SilenceOut]:
    """Silences from teams.yaml and the API."""
    moment = datetime.now(UTC) if active else None
    found = silences.listed(state.sessions, state.catalog, team_of(key, team), moment)
    return [SilenceOut(**asdict(s)) for s in found]


@router.post("/silences", response_model=SilenceOut, status_code=201)
def post_silence(body: SilenceIn, state: StateDep, key: Reader) -> SilenceOut:
    """Mute a team's alerts (or one promise's) until a time, with a reason; the key's name
    is kept as who set it. Alerts raised meanwhile are kept, marked `silenced`."""
    aware({"from": body.starts_at, "until": body.ends_at})
    silence = Silence(
        team=team_of(key, body.team) or body.team,
        starts=body.starts_at or datetime.now(UTC),
        ends=body.ends_at,
        reason=body.reason,
        by=key.name,
        promise=body.promise,
    )
    return SilenceOut(**asdict(silences.add(state.sessions, state.catalog, silence)))


@router.delete("/silences/{number}", response_model=SilenceOut)
def delete_silence(
    number: Annotated[int, FastAPIPath(ge=1, le=2**63 - 1)], state: StateDep, key: Reader
) -> SilenceOut:
    """End a silence now; it stays listed with its new end."""
    return SilenceOut(**asdict(silences.end(state.sessions, number, key.team)))


@router.get("/teams", response_model=list[TeamOut])
def get_teams(state: StateDep, key: Reader) -> list[TeamOut]:
    """Owning teams with their alert routes (never secrets) and digest settings."""
    return [_team(state, team) for team in state.catalog.teams if key.team in (None, team)]


@router.put("/teams/{team}/digest", response_model=TeamOut)
def put_digest(team: str, body: DigestIn, state: StateDep, key: Reader) -> TeamOut:
    """Set a team's digest period (overrides teams.yaml; `null` switches digests off): one
    message per period lists the alerts raised since the last one."""
    _known(state, team_of(key, team) or team)
    try:
        every = parse_duration(body.every) if body.every is not None else None
    except ValueError as exc:
        raise HTTPException(422, f"every: {exc}") from None
    digests.override(state.sessions, team, every)
    return _team(state, team)


@router.delete("/teams/{team}/digest", response_model=TeamOut)
def delete_digest(team: str, state: StateDep, key: Reader) -> TeamOut:
    """Drop the API's digest setting: teams.yaml decides again."""
    _known(state, team_of(key, team) or team)
    digests.clear(state.sessions, team)
    return _team(state, team)


def _known(state: AppState, team: str) -> None:
    if team not in state.catalog.teams:
        raise NotFound(f"no team '{team}'; teams: {', '.join(sorted(state.catalog.teams))}")


def _team(state: AppState, team: str) -> TeamOut:
    with state.sessions() as session:
        every = digests.effective(session, state.catalog)[team]
    described = [routes.describe(routes.stored(r)) for r in state.catalog.teams[team].routes]
    return TeamOut(
        id=team,
        name=state.catalog.teams[team].name,
        routes=described,
        digest_every=format_duration(every) if every else None,
        digest_source="api" if team in digests.overridden(state.sessions) else "teams.yaml",
    )


def _owned(state: AppState, team: str | None, number: int) -> Alert:
    alert = alert_status.get_alert(state.sessions, number)
    if alert is None or team not in (None, alert.team):
        raise NotFound(f"no alert alert-{number}" + (f" of team '{team}'" if team else ""))
    return alert


def _out(alert: Alert) -> AlertOut:
    fields = asdict(alert)
    fields.pop("number")
    fields["deliveries"] = [DeliveryOut(**d) for d in fields["deliveries"]]
    return AlertOut(**fields)
