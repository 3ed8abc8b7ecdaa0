"""Operations: Prometheus metrics, liveness and readiness.

Metrics are every team's figures (outcomes per promise, deliveries per team): a team key
gets 403, Prometheus scrapes with a ``metrics`` key (or without one under
``PROMISE_METRICS_OPEN``). Liveness and readiness answer without a key, because Kubernetes
and load balancers cannot send one; without a key readiness counts quarantined promises but
does not name them (names are a team's business), and a key that reads lists those of its
team (all of them for a key without a team).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import AppState, Presented, Scraper, StateDep
from api.schemas import Health, Readiness

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=PlainTextResponse, dependencies=[Scraper])
def metrics(state: StateDep) -> PlainTextResponse:
    """Prometheus text format: records ingested by status, stored, evaluation lag,
    outcomes by promise and state."""
    return PlainTextResponse(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is alive (needs no database)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness)
def readyz(state: StateDep, key: Presented) -> JSONResponse:
    """Database reachable, worker seen recently, how many records wait for it and how many
    promises are quarantined; no key needed. With a key that reads, which promises (of its
    team, for a team key)."""
    try:  # each of these reads the database
        seen = state.queries.worker_seen()
        lag = state.queries.lag()
        held = state.queries.quarantined()
        named = None
        if key is not None and key.allows("read"):
            named = sorted(p for p in held if key.team in (None, _owner(state, p)))
    except Exception:  # the database is down: say so, do not crash
        body = Readiness(
            status="degraded", database=False, worker_seen_seconds_ago=None, evaluation_lag=0
        )
        return JSONResponse(body.model_dump(), status_code=503)
    ago = (datetime.now(UTC) - seen).total_seconds() if seen else None
    ready = ago is not None and ago < 30
    body = Readiness(
        status="ready" if ready else "degraded",
        database=True,
        worker_seen_seconds_ago=ago,
        evaluation_lag=lag,
        quarantined_count=len(held),
        quarantined=named,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


def _owner(state: AppState, promise_id: str) -> str | None:
    """The owner of a quarantined promise, None if it left the catalog since."""
    promise = state.catalog.promises.get(promise_id)
    return promise.owner if promise else None
