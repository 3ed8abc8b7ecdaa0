"""Operations: Prometheus metrics, liveness and readiness.

Metrics are every team's figures (outcomes per promise, deliveries per team): a team key
gets 403, Prometheus scrapes with a key without a team. Readiness is the service's, and
open to every reader, but lists only the quarantined promises of a team key's team.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import AppState, Reader, StateDep, Whole
from api.schemas import Health, Readiness

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(state: StateDep, _: Whole, __: Reader) -> PlainTextResponse:
    """Prometheus text format: records ingested by status, stored, evaluation lag,
    outcomes by promise and state."""
    return PlainTextResponse(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is alive (needs no database)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness)
def readyz(state: StateDep, key: Reader) -> JSONResponse:
    """Database reachable, worker seen recently, and how many records wait for it."""
    try:  # each of these reads the database
        seen = state.queries.worker_seen()
        lag = state.queries.lag()
        quarantined = sorted(
            pid
            for pid in state.queries.quarantined()
            if key.team is None or _owner(state, pid) == key.team
        )
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
        quarantined=quarantined,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


def _owner(state: AppState, promise_id: str) -> str | None:
    """The owner of a quarantined promise, None if it left the catalog since."""
    promise = state.catalog.promises.get(promise_id)
    return promise.owner if promise else None
