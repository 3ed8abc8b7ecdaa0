"""The dashboard: server-rendered pages under ``/ui`` for people, over the same engine queries
and API keys as the JSON API.

Browsers cannot send bearer headers, so a login form keeps the key in an HttpOnly,
SameSite=Strict cookie; a page without a valid key redirects to that form instead of
answering JSON. The cookie opens these pages only: the JSON API takes bearer keys, so a page
on another port of the same host (same site: the cookie goes along) cannot make a logged-in
browser call it. Forms that change state (log in, log out) also check that they were posted
from this origin. Routes read the database, so they are plain ``def``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Cookie, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from api.deps import KEY_COOKIE, AppState, OutcomeId, StateDep, get_state, usable_key
from api.ui import zone
from engine import outcomes
from engine.docs import features, results, site
from engine.docs.features import scenarios
from engine.keys import UNKNOWN, ApiKey
from engine.reading.explained import explained_outcome
from engine.reading.journey import customer_journey
from engine.reading.objectives import Objective
from engine.reading.period import Bounds, PeriodTooLong
from engine.reading.queries import OutcomeFilter
from engine.reading.reports import build, render, trend
from rules.durations import format_duration
from rules.models import Catalog, Promise
from rules.summary import summarise

router = APIRouter(prefix="/ui", include_in_schema=False)
LOGIN = "/ui/login"

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,  # interaction attributes are untrusted
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates = Jinja2Templates(env=_env)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


@pass_context
def _when(context: Context, moment: datetime | None) -> str:
    """A time in the viewer's zone (templates importing macros do so ``with context``)."""
    return zone.shown(moment, context["zone"])


def _shown(value: Any) -> str:
    """An attribute value as text; nested values as JSON (escaped by the template)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


_env.filters.update(
    percent=_percent,
    when=_when,
    shown=_shown,
    segment=lambda s: quote(s, safe=""),
    duration=format_duration,
)


def _viewer(
    state: StateDep, cookie: Annotated[str | None, Cookie(alias=KEY_COOKIE)] = None
) -> ApiKey:
    """The logged-in key with the ``read`` scope, or a redirect to the login form (also
    once the key expired or was revoked)."""
    key = usable_key(state, cookie) if cookie else None
    if not isinstance(key, ApiKey) or not key.allows("read"):
        raise HTTPException(303, "log in with an API key", headers={"Location": LOGIN})
    return key


def _same_origin(request: Request) -> None:
    """A form that changes state must come from a page of this origin (CSRF, login CSRF):
    browsers send ``Origin`` with every POST (``Referer`` is the fallback). Behind a proxy
    the origin is the one the browser saw: the proxy passes ``Host`` and
    ``X-Forwarded-Proto`` (see the README)."""
    sent = request.headers.get("origin")
    if sent is None and (referer := request.headers.get("referer")):
        parts = urlsplit(referer)
        sent = f"{parts.scheme}://{parts.netloc}"
    own = f"{request.url.scheme}://{request.url.netloc}"
    if sent != own:
        raise HTTPException(
            403, f"this form must be posted from {own} (it came from {sent or 'no origin'})"
        )


Viewer = Annotated[ApiKey, Depends(_viewer)]
SameOrigin = Depends(_same_origin)
From = Annotated[str | None, Query(alias="from", description="a date or ISO 8601 time")]
To = Annotated[str | None, Query(alias="to", description="a date or ISO 8601 time")]


def _zone(request: Request) -> str:
    return zone.viewer_zone(get_state(request).catalog, request.cookies.get(zone.ZONE_COOKIE))


def _chrome(request: Request, key: ApiKey | None) -> dict[str, Any]:
    """What the navigation bar of every page shows: the teams the key sees, the zone picker
    (which returns to this page) and log out."""
    catalog = get_state(request).catalog
    current = _zone(request)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return {
        "key": key,
        "teams_nav": [team for team in catalog.teams if key is not None and _sees(key, team)],
        "zone": current,
        "zones": zone.suggestions(catalog, current),
        "here": here,
    }


def _page(
    request: Request, template: str, key: ApiKey | None, status: int = 200, **context: Any
) -> HTMLResponse:
    return _templates.TemplateResponse(
        request, f"{template}.html.j2", {**_chrome(request, key), **context}, status_code=status
    )


def _header(request: Request, key: ApiKey) -> Markup:
    """The navigation bar alone, for pages rendered by the engine (docs, reports)."""
    return Markup(_env.get_template("_nav.html.j2").render(_chrome(request, key)))


def _refuse(request: Request, key: ApiKey, status: int, message: str) -> HTMLResponse:
    return _page(request, "error", key, status, status_code=status, message=message)


def _period(request: Request, since: str | None, until: str | None) -> tuple[datetime | None, ...]:
    """A period typed on a page; times without an offset are in the viewer's zone."""
    here = _zone(request)
    return zone.read_moment(since, "from", here), zone.read_moment(until, "to", here)


def _sees(key: ApiKey, team: str) -> bool:
    return key.team in (None, team)


def _unseen_team(request: Request, state: AppState, key: ApiKey, team: str) -> HTMLResponse | None:
    """The refusal of a team's page: unknown (404) or not the key's team (403)."""
    if team not in state.catalog.teams:
        return _refuse(request, key, 404, f"There is no team '{team}' in promises/teams.yaml.")
    if not _sees(key, team):
        return _refuse(request, key, 403, f"The key '{key.name}' may only read team '{key.team}'.")
    return None


# --- login -------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return _page(request, "login", None)


@router.post("/login", response_class=HTMLResponse, response_model=None, dependencies=[SameOrigin])
def login(
    request: Request, state: StateDep, key: Annotated[str, Form()] = ""
) -> HTMLResponse | RedirectResponse:
    """Check the key once, then keep it in a cookie the page's scripts (none) cannot read."""
    found = usable_key(state, key.strip()) if key.strip() else None
    if not isinstance(found, ApiKey):
        message = f"That key is refused: {found or UNKNOWN}. Create one with `promise keys create`."
        return _page(request, "login", None, 401, message=message)
    if not found.allows("read"):
        message = f"The key '{found.name}' lacks the 'read' scope the dashboard needs."
        return _page(request, "login", None, 403, message=message)
    response = RedirectResponse("/ui", status_code=303)
    response.set_cookie(
        KEY_COOKIE,
        key.strip(),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/zone", dependencies=[SameOrigin], response_model=None)
def choose_zone(
    request: Request,
    chosen: Annotated[str, Form(alias="zone")] = "",
    back: Annotated[str, Form()] = "/ui",
) -> HTMLResponse | RedirectResponse:
    """Keep the viewer's zone in a cookie, then return to the page the picker was on."""
    chosen = chosen.strip()
    if not zone.is_zone(chosen):
        message = f"'{chosen}' is not a time zone; use an IANA name such as Europe/London or UTC."
        return _page(request, "error", None, 422, status_code=422, message=message)
    # Only a dashboard path (not //host, which a browser would read as another site).
    target = back if back.startswith("/ui") and not back.startswith("//") else "/ui"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        zone.ZONE_COOKIE,
        chosen,
        max_age=365 * 86_400,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout", dependencies=[SameOrigin])
def logout() -> RedirectResponse:
    response = RedirectResponse(LOGIN, status_code=303)
    response.delete_cookie(KEY_COOKIE)
    return response


# --- pages -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromiseRow:
    """One promise on the overview or a team page."""

    promise: Promise
    kept: int
    broken: int
    at_risk: int
    pending: int
    chart: Markup
    objective: Objective | None
    """Its burn-rate rules at the engine's clock; None for a promise without any."""

    @property
    def attainment(self) -> float | None:
        return outcomes.attainment(self.kept, self.broken)


def _rows(
    state: AppState,
    promises: list[Promise],
    team: str | None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[PromiseRow]:
    """Kept and broken in the period (all time without one); open counts as of now. Outcomes
    of ``team`` only, when given, like the JSON API for a team-restricted key."""
    decided = {r.group: r for r in state.queries.compliance(since, until, "promise", team=team)}
    now = state.queries.states(team)
    burns = state.queries.objectives(promises)
    weeks_shown = Bounds.from_settings(state.settings).max_weeks
    rows = []
    for p in promises:
        counts = decided.get(p.id)
        weeks = trend.weekly_trend(
            state.sessions,
            promise=p.id,
            team=team,
            since=since,
            until=until,
            max_weeks=weeks_shown,
        )
        rows.append(
            PromiseRow(
                promise=p,
                kept=counts.kept if counts else 0,
                broken=counts.broken if counts else 0,
                at_risk=now.get((p.id, "at_risk"), 0),
                pending=now.get((p.id, "pending"), 0),
                chart=render.trend_svg(weeks, p.objective, width=240, height=80),
                objective=burns.get(p.id),
            )
        )
    return rows


@router.get("", response_class=HTMLResponse)
def overview(
    request: Request, state: StateDep, key: Viewer, since: From = None, until: To = None
) -> HTMLResponse:
    """Every promise the key may see, with attainment, counts and its weekly trend."""
    try:
        period = _period(request, since, until)
    except ValueError as exc:
        return _refuse(request, key, 422, str(exc))
    try:
        Bounds.from_settings(state.settings).check_period(*period)
    except PeriodTooLong as exc:
        return _refuse(request, key, 400, str(exc))
    promises = [p for p in state.catalog.promises.values() if _sees(key, p.owner)]
    return _page(
        request,
        "overview",
        key,
        rows=_rows(state, promises, key.team, *period),
        since=since or "",
        until=until or "",
    )


@router.get("/teams/{team}", response_class=HTMLResponse)
def team_page(request: Request, team: str, state: StateDep, key: Viewer) -> HTMLResponse:
    """A team's promises, what is at risk now, and its latest breaches."""
    if (refused := _unseen_team(request, state, key, team)) is not None:
        return refused
    promises = [p for p in state.catalog.promises.values() if p.owner == team]
    weeks = trend.weekly_trend(
        state.sessions, team=team, max_weeks=Bounds.from_settings(state.settings).max_weeks
    )
    return _page(
        request,
        "team",
        key,
        team=state.catalog.teams[team],
        rows=_rows(state, promises, team),
        chart=render.trend_svg(weeks, None),
        at_risk=state.queries.latest(OutcomeFilter(team=team, state="at_risk"), 100),
        breaches=state.queries.latest(
            OutcomeFilter(team=team, state="broken", by_decision=True), 20
        ),
    )


@router.get("/promises/{promise_id}", response_class=HTMLResponse)
def promise_page(request: Request, promise_id: str, state: StateDep, key: Viewer) -> HTMLResponse:
    """A promise in plain words, its living documentation and its latest outcomes."""
    promise = state.catalog.promises.get(promise_id)
    if promise is None:
        return _refuse(request, key, 404, f"There is no promise '{promise_id}'.")
    if not _sees(key, promise.owner):
        return _refuse(request, key, 403, f"The key '{key.name}' may only read team '{key.team}'.")
    [row] = _rows(state, [promise], key.team)
    return _page(
        request,
        "promise",
        key,
        promise=promise,
        row=row,
        summary=summarise(promise, state.catalog.calendar_for(promise)),
        scenarios=scenarios(_features(state), promise.id),
        outcomes=state.queries.latest(OutcomeFilter(promise=promise.id, team=key.team), 50),
    )


@router.get("/customers/{customer_id:path}", response_class=HTMLResponse)
def customer_page(request: Request, customer_id: str, state: StateDep, key: Viewer) -> HTMLResponse:
    """The customer's journey across channels and teams, with its moments of truth.

    A key without a team sees every record; a team key sees the records its team handled
    and those its team's outcomes rest on, and only its team's outcomes, as in the API.
    """
    journey = customer_journey(state.sessions, state.queries, customer_id, team=key.team)
    status = 200 if journey.total else 404
    return _page(request, "customer", key, status, journey=journey)


@router.get("/outcomes/{outcome_id}", response_class=HTMLResponse)
def outcome_page(
    request: Request, outcome_id: OutcomeId, state: StateDep, key: Viewer
) -> HTMLResponse:
    """One outcome: what happened in plain words and its evidence on a timeline, in the
    viewer's zone like every page. What alerts link to (``GET /outcomes/{id}`` takes bearer
    keys only); a team key sees its team's outcomes only, as there."""
    found = explained_outcome(
        state.sessions,
        state.queries,
        state.catalog,
        outcome_id,
        team=key.team,
        timezone=_zone(request),
    )
    if found is None:
        return _refuse(request, key, 404, f"There is no outcome {outcome_id} you may read.")
    return _page(request, "outcome", key, found=found)


@router.get("/reports/{team}", response_class=HTMLResponse)
def report_page(
    request: Request, team: str, state: StateDep, key: Viewer, since: From = None, until: To = None
) -> HTMLResponse:
    """The team's breach report (as ``GET /reports/{team}``, which takes bearer keys only)."""
    if (refused := _unseen_team(request, state, key, team)) is not None:
        return refused
    try:
        period = _period(request, since, until)
    except ValueError as exc:
        return _refuse(request, key, 422, str(exc))
    report = build.build_report(state.sessions, state.catalog, team, *period)
    return HTMLResponse(render.render(report, "html", header=_header(request, key)))


# --- living documentation: the pages of `promise docs`, rendered by the same function -----------

_DOCS_LINKS = site.Links("/ui/docs/", "", "/ui/docs")


def _docs_catalog(catalog: Catalog, key: ApiKey) -> Catalog:
    """The promises and teams the key may see, as everywhere else on the dashboard."""
    return Catalog(
        promises={i: p for i, p in catalog.promises.items() if _sees(key, p.owner)},
        teams={i: t for i, t in catalog.teams.items() if _sees(key, i)},
        calendars=catalog.calendars,
    )


def _features(state: AppState) -> Path:
    """The running catalog's feature files (``PROMISE_FEATURES_DIR``, else beside it)."""
    return features.features_dir(state.settings.dir, state.settings.features_dir)


def _docs(state: AppState, key: ApiKey) -> tuple[Catalog, Path, results.Results]:
    found = results.load_results(state.settings.docs_results)
    return _docs_catalog(state.catalog, key), _features(state), found


@router.get("/docs", response_class=HTMLResponse)
def docs_index(request: Request, state: StateDep, key: Viewer) -> HTMLResponse:
    page = site.render_index(*_docs(state, key), _DOCS_LINKS, header=_header(request, key))
    return HTMLResponse(page)


@router.get("/docs/promises/{promise_id}", response_class=HTMLResponse)
def docs_promise(request: Request, promise_id: str, state: StateDep, key: Viewer) -> HTMLResponse:
    page = site.render_promise(
        *_docs(state, key), _DOCS_LINKS, promise_id, header=_header(request, key)
    )
    if page is None:
        return _refuse(request, key, 404, f"There is no promise '{promise_id}' you may read.")
    return HTMLResponse(page)


@router.get("/docs/teams/{team}", response_class=HTMLResponse)
def docs_team(request: Request, team: str, state: StateDep, key: Viewer) -> HTMLResponse:
    page = site.render_team(*_docs(state, key), _DOCS_LINKS, team, header=_header(request, key))
    if page is None:
        return _refuse(request, key, 404, f"There is no team '{team}' you may read.")
    return HTMLResponse(page)


@router.get("/docs/features/{promise_id}.feature", response_class=PlainTextResponse)
def docs_feature(request: Request, promise_id: str, state: StateDep, key: Viewer) -> Response:
    promise = state.catalog.promises.get(promise_id)  # only catalog ids reach the file system
    path = features.feature_path(_features(state), promise_id) if promise else None
    if promise is None or not _sees(key, promise.owner) or path is None or not path.is_file():
        return _refuse(request, key, 404, f"There is no feature file for '{promise_id}'.")
    return PlainTextResponse(path.read_text(encoding="utf-8"))
