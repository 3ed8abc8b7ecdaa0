"""What routes depend on: the engine built once per application, API keys and their scopes,
and query parameters that several routes share.

Kept apart from ``app.py`` so that routers in other modules (reports, the dashboard) use the
same authentication and engine as the JSON API.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Annotated, Any

from fastapi import Cookie, Depends, HTTPException, Query, Request
from fastapi import Path as FastAPIPath
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.metrics import Metrics
from engine.keys import ApiKey, Scope, verify
from engine.reading.queries import Queries
from engine.records import RecordLimits
from engine.sandbox.pool import Sandbox
from engine.service import PromiseService
from engine.settings import Settings
from engine.storage.database import make_engine, migrate, session_factory
from rules.errors import DefinitionError
from rules.loader import check_directory, load_catalog
from rules.models import Catalog

State = Annotated[str | None, Query(pattern="^(pending|at_risk|kept|broken|cancelled)$")]


class Engine:
    """What the routes need, built once per application."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = make_engine(settings.database_url)
        migrate(self.db)
        self.sessions = session_factory(self.db)
        self._use(load_catalog(settings.dir))
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
        )
        self.queries = Queries(catalog, self.sessions)
        self.catalog = catalog

    def reload(self) -> list[str]:
        """Load the catalog again; an invalid one raises and leaves the running one in force.

        Returns the ids of promises that changed (a new version) or appeared.
        """
        with self._reloading:
            result = check_directory(self.settings.dir)
            if result.catalog is None:
                raise DefinitionError(result.errors)
            before = {pid: p.version for pid, p in self.catalog.promises.items()}
            self._use(result.catalog)
            return sorted(
                pid for pid, p in result.catalog.promises.items() if before.get(pid) != p.version
            )


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


EngineDep = Annotated[Engine, Depends(get_engine)]
_bearer = HTTPBearer(auto_error=False, description="An API key from `promise keys create`.")


KEY_COOKIE = "promise_key"
"""Browsers cannot send bearer headers: the dashboard's login keeps the key in this cookie."""


def authenticated(
    e: EngineDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Cookie(alias=KEY_COOKIE, include_in_schema=False)] = None,
) -> ApiKey:
    if credentials is None and cookie:
        token = cookie
    elif credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            401,
            "missing API key: send 'Authorization: Bearer <key>' (create "
            "one with `promise keys create`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    else:
        token = credentials.credentials
    key = verify(e.sessions, token)
    if key is None:
        raise HTTPException(
            401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"}
        )
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


def aware(since: datetime | None, until: datetime | None) -> None:
    for name, moment in (("from", since), ("to", until)):
        if moment is not None and moment.tzinfo is None:
            raise HTTPException(422, f"'{name}' needs a UTC offset or Z, e.g. 2024-03-01T00:00:00Z")


class Listing:
    """Query parameters shared by /outcomes and /breaches."""

    def __init__(
        self,
        promise: str | None = None,
        team: str | None = None,
        customer_id: str | None = None,
        since: Since = None,
        until: Until = None,
        cursor: Annotated[str | None, Query(description="`next_cursor` of the page before")] = None,
        limit: Limit = 100,
    ) -> None:
        aware(since, until)
        self.promise, self.team, self.customer_id = promise, team, customer_id
        self.since, self.until, self.cursor, self.limit = since, until, cursor, limit
