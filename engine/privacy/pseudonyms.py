"""Keyed pseudonyms (``erased-`` + 16 hex of HMAC-SHA256 with ``PROMISE_ERASURE_KEY``) and the
tombstones that make a re-sent erased record a ``duplicate``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import Invalid, Unavailable
from engine.records import Rejection
from engine.storage.bulk import chunked
from engine.storage.schema import ErasedRecordRow, OutcomeRow

PSEUDONYM = "erased-"
EXPIRED = "expired:"
REDACTED = "redacted"


class PrivacyError(Invalid):
    """An export, erasure or retention run cannot be done as asked (the message says why)."""


class NoErasureKey(Unavailable):
    """PROMISE_ERASURE_KEY is not set: pseudonyms and tombstones need it."""


def mac(key: str, value: str) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def pseudonym(key: str, value: str, generation: int = 1) -> str:
    """The irreversible stand-in for an erased identifier: the same value and generation, the
    same pseudonym. Generation 1 is the HMAC of the value alone; later ones (see
    ``fresh_pseudonym``) add the generation number."""
    text = value if generation == 1 else json.dumps([value, generation])
    return PSEUDONYM + mac(key, text)[:16]


def fresh_pseudonym(session: Session, key: str, value: str, promise_ids: Iterable[str]) -> str:
    """The first of ``value``'s pseudonyms that no outcome of ``promise_ids`` has as its scope.

    A scope value erased once can come back (the customer's new records, a case id used
    again) and open its scope afresh, numbered from ``<value>#1`` again: erased again under
    the same pseudonym, its outcomes would take the keys (and revision trails) of the first
    erasure's. One indexed look-up per generation (ix_outcomes_promise_scope_opened)."""
    promises = sorted(set(promise_ids))
    generation = 1
    while True:
        alias = pseudonym(key, value, generation)
        taken = select(OutcomeRow.id).where(
            OutcomeRow.promise_id.in_(promises), OutcomeRow.scope == alias
        )
        if session.scalar(taken.limit(1)) is None:
            return alias
        generation += 1


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
