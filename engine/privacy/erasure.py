"""Erasure: delete one customer's records and replace their ids, and the scope values only
they had, with a keyed pseudonym wherever they appear (a scope value erased before, which
came back, gets a fresh one: ``fresh_pseudonym``); open outcomes of theirs are
cancelled (reason ``erased``); tombstones make a re-sent record a ``duplicate``; the
erasure is logged without the customer id.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import from_micros, now
from engine.outcomes import OPEN_STATES
from engine.privacy.held import (
    delete_records,
    drop_backlog,
    erase_notes,
    latest_in_scope,
    outcomes_in,
    records_of,
    scope_is_empty,
)
from engine.privacy.pseudonyms import (
    NoErasureKey,
    PrivacyError,
    fresh_pseudonym,
    mac,
    pseudonym,
)
from engine.privacy.rewrite import Rewriter, mentioning, set_if_changed
from engine.shards import shards_of
from engine.storage import checkpoint_table, database, outcome_table, record_table, state_table
from engine.storage.schema import (
    AlertRow,
    Base,
    BreachActionRow,
    DeliveryRow,
    ErasedRecordRow,
    ErasureRow,
    OutcomeRow,
    QuarantineRow,
    RevisionRow,
)
from rules.models import Catalog

ERASED_REASON = "erased"
TABLES: dict[str, str] = {
    "interactions": "the customer's records are deleted",
    "pending_records": "deleted with the records",
    "scope_keys": "deleted with the records",
    "outcomes": "ids and scope values only they had pseudonymised; open ones cancelled",
    "outcome_revisions": "ids pseudonymised in keys, reasons and snapshots",
    "alerts": "ids pseudonymised in the customer, key, reason and outcome snapshot",
    "alert_deliveries": "ids pseudonymised in errors (a receiver's answer may echo an alert)",
    "breach_actions": "notes on the customer's outcomes erased; ids in others pseudonymised",
    "quarantine_backlog": "the customer's scopes (and scopes only they had) removed",
    "checkpoints": "the customer's scopes dropped (evaluated afresh next), and removed promises'",
    "erased_records": "tombstones: keyed hashes of the erased record ids",
    "erasures": "the log: who, when, why and counts, never whom",
    "promise_versions": "no customer data: the promise definitions",
    "engine_state": "no customer data: the clock and markers",
    "api_keys": "no customer data: key names and hashes",
    "silences": "no customer data: teams, promises and periods",
    "quarantines": "ids pseudonymised in crash reasons (an exception may quote a record)",
    "alembic_version": "no customer data: the schema revision",
}
"""Every table of the database and what erasure does to it: the one list that erasure checks
before it runs and its test scans afterwards, so a new table cannot be forgotten."""
ERASURE_COUNTS = (
    "interactions",
    "pending_records",
    "scope_keys",
    "outcomes_pseudonymised",
    "outcomes_sealed",
    "outcomes_cancelled",
    "revisions_rewritten",
    "alerts_rewritten",
    "breach_actions_rewritten",
    "breach_notes_erased",
    "backlog_removed",
    "quarantines_rewritten",
    "delivery_errors_rewritten",
    "tombstones",
)


# --- erasure ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErasureReport:
    id: int
    erased_at: datetime
    counts: dict[str, int]


def erase_customer(
    sessions: sessionmaker[Session],
    catalog: Catalog,
    customer_id: str,
    *,
    reason: str,
    actor: str,
    key: str | None,
) -> ErasureReport:
    """Erase everything held about one customer, in one transaction (see the module doc)."""
    if not key:
        raise NoErasureKey(
            "PROMISE_ERASURE_KEY is not set: erasure replaces ids with keyed hashes and "
            "needs that secret; set it (and keep it) before erasing"
        )
    if not reason.strip():
        raise PrivacyError("an erasure needs a reason, e.g. 'customer request 2024-03-01'")
    if unlisted := sorted(set(Base.metadata.tables) - set(TABLES)):
        raise PrivacyError(f"erasure does not know what to do with the tables {unlisted}")
    with sessions.begin() as session:
        report = _erase(session, catalog, customer_id, reason.strip()[:1024], actor, key)
    with sessions() as session:
        database.checkpoint(session)
    return report


def _erase(
    session: Session, catalog: Catalog, customer_id: str, reason: str, actor: str, key: str
) -> ErasureReport:
    moment = now()
    clock = state_table.get_clock(session)
    records = [record for record, _ in records_of(session, customer_id)]
    fields_in_use = {p.scope for p in catalog.promises.values()}
    values: dict[str, set[str]] = defaultdict(set)  # scope field -> this customer's values
    for record in records:
        flat = record.fields()
        for name in fields_in_use:
            if (value := record_table.scope_value(flat, name)) is not None:
                values[name].add(value)
    pairs = {(pid, v) for pid, p in catalog.promises.items() for v in values.get(p.scope, ())}
    named = select(OutcomeRow.promise_id, OutcomeRow.scope).where(
        OutcomeRow.customer_id == customer_id
    )
    pairs |= set(session.execute(named).tuples())
    state_table.lock_shards(session, shards_of(catalog, pairs))
    checkpoint_table.forget(session, pairs)  # they may hold the customer's values
    checkpoint_table.forget_all(session, keeping=catalog.promises)
    marks = {
        (name, v): latest_in_scope(session, name, v) for name, vs in values.items() for v in vs
    }
    counts = Counter(dict.fromkeys(ERASURE_COUNTS, 0))
    counts.update(delete_records(session, [r.id for r in records]))

    # Scope values get a pseudonym no earlier erasure gave a scope (they may have come back);
    # record ids are tombstoned, never stored again, so theirs is always the first.
    promise_ids = {pid for pid, _ in pairs} | set(catalog.promises)
    aliases: dict[str, str] = {}

    def alias(value: str) -> str:
        if value not in aliases:
            aliases[value] = fresh_pseudonym(session, key, value, promise_ids)
        return aliases[value]

    ids = {customer_id: alias(customer_id)}
    ids.update((r.id, pseudonym(key, r.id)) for r in records)
    plain = Rewriter(ids)
    rewriters: dict[str, Rewriter] = {}
    for pid, promise in catalog.promises.items():
        orphans = {
            v: alias(v)
            for v in values.get(promise.scope, ())
            if v != customer_id and scope_is_empty(session, promise.scope, v)
        }
        if orphans:
            rewriters[pid] = Rewriter({**ids, **orphans})
    every_id = Rewriter({k: v for r in [plain, *rewriters.values()] for k, v in r.mapping.items()})
    needles = sorted(every_id.mapping)

    def seal_mark(row: OutcomeRow) -> datetime:
        """The seal: the scope's latest record (event time) before the erasure."""
        promise = catalog.promises.get(row.promise_id)
        micros = (marks.get((promise.scope, row.scope)) if promise else None) or clock
        return from_micros(micros) if micros else moment

    cancel: list[tuple[OutcomeRow, datetime]] = []
    theirs: list[int] = []  # outcomes naming the customer: their handling notes go
    for row in outcomes_in(session, pairs):
        if row.customer_id == customer_id:
            theirs.append(row.id)
        rewrite = rewriters.get(row.promise_id, plain)
        mark = seal_mark(row)  # before the scope is renamed
        changed = set_if_changed(row, "customer_id", rewrite.value(row.customer_id))
        changed |= set_if_changed(row, "scope", rewrite.value(row.scope))
        changed |= set_if_changed(row, "key", rewrite.key(row.key))
        changed |= set_if_changed(row, "evidence", [rewrite.value(e) for e in row.evidence])
        counts["outcomes_pseudonymised"] += changed
        if row.state in OPEN_STATES and row.customer_id == ids[customer_id]:
            cancel.append((row, mark))
            continue
        if row.state in OPEN_STATES:
            continue  # another customer's open opportunity: it goes on
        counts["outcomes_sealed"] += 1
        row.sealed_at = max(row.sealed_at or mark, mark)
    session.flush()

    for model, columns in (
        (RevisionRow, [RevisionRow.key, RevisionRow.reason, RevisionRow.before, RevisionRow.after]),
        (AlertRow, [AlertRow.customer_id, AlertRow.outcome_key, AlertRow.outcome, AlertRow.reason]),
    ):
        name = "revisions_rewritten" if model is RevisionRow else "alerts_rewritten"
        for row in mentioning(session, model, columns, needles):
            rewrite = rewriters.get(row.promise_id or "", plain)
            changed = False
            if model is RevisionRow:
                changed |= set_if_changed(row, "key", rewrite.key(row.key))
                changed |= set_if_changed(row, "before", rewrite.json(row.before))
                changed |= set_if_changed(row, "after", rewrite.json(row.after))
            else:
                changed |= set_if_changed(row, "customer_id", rewrite.value(row.customer_id))
                changed |= set_if_changed(row, "outcome_key", rewrite.key(row.outcome_key))
                changed |= set_if_changed(row, "outcome", rewrite.json(row.outcome))
            changed |= set_if_changed(row, "reason", rewrite.text(row.reason))
            counts[name] += changed
    counts["breach_notes_erased"] = erase_notes(session, theirs)
    counts["backlog_removed"] = drop_backlog(
        session, [(p, s) for p, s in pairs if rewriters.get(p, plain).value(s) != s]
    )
    for quarantined in session.scalars(select(QuarantineRow)):  # a handful at most
        rewrite = rewriters.get(quarantined.promise_id, plain)
        counts["quarantines_rewritten"] += set_if_changed(
            quarantined, "reason", rewrite.text(quarantined.reason)
        )
    for delivery in mentioning(session, DeliveryRow, [DeliveryRow.last_error], needles):
        counts["delivery_errors_rewritten"] += set_if_changed(
            delivery, "last_error", every_id.text(delivery.last_error)
        )
    notes = [BreachActionRow.note, BreachActionRow.assignee]
    for row in mentioning(session, BreachActionRow, notes, sorted(ids)):
        changed = set_if_changed(row, "note", plain.text(row.note))
        counts["breach_actions_rewritten"] += changed | set_if_changed(
            row, "assignee", plain.text(row.assignee)
        )

    decided = from_micros(clock) if clock else moment
    for row, mark in cancel:
        before = outcome_table.row_to_outcome(row)
        after = dataclasses.replace(
            before, state="cancelled", decided_at=max(decided, before.opened_at)
        )
        outcome_table.apply_outcome(row, after)
        row.sealed_at = mark
        outcome_table.add_revision(session, row.promise_id, row.key, before, after, ERASED_REASON)
    counts["outcomes_cancelled"] = len(cancel)

    if records:
        session.execute(
            insert(ErasedRecordRow),
            [{"id_hash": mac(key, r.id), "erased_at": moment} for r in records],
        )
    counts["tombstones"] = len(records)
    report = {name: int(counts[name]) for name in sorted(counts)}
    log = ErasureRow(erased_at=moment, actor=actor, reason=reason, counts=report)
    session.add(log)
    session.flush()
    return ErasureReport(log.id, moment, report)


def erasures(sessions: sessionmaker[Session]) -> list[ErasureRow]:
    with sessions() as session:
        return list(session.scalars(select(ErasureRow).order_by(ErasureRow.id)))
