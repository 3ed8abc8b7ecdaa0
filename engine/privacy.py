"""Customers' data: export what is held about one customer, erase it, expire old records.

- **Export** gathers one customer's records, the outcomes that name them (with their
  revisions and breach handling) and the alerts that named them. Another customer's record
  ids (a case they share) are shown as ``redacted``.
- **Erasure** deletes the customer's records and replaces their customer id, their record
  ids and the scope values only they had with a keyed pseudonym (``erased-`` + 16 hex of
  HMAC-SHA256 with ``PROMISE_ERASURE_KEY``) wherever they appear; open outcomes of theirs
  are cancelled (reason ``erased``); tombstones (the full HMAC of each record id) make a
  re-sent record a ``duplicate``; the erasure is logged without the customer id.
- **Retention** deletes records older than a period once no open outcome needs them;
  evidence ids become ``expired:<id>``.

Outcomes whose scope lost records either way are **sealed**: decided with records that are
gone, their verdict is final (``PromiseService._frozen``), and a deadline scope is evaluated
afterwards only from the records after the seal (docs/semantics.md, "Erased and expired
records"). Compliance of past periods therefore never changes.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import hmac
import io
import json
import re
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import String, cast, delete, func, insert, or_, select
from sqlalchemy.orm import Session, sessionmaker

from engine import store
from engine.outcomes import OPEN_STATES, Outcome
from engine.records import Interaction, Rejection, from_micros, to_micros
from engine.schema import (
    AlertRow,
    BreachActionRow,
    ErasedRecordRow,
    ErasureRow,
    InteractionRow,
    OutcomeRow,
    PendingRow,
    RevisionRow,
    ScopeKeyRow,
)
from rules.models import Catalog, Promise

PSEUDONYM = "erased-"
EXPIRED = "expired:"
REDACTED = "redacted"
ERASED_REASON = "erased"
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
    "tombstones",
)
_CHUNK = 500
_T = TypeVar("_T")


class PrivacyError(ValueError):
    """An export, erasure or retention run cannot be done as asked (the message says why)."""


class NoErasureKey(PrivacyError):
    """PROMISE_ERASURE_KEY is not set: pseudonyms and tombstones need it."""


def _mac(key: str, value: str) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def pseudonym(key: str, value: str) -> str:
    """The irreversible stand-in for an erased identifier: the same value, the same pseudonym."""
    return PSEUDONYM + _mac(key, value)[:16]


def _chunks(items: Iterable[_T], size: int = _CHUNK) -> Iterator[list[_T]]:
    batch: list[_T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


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
    hashes = {_mac(key, record_id): record_id for record_id in wanted}
    found: dict[str, Rejection | None] = {}
    for chunk in _chunks(hashes):
        rows = session.scalars(
            select(ErasedRecordRow.id_hash).where(ErasedRecordRow.id_hash.in_(chunk))
        )
        found.update((hashes[h], None) for h in rows)
    return found


# --- sealed scopes (used by PromiseService when it evaluates a scope) ---------------------------


def evaluable(
    promise: Promise, records: list[Interaction], stored: dict[str, OutcomeRow]
) -> list[Interaction]:
    """The records a scope is evaluated from. A deadline scope with sealed outcomes starts
    after its seal (or at the opening of an outcome not sealed): earlier records were
    judged together with records that are gone, and their verdicts stand."""
    seals = [row.sealed_at for row in stored.values() if row.sealed_at is not None]
    if not seals or promise.kind != "deadline":
        return records
    since = max(seals)
    live = [row.opened_at for row in stored.values() if row.sealed_at is None]
    start = min(live) if live else None
    return [
        r
        for r in records
        if r.occurred_at > since or (start is not None and r.occurred_at >= start)
    ]


def rekeyed(
    promise: Promise, fresh: dict[str, Outcome], stored: dict[str, OutcomeRow]
) -> dict[str, Outcome]:
    """In a deadline scope with sealed outcomes, match fresh opportunities to stored ones by
    their opening record (numbers restart after a seal); new ones are numbered after all
    stored ones, so they never collide with a sealed outcome."""
    if promise.kind != "deadline" or all(row.sealed_at is None for row in stored.values()):
        return fresh
    by_start = {row.evidence[0]: key for key, row in stored.items() if row.evidence}
    last = max((_number(key) for key in stored), default=0)
    matched: dict[str, Outcome] = {}
    for outcome in sorted(fresh.values(), key=lambda o: (o.opened_at, o.key)):
        key = by_start.get(outcome.evidence[0]) if outcome.evidence else None
        if key is None:
            last += 1
            key = f"{outcome.scope}#{last}"
        matched[key] = dataclasses.replace(outcome, key=key)
    return matched


def _number(key: str) -> int:
    number = key.rpartition("#")[2]
    return int(number) if number.isdigit() else 0


def sealed_scopes(session: Session) -> set[tuple[str, str]]:
    """(promise, scope) pairs with a sealed outcome."""
    query = select(OutcomeRow.promise_id, OutcomeRow.scope).where(OutcomeRow.sealed_at.is_not(None))
    return set(session.execute(query.distinct()).tuples())


def outside(items: dict[str, Any], promise_id: str, scopes: set[tuple[str, str]]) -> dict[str, Any]:
    """``items`` (outcomes or rows, by key) that are not in one of ``scopes``."""
    return {k: v for k, v in items.items() if (promise_id, v.scope) not in scopes}


# --- SQL helpers ---------------------------------------------------------------------------------


def _scope_filter(field_name: str, value: str) -> Any:
    """Records of one scope, as a WHERE clause on interactions."""
    column = getattr(InteractionRow, field_name, None) if "." not in field_name else None
    if column is not None:
        return column == value
    keys = select(ScopeKeyRow.record_id).where(
        ScopeKeyRow.field == field_name, ScopeKeyRow.value == value
    )
    return InteractionRow.id.in_(keys)


def _latest_in_scope(session: Session, field_name: str, value: str) -> int | None:
    return session.scalar(
        select(func.max(InteractionRow.at_us)).where(_scope_filter(field_name, value))
    )


def _scope_is_empty(session: Session, field_name: str, value: str) -> bool:
    query = select(InteractionRow.id).where(_scope_filter(field_name, value)).limit(1)
    return session.scalar(query) is None


def _records_of(session: Session, customer_id: str) -> list[tuple[Interaction, datetime]]:
    columns = [getattr(InteractionRow, f.name) for f in dataclasses.fields(Interaction)]
    rows = session.execute(
        select(*columns, InteractionRow.received_at)
        .where(InteractionRow.customer_id == customer_id)
        .order_by(InteractionRow.at_us, InteractionRow.id)
    )
    return [(Interaction(*row[:-1]), row[-1]) for row in rows]


def _delete_records(session: Session, ids: list[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for chunk in _chunks(ids):
        for name, table, column in (
            ("pending_records", PendingRow, PendingRow.record_id),
            ("scope_keys", ScopeKeyRow, ScopeKeyRow.record_id),
            ("interactions", InteractionRow, InteractionRow.id),
        ):
            counts[name] += session.execute(delete(table).where(column.in_(chunk))).rowcount or 0
    return counts


def _outcomes_in(session: Session, pairs: Iterable[tuple[str, str]]) -> list[OutcomeRow]:
    by_promise: dict[str, set[str]] = defaultdict(set)
    for promise_id, scope in pairs:
        by_promise[promise_id].add(scope)
    rows: dict[int, OutcomeRow] = {}
    for promise_id, scopes in sorted(by_promise.items()):
        for chunk in _chunks(sorted(scopes)):
            query = select(OutcomeRow).where(
                OutcomeRow.promise_id == promise_id, OutcomeRow.scope.in_(chunk)
            )
            rows.update((row.id, row) for row in session.scalars(query))
    return [rows[i] for i in sorted(rows)]


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _mentioning(session: Session, model: Any, columns: list[Any], needles: list[str]) -> list[Any]:
    """Rows of ``model`` whose text or JSON ``columns`` contain any of ``needles`` (a
    superset: callers rewrite exact tokens only)."""
    found: dict[int, Any] = {}
    for chunk in _chunks(needles, 20):
        terms = []
        for column in columns:
            is_json = column.type.__class__.__name__ == "JSON"
            target = cast(column, String) if is_json else column
            for needle in chunk:
                text = json.dumps(needle)[1:-1] if is_json else needle
                terms.append(target.like(_like(text), escape="\\"))
        found.update((row.id, row) for row in session.scalars(select(model).where(or_(*terms))))
    return [found[i] for i in sorted(found)]


# --- rewriting identifiers --------------------------------------------------------------------


class _Rewriter:
    """Replaces identifiers: exactly in values (JSON, keys ``<scope>#<n>``, ``expired:<id>``),
    as whole tokens in free text (reasons, notes)."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping
        alternatives = "|".join(re.escape(k) for k in sorted(mapping, key=len, reverse=True))
        self.pattern = (
            re.compile(rf"(?<![\w\-.@])({alternatives})(?![\w\-.@])") if mapping else None
        )

    def value(self, text: str | None) -> str | None:
        if text is None:
            return None
        if text in self.mapping:
            return self.mapping[text]
        if text.startswith(EXPIRED) and text[len(EXPIRED) :] in self.mapping:
            return EXPIRED + self.mapping[text[len(EXPIRED) :]]
        return text

    def key(self, key: str | None) -> str | None:
        if key is None or key in self.mapping:
            return self.value(key)
        scope, hash_, number = key.rpartition("#")
        if hash_ and scope in self.mapping:
            return f"{self.mapping[scope]}#{number}"
        return key

    def text(self, text: str | None) -> str | None:
        if text is None or self.pattern is None:
            return text
        return self.pattern.sub(lambda m: self.mapping[m.group(1)], text)

    def json(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.value(value)
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if isinstance(value, dict):
            return {k: self.json(v) for k, v in value.items()}
        return value


def _set(row: Any, name: str, value: Any) -> bool:
    if getattr(row, name) == value:
        return False
    setattr(row, name, value)
    return True


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
    with sessions.begin() as session:
        return _erase(session, catalog, customer_id, reason.strip()[:1024], actor, key)


def _erase(
    session: Session, catalog: Catalog, customer_id: str, reason: str, actor: str, key: str
) -> ErasureReport:
    moment = store.now()
    clock = store.get_clock(session)
    records = [record for record, _ in _records_of(session, customer_id)]
    fields_in_use = {p.scope for p in catalog.promises.values()}
    values: dict[str, set[str]] = defaultdict(set)  # scope field -> this customer's values
    for record in records:
        flat = record.fields()
        for name in fields_in_use:
            if (value := store.scope_value(flat, name)) is not None:
                values[name].add(value)
    pairs = {(pid, v) for pid, p in catalog.promises.items() for v in values.get(p.scope, ())}
    named = select(OutcomeRow.promise_id, OutcomeRow.scope).where(
        OutcomeRow.customer_id == customer_id
    )
    pairs |= set(session.execute(named).tuples())
    store.lock_scopes(session, pairs)
    marks = {
        (name, v): _latest_in_scope(session, name, v) for name, vs in values.items() for v in vs
    }
    counts = Counter(dict.fromkeys(ERASURE_COUNTS, 0))
    counts.update(_delete_records(session, [r.id for r in records]))

    ids = {customer_id: pseudonym(key, customer_id)}
    ids.update((r.id, pseudonym(key, r.id)) for r in records)
    plain = _Rewriter(ids)
    rewriters: dict[str, _Rewriter] = {}
    for pid, promise in catalog.promises.items():
        orphans = {
            v: pseudonym(key, v)
            for v in values.get(promise.scope, ())
            if v != customer_id and _scope_is_empty(session, promise.scope, v)
        }
        if orphans:
            rewriters[pid] = _Rewriter({**ids, **orphans})
    needles = sorted({k for r in [plain, *rewriters.values()] for k in r.mapping})

    def seal_mark(row: OutcomeRow) -> datetime:
        """The seal: the scope's latest record (event time) before the erasure."""
        promise = catalog.promises.get(row.promise_id)
        micros = (marks.get((promise.scope, row.scope)) if promise else None) or clock
        return from_micros(micros) if micros else moment

    cancel: list[tuple[OutcomeRow, datetime]] = []
    for row in _outcomes_in(session, pairs):
        rewrite = rewriters.get(row.promise_id, plain)
        mark = seal_mark(row)  # before the scope is renamed
        changed = _set(row, "customer_id", rewrite.value(row.customer_id))
        changed |= _set(row, "scope", rewrite.value(row.scope))
        changed |= _set(row, "key", rewrite.key(row.key))
        changed |= _set(row, "evidence", [rewrite.value(e) for e in row.evidence])
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
        for row in _mentioning(session, model, columns, needles):
            rewrite = rewriters.get(row.promise_id or "", plain)
            changed = False
            if model is RevisionRow:
                changed |= _set(row, "key", rewrite.key(row.key))
                changed |= _set(row, "before", rewrite.json(row.before))
                changed |= _set(row, "after", rewrite.json(row.after))
            else:
                changed |= _set(row, "customer_id", rewrite.value(row.customer_id))
                changed |= _set(row, "outcome_key", rewrite.key(row.outcome_key))
                changed |= _set(row, "outcome", rewrite.json(row.outcome))
            changed |= _set(row, "reason", rewrite.text(row.reason))
            counts[name] += changed
    notes = [BreachActionRow.note, BreachActionRow.assignee]
    for row in _mentioning(session, BreachActionRow, notes, sorted(ids)):
        changed = _set(row, "note", plain.text(row.note))
        counts["breach_actions_rewritten"] += changed | _set(
            row, "assignee", plain.text(row.assignee)
        )

    decided = from_micros(clock) if clock else moment
    for row, mark in cancel:
        before = store.row_to_outcome(row)
        after = dataclasses.replace(
            before, state="cancelled", decided_at=max(decided, before.opened_at)
        )
        store.apply_outcome(row, after)
        row.sealed_at = mark
        store.add_revision(session, row.promise_id, row.key, before, after, ERASED_REASON)
    counts["outcomes_cancelled"] = len(cancel)

    if records:
        session.execute(
            insert(ErasedRecordRow),
            [{"id_hash": _mac(key, r.id), "erased_at": moment} for r in records],
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
        held = _records_of(session, customer_id)
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
        hide = _Rewriter(dict.fromkeys(others, REDACTED))

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
            for chunk in _chunks(sorted(wanted)):
                revisions += session.scalars(
                    select(RevisionRow).where(
                        RevisionRow.promise_id == promise_id, RevisionRow.key.in_(chunk)
                    )
                )
        actions: list[BreachActionRow] = []
        for chunk in _chunks([row.id for row in outcomes]):
            actions += session.scalars(
                select(BreachActionRow).where(BreachActionRow.outcome_id.in_(chunk))
            )
        return {
            "customer_id": customer_id,
            "exported_at": store.now().isoformat(),
            "interactions": [
                {**record.to_json(), "received_at": received.isoformat()}
                for record, received in held
            ],
            "outcomes": [
                {
                    "id": row.id,
                    **store.row_to_outcome(row).to_json(),
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
            _scope_filter(name, value), InteractionRow.customer_id != customer_id
        )
        for record_id, other in session.execute(query).tuples():
            others.update((record_id, other))
    return others


def export_zip(document: dict[str, Any]) -> bytes:
    """The export as a zip of CSV files, one per kind (nested values as JSON)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for kind, columns in KINDS.items():
            text = io.StringIO()
            writer = csv.DictWriter(text, columns, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            for item in document[kind]:
                writer.writerow({c: _cell(item.get(c)) for c in columns})
            archive.writestr(f"{kind}.csv", text.getvalue())
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else value


# --- retention ----------------------------------------------------------------------------------


@dataclass
class RetentionReport:
    days: int
    cutoff: datetime
    dry_run: bool = False
    records: int = 0
    scope_keys: int = 0
    outcomes_sealed: int = 0
    evidence_expired: int = 0
    kept_for_open: int = 0
    scopes: set[tuple[str, str]] = field(default_factory=set, repr=False)

    def summary(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        return (
            f"retention ({self.days} days, records before {self.cutoff.isoformat()}): {verb} "
            f"{self.records} records ({self.scope_keys} scope keys); {self.outcomes_sealed} "
            f"outcomes sealed, {self.evidence_expired} evidence ids marked expired; "
            f"{self.kept_for_open} old records kept for open outcomes"
        )


def apply_retention(
    sessions: sessionmaker[Session],
    catalog: Catalog,
    days: int,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    batch: int = 200,
) -> RetentionReport:
    """Delete records that occurred more than ``days`` before ``now`` (default: the wall
    clock) unless an open outcome needs them (its scope, or its evidence); records still
    queued for evaluation are never touched. Runs in transactions of ``batch`` records;
    ``dry_run`` rolls each back and reports what would go."""
    if days < 1:
        raise PrivacyError("a retention period is at least 1 day")
    cutoff = (now or store.now()) - timedelta(days=days)
    report = RetentionReport(days, cutoff, dry_run)
    cursor = (-(2**62), "")
    while True:
        with sessions() as session:
            rows = _old_records(session, to_micros(cutoff), cursor, batch)
            if not rows:
                return report
            cursor = (rows[-1].at, rows[-1].id)
            _retire(session, catalog, rows, report)
            if dry_run:
                session.rollback()
            else:
                session.commit()


def _old_records(
    session: Session, cutoff: int, after: tuple[int, str], limit: int
) -> list[Interaction]:
    columns = [getattr(InteractionRow, f.name) for f in dataclasses.fields(Interaction)]
    queued = select(PendingRow.record_id).where(PendingRow.record_id == InteractionRow.id)
    at, record_id = after
    query = (
        select(*columns)
        .where(
            InteractionRow.at_us < cutoff,
            (InteractionRow.at_us > at)
            | ((InteractionRow.at_us == at) & (InteractionRow.id > record_id)),
            ~queued.exists(),
        )
        .order_by(InteractionRow.at_us, InteractionRow.id)
        .limit(limit)
    )
    return [Interaction(*row) for row in session.execute(query)]


def _retire(
    session: Session, catalog: Catalog, records: list[Interaction], report: RetentionReport
) -> None:
    scopes_of: dict[str, list[tuple[str, str]]] = {}
    for record in records:
        flat = record.fields()
        scopes_of[record.id] = [
            (pid, value)
            for pid, p in catalog.promises.items()
            if (value := store.scope_value(flat, p.scope)) is not None
        ]
    pairs = {pair for found in scopes_of.values() for pair in found}
    store.lock_scopes(session, pairs)
    busy = {
        (row.promise_id, row.scope)
        for row in _outcomes_in(session, pairs)
        if row.state in OPEN_STATES
    }
    unknown = select(OutcomeRow.evidence).where(
        OutcomeRow.state.in_(OPEN_STATES), OutcomeRow.promise_id.not_in(list(catalog.promises))
    )
    needed = {e for evidence in session.scalars(unknown) for e in evidence}
    doomed = [
        r
        for r in records
        if r.id not in needed and not any(pair in busy for pair in scopes_of[r.id])
    ]
    report.kept_for_open += len(records) - len(doomed)
    if not doomed:
        return
    affected = {pair for r in doomed for pair in scopes_of[r.id]}
    marks = {
        (pid, value): _latest_in_scope(session, catalog.promises[pid].scope, value)
        for pid, value in affected
    }
    counts = _delete_records(session, [r.id for r in doomed])
    report.records += counts["interactions"]
    report.scope_keys += counts["scope_keys"]
    gone = {r.id for r in doomed}
    for row in _outcomes_in(session, affected):
        if row.state in OPEN_STATES:
            continue  # cannot happen (busy scopes keep their records); never seal an open one
        expired = [EXPIRED + e if e in gone else e for e in row.evidence]
        if expired != row.evidence:
            report.evidence_expired += sum(e in gone for e in row.evidence)
            row.evidence = expired
        mark = from_micros(marks[(row.promise_id, row.scope)] or 0)
        if row.sealed_at is None:
            report.outcomes_sealed += 1
        row.sealed_at = max(row.sealed_at or mark, mark)
    report.scopes |= affected
