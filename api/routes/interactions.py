"""``POST /interactions``: records in, each answered on its own, queued for the worker.

Evaluation never happens here: accepted records are stored and the worker process evaluates
them, so a crash in the rules core cannot take the API down.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.deps import Ingester, StateDep
from api.errors import error_response, refusal
from api.schemas import IngestAnswer, IngestRefused, Problem, RecordResult
from engine.ingest.decoding import decode_batch
from engine.records import RecordIn

router = APIRouter(tags=["interactions"])
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


@router.post(
    "/interactions",
    response_model=IngestAnswer,
    responses={422: refusal("Every record sent was rejected: nothing was stored.", IngestRefused)},
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
async def post_interactions(
    request: Request,
    state: StateDep,
    _: Ingester,
    backfill: Annotated[
        bool,
        Query(
            description="The records are history: their outcomes are stored and reported, "
            "but only opportunities still open or decided within PROMISE_BACKFILL_ALERT_WINDOW "
            "(default 24h) of now (or of the engine's clock, if later) raise alerts."
        ),
    ] = False,
) -> IngestAnswer | JSONResponse:
    """Store one record or a list of at most 1,000 (16 MiB), each answered on its own:
    `accepted` (stored, to be evaluated), `duplicate` (already stored, same content) or
    `rejected` (with the field and reason). A bad record never loses the others. Loading
    months of history? Send `?backfill=true` so old breaches page nobody.

    200 when at least one record is stored now or was before (a batch sent again, all
    `duplicate`, is a success: sending again is how a client retries); 422 when every
    record was rejected, with the same counts and results and the error shape besides.
    A mixed batch is 200: branch on `rejected`."""
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
        # Say where and why (BadBatch, a 400), or read lone surrogates, refused record by record.
        payload = decode_batch(body)
    records = payload if isinstance(payload, list) else [payload]
    if len(records) > MAX_BATCH:
        raise HTTPException(
            413,
            f"{len(records)} records in one request; the limit is {MAX_BATCH}: split the batch",
        )
    answers = await run_in_threadpool(state.service.accept, records, backfill=backfill)
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
        state.metrics.ingested.labels(result.status).inc()
    answer = IngestAnswer(
        accepted=sum(r.status == "accepted" for r in results),
        duplicate=sum(r.status == "duplicate" for r in results),
        rejected=sum(r.status == "rejected" for r in results),
        results=results,
    )
    if results and answer.rejected == len(results):
        errors = [
            Problem(field=f"{n}.{p.field}", reason=p.reason)
            for n, r in enumerate(results)
            for p in r.problems
        ]
        detail = f"no record accepted: all {len(results)} rejected (see results)"
        return error_response(422, detail, errors, **answer.model_dump())
    return answer
