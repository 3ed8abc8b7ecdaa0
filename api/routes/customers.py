"""HTTP routes for one customer: their standing, a pre-flight check of a planned record,
and their data (export everything held about them, erase it).

Export and erasure need a key without a team: a team-restricted key sees part of the data
only, and an export or erasure must be whole. A pre-flight check is open to team keys, and
answers only about their team's promises: its evidence is what those promises rest on, as in
the team's own outcomes.

Customer ids are the senders' (``ACME/42`` is a fine CRM id), so the path takes the rest of
the URL up to the route's last segment: ``/customers/ACME/42/export``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response

from api.deps import Admin, Reader, StateDep, Whole
from api.routes.outcomes import outcome_out
from api.schemas import (
    CheckAnswer,
    CustomerExport,
    CustomerStanding,
    ErasureAnswer,
    ErasureRequest,
    GivenOut,
    ProspectiveRecord,
    WouldBreak,
)
from engine.privacy import erasure, export
from engine.records import parse_record

router = APIRouter(tags=["customers"])


@router.get("/customers/{customer_id:path}/promises", response_model=CustomerStanding)
def customer_promises(customer_id: str, state: StateDep, key: Reader) -> CustomerStanding:
    """Every promise's standing for one customer: open clocks, at risk, recent breaches."""
    standing = state.queries.standing(customer_id, team=key.team)
    given = [
        g
        for g in state.sandbox.given(customer_id, state.in_force)
        if key.team in (None, state.catalog.promises[g["promise"]].owner)
    ]
    return CustomerStanding(
        customer_id=customer_id,
        open=[outcome_out(o) for o in standing.open],
        at_risk=[outcome_out(o) for o in standing.at_risk],
        recent_breaches=[outcome_out(o) for o in standing.recent_breaches],
        given=[GivenOut(**g) for g in given],
    )


@router.post("/customers/{customer_id:path}/check", response_model=CheckAnswer)
def check_customer(
    customer_id: str, planned: ProspectiveRecord, state: StateDep, key: Reader
) -> CheckAnswer:
    """Pre-flight: which promises would this record break, and why? Nothing is stored.

    For example, before the claims team asks for `policy_number` by email: Ask Once
    answers with the earlier record in which the customer already gave it.
    """
    raw = {**planned.model_dump(mode="json", exclude_none=True), "customer_id": customer_id}
    raw.setdefault("id", "pre-flight-check")
    raw.setdefault("occurred_at", datetime.now(UTC).isoformat())
    parsed = parse_record(raw, state.service.limits)
    if isinstance(parsed, list):
        raise HTTPException(422, [{"field": p.field, "reason": p.reason} for p in parsed])
    verdicts = [
        v for v in state.sandbox.preflight(raw, state.in_force) if key.team in (None, v["owner"])
    ]
    return CheckAnswer(
        customer_id=customer_id,
        ok=not verdicts,
        would_break=[WouldBreak(**v) for v in verdicts],
    )


@router.get(
    "/customers/{customer_id:path}/export",
    response_model=CustomerExport,
    responses={200: {"content": {"application/zip": {}}}},
)
def export_customer(
    customer_id: str,
    state: StateDep,
    _: Whole,
    key: Reader,
    format: Annotated[
        Literal["json", "zip"], Query(description="`zip`: one CSV file per kind.")
    ] = "json",
) -> CustomerExport | Response:
    """Everything held about one customer: their records, the outcomes that name them with
    evidence and revisions, the alerts that named them, and breach handling notes. Another
    customer's record ids (a shared case) show as `redacted`."""
    document = export.export_customer(state.sessions, state.catalog, customer_id)
    if format == "zip":
        return Response(
            export.export_zip(document),
            media_type="application/zip",
            headers={"Content-Disposition": 'attachment; filename="customer-export.zip"'},
        )
    return CustomerExport(**document)


@router.delete("/customers/{customer_id:path}", response_model=ErasureAnswer)
def erase_customer(
    customer_id: str, body: ErasureRequest, state: StateDep, _: Whole, key: Admin
) -> ErasureAnswer:
    """Erase a customer (admin; body `{"reason": "..."}`): their records go, their ids in
    outcomes, revisions and alerts become an irreversible pseudonym, open opportunities are
    cancelled (reason `erased`), compliance figures stay. Logged with the key's name, the
    reason and counts, never the customer id. 503 if PROMISE_ERASURE_KEY is not set."""
    report = erasure.erase_customer(
        state.sessions,
        state.catalog,
        customer_id,
        reason=body.reason,
        actor=key.name,
        key=state.settings.erasure_key,
    )
    return ErasureAnswer(erasure=report.id, erased_at=report.erased_at, counts=report.counts)
