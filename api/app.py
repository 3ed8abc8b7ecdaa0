"""The FastAPI application: thin routes over ``engine`` services, one error family.

Routes do blocking work (SQLAlchemy sessions), so they are plain ``def``. Evaluation never
happens here: accepted records are queued for the worker process.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import unquote

import orjson
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from api import alerts, customers, reports, ui
from api.deps import (
    Admin,
    Engine,
    EngineDep,
    Ingester,
    Listing,
    OutcomeId,
    Reader,
    Since,
    State,
    Until,
    aware,
    team_of,
)
from api.schemas import (
    BacktestAnswer,
    BreachAction,
    BreachHandling,
    CheckAnswer,
    ComplianceAnswer,
    ComplianceGroup,
    CustomerStanding,
    DraftPromise,
    GivenOut,
    Health,
    IngestAnswer,
    OutcomeOut,
    OutcomePage,
    Problem,
    PromiseDetail,
    PromiseOut,
    PromiseVersion,
    ProspectiveRecord,
    QuarantineOut,
    Readiness,
    RecordResult,
    ReleaseAnswer,
    ReloadAnswer,
    WouldBreak,
)
from engine.evaluation.quarantine import Quarantine
from engine.ingest.decoding import BadBatch, decode_batch
from engine.keys import ApiKey
from engine.reading import breaches
from engine.reading.queries import GroupBy, OutcomeFilter, StoredOutcome
from engine.records import RecordIn, parse_record
from engine.sandbox.pool import SandboxCrashed
from engine.settings import Settings
from engine.storage.paging import BadCursor
from rules.errors import DefinitionError
from rules.summary import summarise
from rules.version import canonical

log = logging.getLogger("promise.api")
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_BATCH = 1_000
_RECORD_SCHEMA = RecordIn.model_json_schema()
_EXAMPLE_RECORD = {
    "id": "evt-000123",
    "occurred_at": "2024-03-01T10:00:00Z",
    "customer_id": "C-1",
    "case_id": "K-9",
    "channel": "email",
    "direction": "inbound",
    "type": "message",
    "team": "claims",
    "attributes": {"item": "policy_number"},
}


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    app.state.engine.sandbox.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(
        title="Promise engine",
        summary="Customer promises checked against every interaction, in event time.",
        version="0.1.0",
        lifespan=_lifespan,
    )
    app.state.engine = Engine(settings)
    app.include_router(ui.router)
    app.include_router(reports.router)
    app.include_router(alerts.router)
    app.include_router(customers.router)

    @app.exception_handler(SandboxCrashed)
    def _sandbox_crashed(_: Request, exc: SandboxCrashed) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeout)
    def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        # The database is down, restarting or locked. The request's transaction almost
        # certainly did not commit; sending it again is safe (stored ids answer "duplicate").
        log.warning("database unavailable: %s", str(exc).splitlines()[0])
        return JSONResponse(
            {"detail": "the database is unavailable; send the request again shortly"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    app.add_middleware(_RefuseNul)

    @app.exception_handler(BadCursor)
    def _bad_cursor(_: Request, exc: BadCursor) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    def metrics(e: EngineDep, _: Reader) -> PlainTextResponse:
        """Prometheus text format: records ingested by status, stored, evaluation lag,
        outcomes by promise and state."""
        return PlainTextResponse(e.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", response_model=Health, tags=["operations"])
    def healthz() -> Health:
        """The process is alive (needs no database)."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Readiness, tags=["operations"])
    def readyz(e: EngineDep, _: Reader) -> JSONResponse:
        """Database reachable, worker seen recently, and how many records wait for it."""
        try:
            with e.db.connect() as connection:
                connection.execute(text("SELECT 1"))
            seen = e.queries.worker_seen()
            lag = e.queries.lag()
            quarantined = sorted(e.queries.quarantined())
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

    @app.post(
        "/interactions",
        response_model=IngestAnswer,
        tags=["interactions"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                _RECORD_SCHEMA,
                                {"type": "array", "items": _RECORD_SCHEMA, "maxItems": MAX_BATCH},
                            ]
                        },
                        "example": [_EXAMPLE_RECORD],
                    }
                },
            }
        },
    )
    async def post_interactions(request: Request, e: EngineDep, _: Ingester) -> IngestAnswer:
        """Store one record or a list of at most 1,000 (16 MiB), each answered on its own:
        `accepted` (stored, to be evaluated), `duplicate` (already stored, same content) or
        `rejected` (with the field and reason). A bad record never loses the others."""
        media = request.headers.get("content-type", "application/json").split(";")[0].strip()
        if media.lower() != "application/json" and not media.lower().endswith("+json"):
            raise HTTPException(415, f"Content-Type must be application/json; got '{media}'")
        # Counted as it arrives, kept only up to the limit: a 1 GB body costs no memory.
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size <= MAX_BODY_BYTES:
                chunks.append(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(413, f"body is {size} bytes; the limit is {MAX_BODY_BYTES}")
        body = b"".join(chunks)
        try:
            payload: Any = orjson.loads(body)
        except orjson.JSONDecodeError:
            try:  # say where and why; or read lone surrogates, refused record by record
                payload = decode_batch(body)
            except BadBatch as exc:
                raise HTTPException(400, str(exc)) from None
        records = payload if isinstance(payload, list) else [payload]
        if len(records) > MAX_BATCH:
            raise HTTPException(
                413,
                f"{len(records)} records in one request; the limit is {MAX_BATCH}: split the batch",
            )
        answers = await run_in_threadpool(e.service.accept, records)
        results = [
            RecordResult(
                # A lone surrogate in an echoed id cannot be encoded as JSON: escape it.
                id=a.id.encode("utf-8", "backslashreplace").decode() if a.id else a.id,
                status=a.status,
                problems=[Problem(field=p.field, reason=p.reason) for p in a.problems],
            )
            for a in answers
        ]
        for result in results:
            e.metrics.ingested.labels(result.status).inc()
        return IngestAnswer(
            accepted=sum(r.status == "accepted" for r in results),
            duplicate=sum(r.status == "duplicate" for r in results),
            rejected=sum(r.status == "rejected" for r in results),
            results=results,
        )

    def _page(
        e: Engine, key: ApiKey, listing: Listing, state: str | None, by_decision: bool
    ) -> OutcomePage:
        where = OutcomeFilter(
            promise=listing.promise,
            team=team_of(key, listing.team),
            customer_id=listing.customer_id,
            state=state,  # type: ignore[arg-type]
            since=listing.since,
            until=listing.until,
            by_decision=by_decision,
        )
        page = e.queries.outcomes(where, listing.cursor, listing.limit)
        return OutcomePage(items=[_out(o) for o in page.items], next_cursor=page.next_cursor)

    @app.get("/outcomes", response_model=OutcomePage, tags=["compliance"])
    def get_outcomes(
        e: EngineDep, key: Reader, listing: Annotated[Listing, Depends()], state: State = None
    ) -> OutcomePage:
        """Outcomes, oldest first; `from`/`to` bound when the opportunity opened."""
        return _page(e, key, listing, state, by_decision=False)

    @app.get("/outcomes/{outcome_id}", response_model=OutcomeOut, tags=["compliance"])
    def get_outcome(outcome_id: OutcomeId, e: EngineDep, key: Reader) -> OutcomeOut:
        """One outcome: what alerts link to."""
        stored = e.queries.outcome(outcome_id)
        if stored is None or key.team not in (None, stored.team):
            raise HTTPException(404, f"no outcome {outcome_id}")
        return _out(stored)

    @app.get("/breaches", response_model=OutcomePage, tags=["compliance"])
    def get_breaches(
        e: EngineDep, key: Reader, listing: Annotated[Listing, Depends()]
    ) -> OutcomePage:
        """Broken outcomes, oldest first; `from`/`to` bound when the promise broke."""
        return _page(e, key, listing, "broken", by_decision=True)

    @app.patch("/breaches/{outcome_id}", response_model=OutcomeOut, tags=["compliance"])
    def patch_breach(
        outcome_id: OutcomeId, action: BreachAction, e: EngineDep, key: Reader
    ) -> OutcomeOut:
        """Acknowledge or resolve a breach, with an assignee and a root-cause note; kept with
        the key that acted and when. A team-restricted key acts for its own team only."""
        try:
            breaches.act(
                e.sessions,
                outcome_id,
                action.status,
                key.name,
                assignee=action.assignee,
                note=action.note,
                team=key.team,
            )
        except breaches.NotABreach as exc:
            raise HTTPException(404, str(exc)) from None
        except breaches.OtherTeam as exc:
            raise HTTPException(
                403, f"the key '{key.name}' may only act for team '{key.team}': {exc}"
            ) from None
        stored = e.queries.outcome(outcome_id)
        assert stored is not None  # it was just acted upon
        return _out(stored)

    @app.get("/compliance", response_model=ComplianceAnswer, tags=["compliance"])
    def get_compliance(
        e: EngineDep,
        key: Reader,
        since: Since = None,
        until: Until = None,
        group_by: GroupBy = "promise",
    ) -> ComplianceAnswer:
        """Kept, broken and compliance (kept / decided) of outcomes decided in the period."""
        aware(since, until)
        rows = e.queries.compliance(since, until, group_by, team=key.team)
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

    @app.get(
        "/customers/{customer_id}/promises", response_model=CustomerStanding, tags=["customers"]
    )
    def customer_promises(customer_id: str, e: EngineDep, key: Reader) -> CustomerStanding:
        """Every promise's standing for one customer: open clocks, at risk, recent breaches."""
        standing = e.queries.standing(customer_id, team=key.team)
        given = [
            g
            for g in e.sandbox.given(customer_id, _in_force(e))
            if key.team in (None, e.catalog.promises[g["promise"]].owner)
        ]
        return CustomerStanding(
            customer_id=customer_id,
            open=[_out(o) for o in standing.open],
            at_risk=[_out(o) for o in standing.at_risk],
            recent_breaches=[_out(o) for o in standing.recent_breaches],
            given=[GivenOut(**g) for g in given],
        )

    @app.post("/customers/{customer_id}/check", response_model=CheckAnswer, tags=["customers"])
    def check_customer(
        customer_id: str, planned: ProspectiveRecord, e: EngineDep, key: Reader
    ) -> CheckAnswer:
        """Pre-flight: which promises would this record break, and why? Nothing is stored.

        For example, before the claims team asks for `policy_number` by email: Ask Once
        answers with the earlier record in which the customer already gave it.
        """
        raw = {**planned.model_dump(mode="json", exclude_none=True), "customer_id": customer_id}
        raw.setdefault("id", "pre-flight-check")
        raw.setdefault("occurred_at", datetime.now(UTC).isoformat())
        parsed = parse_record(raw, e.service.limits)
        if isinstance(parsed, list):
            raise HTTPException(422, [{"field": p.field, "reason": p.reason} for p in parsed])
        verdicts = [
            v for v in e.sandbox.preflight(raw, _in_force(e)) if key.team in (None, v["owner"])
        ]
        return CheckAnswer(
            customer_id=customer_id,
            ok=not verdicts,
            would_break=[WouldBreak(**v) for v in verdicts],
        )

    @app.post(
        "/promises/reload",
        response_model=ReloadAnswer,
        tags=["promises"],
        responses={
            422: {
                "description": "The edited catalog is invalid; the running promises stay in force."
            }
        },
    )
    def reload_promises(e: EngineDep, _: Admin) -> ReloadAnswer | JSONResponse:
        """Pick up edits to the promise files without a restart (also on SIGHUP).

        The catalog is validated first: an invalid edit is refused with the same
        `FILE:LINE: message` problems as `promise check`, and nothing changes.
        """
        try:
            changed = e.reload()
        except DefinitionError as exc:
            return JSONResponse(
                {
                    "detail": "the promise catalog is invalid; the running promises stay in force",
                    "problems": [str(p) for p in exc.problems],
                },
                status_code=422,
            )
        return ReloadAnswer(promises=len(e.catalog.promises), changed=changed)

    @app.post(
        "/promises/backtest",
        response_model=BacktestAnswer,
        tags=["promises"],
        responses={422: {"description": "The draft is invalid (FILE:LINE problems)."}},
    )
    def backtest_promise(draft: DraftPromise, e: EngineDep, _: Reader) -> Any:
        """Evaluate a draft definition over the stored history, storing nothing: its
        outcomes, and which opportunities would change state against the version in force."""
        try:
            return BacktestAnswer(**e.sandbox.backtest(draft.yaml))
        except DefinitionError as exc:
            return JSONResponse(
                {
                    "detail": "the draft promise is invalid",
                    "problems": [str(p) for p in exc.problems],
                },
                status_code=422,
            )

    @app.get("/promises", response_model=list[PromiseOut], tags=["promises"])
    def get_promises(e: EngineDep, key: Reader) -> list[PromiseOut]:
        """Every promise in force, with its owner, a plain-language summary, and whether it
        is quarantined (its evaluation crashed, so it is not evaluated for now)."""
        held = e.queries.quarantined()
        return [
            _promise(p, held.get(p.id))
            for p in e.catalog.promises.values()
            if key.team in (None, p.owner)
        ]

    @app.get("/promises/{promise_id}", response_model=PromiseDetail, tags=["promises"])
    def get_promise(promise_id: str, e: EngineDep, key: Reader) -> PromiseDetail:
        """One promise: its definition, owner, summary and version history."""
        promise = e.catalog.promises.get(promise_id)
        if promise is None:
            raise HTTPException(404, f"no promise '{promise_id}'; see GET /promises")
        team_of(key, promise.owner)
        return PromiseDetail(
            **_promise(promise, e.queries.quarantined().get(promise_id)).model_dump(),
            definition=canonical(promise),
            versions=[PromiseVersion(**v) for v in e.queries.versions(promise_id)],
        )

    @app.delete(
        "/promises/{promise_id}/quarantine", response_model=ReleaseAnswer, tags=["promises"]
    )
    def release_promise(promise_id: str, e: EngineDep, _: Admin) -> ReleaseAnswer:
        """Evaluate a quarantined promise again, after fixing what made it crash; the scopes
        it skipped meanwhile are evaluated first. Loading a changed version does the same."""
        if promise_id not in e.catalog.promises:
            raise HTTPException(404, f"no promise '{promise_id}'; see GET /promises")
        return ReleaseAnswer(released=e.service.release(promise_id))

    return app


class _RefuseNul:
    """No database can store NUL in text: refuse it in URLs before it reaches one. Plain
    ASGI, because Starlette's BaseHTTPMiddleware costs every request a task and streams."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"").decode("latin-1")
            if "\x00" in scope["path"] or "%00" in query or "\x00" in unquote(query):
                answer = JSONResponse(
                    {"detail": "NUL (\\u0000) characters are not allowed in URLs"},
                    status_code=400,
                )
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _in_force(e: Engine) -> str:
    """Names the catalog in force, so the sandbox reloads after a reload."""
    return ",".join(f"{p.id}@{p.version}" for p in e.catalog.promises.values())


def _out(stored: StoredOutcome) -> OutcomeOut:
    handling = BreachHandling(**vars(stored.handling)) if stored.handling else None
    return OutcomeOut(
        id=stored.id, team=stored.team, channel=stored.channel, handling=handling, **stored.fields
    )


def _promise(promise: Any, held: Quarantine | None = None) -> PromiseOut:
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
