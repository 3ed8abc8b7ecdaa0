"""The parts of an alert a person reads once: its times in the zone the team reads the promise
in, with the zone named; what happened, in the words of the breach report; whether the clock
or a record decided it; and the dashboard page of the outcome.

They are added to the payload beside its SPEC fields (ISO times in UTC, the JSON ``link``),
which programs read and which stay as they are.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from engine.alerting.outbox import WITHDRAWN
from engine.explain import decided_by_clock, explain, stamp
from engine.outcomes import OPEN_STATES, Outcome
from engine.storage import record_table
from rules.models import Catalog


def readable(
    session: Session,
    catalog: Catalog,
    promise_id: str,
    stored: dict[str, Any] | None,
    key: str,
    state: str,
    dashboard_link: str | None,
) -> dict[str, Any]:
    """The readable fields of an alert on the outcome ``stored`` (as the alert row keeps it)
    in ``state``: ``timezone``, ``opened_local``, ``due_local``, ``decided_local``,
    ``decided_by`` (``clock``, ``record``, or None while open), ``explanation`` (None when the
    promise left the catalog) and ``dashboard_link``. A withdrawn opportunity (a correction's
    state when it is gone) has nothing left to explain or to have been decided by; an
    objective alert (no ``stored`` outcome: it is on the whole promise) has only its zone and
    link, its ``reason`` saying how fast the error budget burns."""
    promise = catalog.promises.get(promise_id)
    zone = ZoneInfo(catalog.timezone_for(promise) if promise else "UTC")
    if stored is None:
        return {
            "timezone": zone.key,
            **dict.fromkeys(("opened_local", "due_local", "decided_local", "decided_by")),
            "explanation": None,
            "dashboard_link": dashboard_link,
        }
    outcome = Outcome.from_json(stored, key)
    explanation = decided_by = None
    if promise is not None and state != WITHDRAWN:
        records = record_table.records_by_id(session, outcome.evidence)
        explanation = explain(outcome, promise, zone, records)
    if state != WITHDRAWN and outcome.state not in OPEN_STATES:
        decided_by = "clock" if decided_by_clock(outcome) else "record"
    return {
        "timezone": zone.key,
        "opened_local": stamp(outcome.opened_at, zone),
        "due_local": stamp(outcome.due_at, zone) if outcome.due_at else None,
        "decided_local": stamp(outcome.decided_at, zone) if outcome.decided_at else None,
        "decided_by": decided_by,
        "explanation": explanation,
        "dashboard_link": dashboard_link,
    }
