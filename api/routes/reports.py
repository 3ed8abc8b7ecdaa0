"""``GET /reports/{team}``: a team's breach report as HTML, markdown or CSV.

The same report as ``promise report``; built per request from the database in the thread
pool, with the period and the rows listed bounded (:mod:`engine.reading.period`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi import Path as FastAPIPath
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.deps import Reader, Since, StateDep, Until, aware, team_of
from api.errors import refusal
from engine.reading.period import Bounds
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
        400: refusal("The period is longer than PROMISE_MAX_PERIOD_DAYS"),
        403: refusal("The key may only read another team"),
        404: refusal("Unknown team; the message names the known teams"),
    },
)
async def get_report(
    request: Request,
    team: Annotated[str, FastAPIPath(description="A team id from teams.yaml.")],
    state: StateDep,
    key: Reader,
    since: Since = None,
    until: Until = None,
    fmt: Annotated[render.Format, Query(alias="format")] = "html",
) -> Response:
    """A team's breach report over outcomes decided in [from, to): attainment and error budget
    per promise, a weekly trend, the breaches with their evidence explained (at most
    PROMISE_REPORT_MAX_ROWS per promise; the header `X-Breaches-Not-Shown` counts the rest),
    what is at risk now and the top breach drivers. A period longer than
    PROMISE_MAX_PERIOD_DAYS is refused (400). A team-restricted key gets its own team's only.

    Building and rendering run in the thread pool; a client gone in between is not rendered
    for."""
    aware({"from": since, "to": until})
    team_of(key, team)
    bounds = Bounds.from_settings(state.settings)
    bounds.check_period(since, until)
    report = await run_in_threadpool(
        build.build_report, state.sessions, state.catalog, team, since, until, bounds=bounds
    )
    if await request.is_disconnected():
        return Response(status_code=499)  # nobody reads it: the rendering is saved
    text = await run_in_threadpool(render.render, report, fmt)
    headers = {"X-Breaches-Not-Shown": str(report.not_shown)}
    return Response(text, media_type=render.MEDIA_TYPES[fmt], headers=headers)
