"""HTTP routes for customers' data: export everything held about one, erase it.

Both need a key without a team: a team-restricted key sees part of the data only, and an
export or erasure must be whole.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response

from api.deps import Admin, EngineDep, Reader, authenticated
from api.schemas import CustomerExport, ErasureAnswer, ErasureRequest
from engine.keys import ApiKey
from engine.privacy import erasure, export, pseudonyms

router = APIRouter(tags=["customers"])


def _whole(key: Annotated[ApiKey, Depends(authenticated)]) -> ApiKey:
    """A key without a team (checked before its scopes, so the refusal says why)."""
    if key.team is not None:
        raise HTTPException(
            403,
            f"the key '{key.name}' is limited to team '{key.team}': "
            "team-restricted keys cannot export or erase",
        )
    return key


Whole = Annotated[ApiKey, Depends(_whole)]


@router.get(
    "/customers/{customer_id}/export",
    response_model=CustomerExport,
    responses={200: {"content": {"application/zip": {}}}},
)
def export_customer(
    customer_id: str,
    e: EngineDep,
    _: Whole,
    key: Reader,
    format: Annotated[
        Literal["json", "zip"], Query(description="`zip`: one CSV file per kind.")
    ] = "json",
) -> CustomerExport | Response:
    """Everything held about one customer: their records, the outcomes that name them with
    evidence and revisions, the alerts that named them, and breach handling notes. Another
    customer's record ids (a shared case) show as `redacted`."""
    document = export.export_customer(e.sessions, e.catalog, customer_id)
    if format == "zip":
        return Response(
            export.export_zip(document),
            media_type="application/zip",
            headers={"Content-Disposition": 'attachment; filename="customer-export.zip"'},
        )
    return CustomerExport(**document)


@router.delete("/customers/{customer_id}", response_model=ErasureAnswer)
def erase_customer(
    customer_id: str, body: ErasureRequest, e: EngineDep, _: Whole, key: Admin
) -> ErasureAnswer:
    """Erase a customer (admin; body `{"reason": "..."}`): their records go, their ids in
    outcomes, revisions and alerts become an irreversible pseudonym, open opportunities are
    cancelled (reason `erased`), compliance figures stay. Logged with the key's name, the
    reason and counts, never the customer id. 503 if PROMISE_ERASURE_KEY is not set."""
    try:
        report = erasure.erase_customer(
            e.sessions,
            e.catalog,
            customer_id,
            reason=body.reason,
            actor=key.name,
            key=e.settings.erasure_key,
        )
    except pseudonyms.NoErasureKey as exc:
        raise HTTPException(503, str(exc)) from None
    except pseudonyms.PrivacyError as exc:
        raise HTTPException(422, str(exc)) from None
    return ErasureAnswer(erasure=report.id, erased_at=report.erased_at, counts=report.counts)
