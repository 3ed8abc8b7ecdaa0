"""Keyed pseudonyms (``erased-`` + 16 hex of HMAC-SHA256 with ``PROMISE_ERASURE_KEY``) and the
tombstones that make a re-sent erased record a ``duplicate``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import Invalid, Unavailable
from engine.records import Rejection
from engine.storage.bulk import chunked
from engine.storage.schema import (
    ErasedRecordRow,
)

PSEUDONYM = "erased-"
EXPIRED = "expired:"
REDACTED = "redacted"


class PrivacyError(Invalid):
    """An export, erasure or retention run cannot be done as asked (the message says why)."""


class NoErasureKey(Unavailable):
    """PROMISE_ERASURE_KEY is not set: pseudonyms and tombstones need it."""


def mac(key: str, value: str) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def pseudonym(key: str, value: str) -> str:
    """The irreversible stand-in for an erased identifier: the same value, the same pseudonym."""
    return PSEUDONYM + mac(key, value)[:16]


# --- tombstones (checked by PromiseService._admit) ---------------------------------------------


def tombstoned(
    session: Session, ids: Iterable[str], key: str | None
) -> dict[str, Rejection | None]:
    """Which of ``ids`` belonged to an erased customer: None (answer ``duplicate``), or a
    rejection when tombstones exist but PROMISE_ERASURE_KEY is not set to check them."""
    wanted = list(ids)
    if not wanted or session.scalar(select(ErasedRecordRow.id_hash).limit(1)) is None:
        return {}
    if not key:
        problem = Rejection(
            "id",
            "cannot check this id against erased records: PROMISE_ERASURE_KEY is not set "
            "on this server",
        )
        return dict.fromkeys(wanted, problem)
    hashes = {mac(key, record_id): record_id for record_id in wanted}
    found: dict[str, Rejection | None] = {}
    for chunk in chunked(hashes):
        rows = session.scalars(
            select(ErasedRecordRow.id_hash).where(ErasedRecordRow.id_hash.in_(chunk))
        )
        found.update((hashes[h], None) for h in rows)
    return found
