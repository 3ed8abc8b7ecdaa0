"""The one rule for a record id seen again: one answer per record, wherever it comes from.

A record id means one record forever (SPEC §2, README "Storage", docs/mapping.md): the same
record again is a ``duplicate`` (a no-op), a different record under a known id is
``rejected`` as a conflict and the first one stays, and an id whose record was erased is a
``duplicate`` that is never stored again (docs/semantics.md). "Known" means earlier in the
same batch, file or files, stored in the database, or erased; "the same record" means the
same :meth:`~engine.records.Interaction.fingerprint`, the comparison the database keeps.

The API's batches, ``promise replay`` and ``promise import`` all ask a :class:`Deduplicator`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from engine.records import Interaction, Rejection

Status = Literal["accepted", "duplicate", "rejected"]


@dataclass(frozen=True)
class IngestResult:
    """What happened to one record of a batch, in the batch's order."""

    id: str | None
    status: Status
    problems: list[Rejection] = field(default_factory=list)


class Deduplicator:
    """Answers each record against the ones it accepted before and the ``stored`` and
    ``erased`` ids it was given. ``stored`` maps ids to fingerprints; ``erased`` maps ids
    to None (answered ``duplicate``) or to the reason they cannot be checked."""

    def __init__(
        self,
        stored: Mapping[str, str] | None = None,
        erased: Mapping[str, Rejection | None] | None = None,
    ) -> None:
        # An id's first record, or its stored fingerprint: fingerprints are only computed
        # when an id comes again, which a replay of a million unique records never pays.
        self._first: dict[str, Interaction | str] = dict(stored or {})
        self._erased = erased or {}

    def admit(self, record: Interaction) -> IngestResult:
        if record.id in self._erased:  # never resurrected
            problem = self._erased[record.id]
            if problem is None:
                return IngestResult(record.id, "duplicate")
            return IngestResult(record.id, "rejected", [problem])
        first = self._first.get(record.id)
        if first is None:
            self._first[record.id] = record
            return IngestResult(record.id, "accepted")
        known = first if isinstance(first, str) else first.fingerprint()
        if known == record.fingerprint():
            return IngestResult(record.id, "duplicate")
        return IngestResult(record.id, "rejected", [_conflict(record.id)])


def _conflict(record_id: str) -> Rejection:
    return Rejection(
        "id",
        f"{record_id!r} is already stored with different content; "
        "a record id can only ever mean one record",
    )
