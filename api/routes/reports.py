"""``GET /reports/{team}``: a team's breach report as HTML, markdown or CSV.

The same report as ``promise report``; built per request from the database, so it is a plain
``def`` route (run in the thread pool).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi import Path as FastAPIPath
from fastapi.responses import Response

from api.deps import Reader, Since, StateDep, Until, aware, team_of
from engine.reading.reports import build, render

router = APIRouter(tags=["reports"])


@router.get(
    "/reports/{team}",
    response_class=Response,
    responses={
        200: {
            "description": "The report",
            "content": {media: {} for media in render.MEDIA_TYPES.values()},
        },
        403: {"description": "The key may only read another team"},
        404: {"description": "Unknown team; the message names the known teams"},
    },
)
def get_report(
    team: Annotated[str, FastAPIPath(description="A team id from teams.yaml.")],
    state: StateDep,
    key: Reader,
    since: Since = None,
    until: Until = None,
    fmt: Annotated[render.Format, Query(alias="format")] = "html",
) -> Response:
    """A team's breach report over outcomes decided in [from, to): attainment and error budget
    per promise, a weekly trend, every breach with its evidence explained, what is at risk
    now and the top breach drivers. A team-restricted key gets its own team's only."""
    aware({"from": since, "to": until})
    team_of(key, team)
    report = build.build_report(state.sessions, state.catalog, team, since, until)
    return Response(render.render(report, fmt), media_type=render.MEDIA_TYPES[fmt])
