"""The engine behind the reference evaluator's interface, so one scenario runs on both."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.records import Interaction, parse_record
from engine.sandbox.in_memory import replay
from rules.models import Catalog

# Fields the record format requires but hand-written scenarios may leave out.
_DEFAULTS = {"channel": "other", "direction": "internal", "type": "note"}


def to_interaction(record: dict[str, Any]) -> Interaction:
    raw = {**_DEFAULTS, **{k: v for k, v in record.items() if v is not None}}
    raw["occurred_at"] = raw["occurred_at"].isoformat()
    parsed = parse_record(raw)
    if isinstance(parsed, list):
        raise ValueError(f"{record.get('id')}: " + "; ".join(map(str, parsed)))
    return parsed


def evaluate(catalog: Catalog, records: list[dict], until: datetime | None = None) -> list[dict]:
    """Same contract as ``reference.evaluate``: outcome dicts, datetimes in UTC, sorted."""
    by_id: dict[str, Interaction] = {}
    for record in records:
        interaction = to_interaction(record)
        seen = by_id.setdefault(interaction.id, interaction)
        if seen != interaction:
            raise ValueError(f"record id {interaction.id!r} given twice with different content")
    ordered = sorted(by_id.values(), key=lambda r: r.order)
    result = replay(catalog, ordered, until)
    found = [o.spec() for o in result.outcomes]
    return sorted(found, key=lambda o: (o["promise"], o["scope"], o["opened_at"], o["evidence"]))
