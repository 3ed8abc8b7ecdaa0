"""What routes depend on: the application's state (built once), API keys and their scopes,
path parameters checked once, and query parameters that several routes share.

Kept apart from ``app.py`` so that every router (the JSON API, reports, the dashboard) uses
the same authentication and state.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request
from fastapi import Path as FastAPIPath
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.metrics import Metrics
from engine.errors import NotFound
from engine.keys import UNKNOWN, ApiKey, Scope, verify
from engine.outcomes import State
from engine.reading.queries import Queries
from engine.records import RecordLimits
from engine.runtime import Runtime
from engine.sandbox.pool import Sandbox
from engine.service import PromiseService
from engine.settings import Settings
from rules.models import Catalog, Promise

OutcomeState = Annotated[State | None, Query(alias="state")]


class AppState:
    """What the routes need, built once per application: the runtime (database and catalog
    in force), the services over that catalog, the sandbox and the metrics."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime = Runtime.open(settings)
        self.sessions = self.runtime.sessions
        self._use(self.runtime.catalog)
        self.sandbox = Sandbox(settings)
        self.metrics = Metrics(lambda: self.queries)
        self._reloading = threading.Lock()

    def _use(self, catalog: Catalog) -> None:
        # PromiseService records every version it has not seen before.
        self.service = PromiseService(
            catalog,
            self.sessions,
            erasure_key=self.settings.erasure_key,
            limits=RecordLimits.from_settings(self.settings),
            backfill_alert_window=self.settings.backfill_alert_window,
        )
        self.queries = Queries(catalog, self.sessions)
        self.catalog = catalog

    def reload(self) -> list[str]:
        """Load the catalog again; an invalid one raises InvalidDefinition and leaves the
        running one in force. Returns the ids of promises that changed or appeared."""
        with self._reloading:
            changed = self.runtime.reload()
            self._use(self.runtime.catalog)
            return changed

    @property
    def in_force(self) -> str:
        """Names the catalog in force, so the sandbox reloads after a reload."""
        return ",".join(f"{p.id}@{p.version}" for p in self.catalog.promises.values())


def get_state(request: Request) -> AppState:
    return request.app.state.promise_state


StateDep = Annotated[AppState, Depends(get_state)]
_bearer = HTTPBearer(auto_error=False, description="An API key from `promise keys create`.")


KEY_COOKIE = "promise_key"
"""Browsers cannot send bearer headers: the dashboard's login keeps the key in this cookie,
which only ``/ui`` pages accept (``api.ui.pages``): a cookie rides along with requests that
another page makes (same-site CSRF), a bearer header never does."""


def usable_key(state: AppState, token: str) -> ApiKey | str:
    """The key behind ``token``, or why it is refused (unknown, revoked or expired)."""
    key = verify(state.sessions, token)
    if key is None:
        return UNKNOWN
    return key.refusal() or key


def presented(
    request: Request,
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey | None:
    """The bearer key if one was sent (401 if it is refused), None if none was: for what
    answers without a key, and says more with one (``/readyz``)."""
    if credentials is None:
        return None
    if credentials.scheme.lower() != "bearer":
        raise HTTPException(401, _MISSING, headers={"WWW-Authenticate": "Bearer"})
    key = usable_key(state, credentials.credentials)
    if isinstance(key, str):
        raise HTTPException(401, key, headers={"WWW-Authenticate": "Bearer"})
    request.state.key = key  # names the key in answers to engine errors (api.errors)
    return key


_MISSING = (
    "missing API key: send 'Authorization: Bearer <key>' (create one with `promise keys create`)"
)
Presented = Annotated[ApiKey | None, Depends(presented)]


def authenticated(key: Presented) -> ApiKey:
    """The bearer key of the JSON API (never the dashboard's cookie)."""
    if key is None:
        raise HTTPException(401, _MISSING, headers={"WWW-Authenticate": "Bearer"})
    return key


def _scope(scope: Scope) -> Any:
    def check(key: Annotated[ApiKey, Depends(authenticated)]) -> ApiKey:
        if not key.allows(scope):
            raise HTTPException(
                403,
                f"the key '{key.name}' lacks the '{scope}' scope "
                f"(it has: {', '.join(sorted(key.scopes))})",
            )
        return key

    return Depends(check)


Reader = Annotated[ApiKey, _scope("read")]
OutcomeId = Annotated[int, FastAPIPath(ge=1, le=2**63 - 1, description="An outcome's `id`.")]
Admin = Annotated[ApiKey, _scope("admin")]
Ingester = Annotated[ApiKey, _scope("ingest")]


def _whole(key: Annotated[ApiKey, Depends(authenticated)]) -> ApiKey:
    """A key without a team, for what reads or changes every team's data at once: a
    customer's export or erasure, backtests of drafts over all stored records, metrics.
    Checked before scopes, so the refusal says why."""
    if key.team is not None:
        raise HTTPException(
            403,
            f"the key '{key.name}' is limited to team '{key.team}': team-restricted keys "
            "cannot export, erase, backtest drafts or read metrics, which reach every "
            "team's records",
        )
    return key


Whole = Annotated[ApiKey, Depends(_whole)]


def scraper(state: StateDep, key: Presented) -> None:
    """Who may read ``/metrics``: anyone with ``PROMISE_METRICS_OPEN``, else a key without a
    team that has the ``metrics`` scope (or ``read``, which reads as much)."""
    if state.settings.metrics_open:
        return
    key = _whole(authenticated(key))
    if not (key.allows("metrics") or key.allows("read")):
        raise HTTPException(
            403,
            f"the key '{key.name}' lacks the 'metrics' scope (it has: "
            f"{', '.join(sorted(key.scopes))}); create one with `promise keys create "
            "prometheus --scopes metrics`",
        )


Scraper = Depends(scraper)


def team_of(key: ApiKey, asked: str | None) -> str | None:
    """A team-restricted key reads its own team only."""
    if key.team is None:
        return asked
    if asked not in (None, key.team):
        raise HTTPException(403, f"the key '{key.name}' may only read team '{key.team}'")
    return key.team


Since = Annotated[datetime | None, Query(alias="from", description="ISO 8601, inclusive")]
Until = Annotated[datetime | None, Query(alias="to", description="ISO 8601, exclusive")]
Limit = Annotated[int, Query(ge=1, le=1000)]


def aware(moments: dict[str, datetime | None]) -> None:
    """Refuse a naive time (422 naming the parameter): every time here is an instant."""
    for name, moment in moments.items():
        if moment is not None and moment.tzinfo is None:
            reason = "needs a UTC offset or Z, e.g. 2024-03-01T00:00:00Z"
            raise HTTPException(422, [{"field": name, "reason": reason}])


class Listing:
    """Query parameters shared by /outcomes and /breaches."""

    def __init__(
        self,
        promise: str | None = None,
        team: str | None = None,
        customer_id: str | None = None,
        case_id: Annotated[
            str | None, Query(description="A case: outcomes of promises scoped by `case_id`.")
        ] = None,
        scope: Annotated[
            str | None,
            Query(description="A scope value (a case or customer id, as the promise scopes)."),
        ] = None,
        since: Since = None,
        until: Until = None,
        cursor: Annotated[str | None, Query(description="`next_cursor` of the page before")] = None,
        limit: Limit = 100,
    ) -> None:
        aware({"from": since, "to": until})
        self.promise, self.team, self.customer_id = promise, team, customer_id
        self.case_id, self.scope = case_id, scope
        self.since, self.until, self.cursor, self.limit = since, until, cursor, limit


def valid_promise(promise_id: str, state: StateDep) -> Promise:
    """The promise in force named in the path."""
    promise = state.catalog.promises.get(promise_id)
    if promise is None:
        raise NotFound(f"no promise '{promise_id}'; see GET /promises")
    return promise


ValidPromise = Annotated[Promise, Depends(valid_promise)]
