"""Export everything held about one customer: records, the outcomes naming them (with
revisions and breach handling) and alerts. Another customer's record ids are ``redacted``.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine import clock
from engine.privacy.held import records_of, scope_filter
from engine.privacy.pseudonyms import REDACTED
from engine.privacy.rewrite import Rewriter
from engine.spreadsheet import csv_text
from engine.storage import outcome_table
from engine.storage.bulk import chunked
from engine.storage.schema import (
    AlertRow,
    BreachActionRow,
    InteractionRow,
    OutcomeRow,
    RevisionRow,
)
from rules.models import Catalog

# --- export -------------------------------------------------------------------------------------

KINDS: dict[str, list[str]] = {
    "interactions": [
        "id",
        "occurred_at",
        "customer_id",
        "case_id",
        "channel",
        "direction",
        "type",
        "team",
        "agent",
        "attributes",
        "received_at",
    ],
    "outcomes": [
        "id",
        "promise",
        "version",
        "key",
        "scope",
        "customer_id",
        "state",
        "opened_at",
        "due_at",
        "decided_at",
        "evidence",
        "team",
        "channel",
        "sealed",
    ],
    "revisions": [
        "promise",
        "key",
        "old_state",
        "new_state",
        "reason",
        "changed_at",
        "before",
        "after",
    ],
    "alerts": [
        "id",
        "kind",
        "team",
        "promise",
        "state",
        "customer_id",
        "reason",
        "created_at",
        "outcome",
    ],
    "breach_actions": ["outcome_id", "status", "assignee", "note", "actor", "acted_at"],
}


def export_customer(
    sessions: sessionmaker[Session], catalog: Catalog, customer_id: str
) -> dict[str, Any]:
    """Everything held about one customer (see the module doc), as JSON-ready data."""
    with sessions() as session:
        held = records_of(session, customer_id)
        own = {record.id for record, _ in held}
        outcomes = list(
            session.scalars(
                select(OutcomeRow)
                .where(OutcomeRow.customer_id == customer_id)
                .order_by(OutcomeRow.id)
            )
        )
        alerts = list(
            session.scalars(
                select(AlertRow).where(AlertRow.customer_id == customer_id).order_by(AlertRow.id)
            )
        )
        scopes = {(row.promise_id, row.scope) for row in outcomes}
        scopes |= {(a.promise_id, a.outcome["scope"]) for a in alerts if a.outcome and a.promise_id}
        others = _others_in_scopes(session, catalog, customer_id, scopes)
        hide = Rewriter(dict.fromkeys(others, REDACTED))

        def evidence(ids: list[str]) -> list[str]:
            return [e if e in own else REDACTED for e in ids]

        def snapshot(outcome: dict[str, Any] | None) -> dict[str, Any] | None:
            if outcome is None:
                return None
            shown = hide.json(outcome)
            shown["evidence"] = evidence(outcome.get("evidence") or [])
            if outcome.get("customer_id") not in (customer_id, None):
                shown["customer_id"] = REDACTED
            return shown

        keys: dict[str, set[str]] = defaultdict(set)
        for row in outcomes:
            keys[row.promise_id].add(row.key)
        revisions: list[RevisionRow] = []
        for promise_id, wanted in sorted(keys.items()):
            for chunk in chunked(sorted(wanted)):
                revisions += session.scalars(
                    select(RevisionRow).where(
                        RevisionRow.promise_id == promise_id, RevisionRow.key.in_(chunk)
                    )
                )
        actions: list[BreachActionRow] = []
        for chunk in chunked([row.id for row in outcomes]):
            actions += session.scalars(
                select(BreachActionRow).where(BreachActionRow.outcome_id.in_(chunk))
            )
        return {
            "customer_id": customer_id,
            "exported_at": clock.now().isoformat(),
            "interactions": [
                {**record.to_json(), "received_at": received.isoformat()}
                for record, received in held
            ],
            "outcomes": [
                {
                    "id": row.id,
                    **outcome_table.row_to_outcome(row).to_json(),
                    "key": row.key,
                    "evidence": evidence(row.evidence),
                    "team": row.owner,
                    "channel": row.channel,
                    "sealed": row.sealed_at is not None,
                }
                for row in outcomes
            ],
            "revisions": [
                {
                    "promise": r.promise_id,
                    "key": r.key,
                    "old_state": r.old_state,
                    "new_state": r.new_state,
                    "reason": hide.text(r.reason),
                    "changed_at": r.changed_at.isoformat(),
                    "before": snapshot(r.before),
                    "after": snapshot(r.after),
                }
                for r in sorted(revisions, key=lambda r: r.id)
            ],
            "alerts": [
                {
                    "id": f"alert-{a.id}",
                    "kind": a.kind,
                    "team": a.team,
                    "promise": a.promise_id,
                    "state": a.state,
                    "customer_id": a.customer_id,
                    "reason": hide.text(a.reason),
                    "created_at": a.created_at.isoformat(),
                    "outcome": snapshot(a.outcome),
                }
                for a in alerts
            ],
            "breach_actions": [
                {
                    "outcome_id": a.outcome_id,
                    "status": a.status,
                    "assignee": a.assignee,
                    "note": a.note,
                    "actor": a.actor,
                    "acted_at": a.acted_at.isoformat(),
                }
                for a in sorted(actions, key=lambda a: a.id)
            ],
        }


def _others_in_scopes(
    session: Session, catalog: Catalog, customer_id: str, pairs: set[tuple[str, str]]
) -> set[str]:
    """Ids of other customers' records (and those customers' ids) in the scopes of
    ``pairs`` (promise, scope value): what the export must not show."""
    scopes = {
        (catalog.promises[pid].scope, value) for pid, value in pairs if pid in catalog.promises
    }
    others: set[str] = set()
    for name, value in sorted(scopes):
        query = select(InteractionRow.id, InteractionRow.customer_id).where(
            scope_filter(name, value), InteractionRow.customer_id != customer_id
        )
        for record_id, other in session.execute(query).tuples():
            others.update((record_id, other))
    return others


def export_zip(document: dict[str, Any]) -> bytes:
    """The export as a zip of CSV files, one per kind (nested values as JSON)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for kind, columns in KINDS.items():
            rows = ({c: _nested_as_json(item.get(c)) for c in columns} for item in document[kind])
            archive.writestr(f"{kind}.csv", csv_text(columns, rows))
    return buffer.getvalue()


def _nested_as_json(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value
