"""The engine as a service over a database: ingest records, keep outcomes and their history.

Each batch is one transaction: new records, and every outcome they change with a
revision saying why. A scope touched by a batch is evaluated afresh from all its stored
records, so arrival order and batch boundaries never change a verdict, and a record that
arrives late simply re-decides its scope. Outcomes decided under an older promise version
keep that version's verdict.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from engine.alerting import outbox
from engine.clock import from_micros, now, to_micros
from engine.evaluation import history, quarantine
from engine.evaluation.checkpoint import Checkpoint, columns, from_row
from engine.evaluation.evaluator import Evaluator
from engine.ingest.dedup import Deduplicator, IngestResult, Status
from engine.outcomes import OPEN_STATES, Outcome
from engine.privacy import pseudonyms
from engine.records import DEFAULT_LIMITS, Interaction, RecordLimits, parse_record
from engine.storage import checkpoint_table, outcome_table, record_table, state_table
from engine.storage.bulk import chunked
from engine.storage.schema import CheckpointRow, OutcomeRow, PromiseVersionRow
from rules.models import Catalog, Promise
from rules.version import canonical

log = logging.getLogger("promise.service")
BULK_CHUNK = 5_000
"""Records stored per transaction by :meth:`PromiseService.backfill`."""
BULK_LOAD = "bulk_load_unfinished"
"""The state row of a bulk load whose records are not all evaluated yet."""


@dataclass
class _Writes:
    """New outcomes and alert rows of one promise, gathered over many scopes so that each
    kind is inserted in one statement."""

    created: list[Outcome] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)


class PromiseService:
    """One catalog over one database. ``accept`` may be called from many threads at once;
    evaluation from one (durable-rules is single-threaded)."""

    def __init__(
        self,
        catalog: Catalog,
        sessions: sessionmaker[Session],
        *,
        alerts: bool = True,
        erasure_key: str | None = None,
        limits: RecordLimits = DEFAULT_LIMITS,
        journal: quarantine.CrashJournal | None = None,
    ) -> None:
        """``alerts=False`` stores outcomes without queueing alerts: for backfilling history
        that nobody needs to be paged about now. ``erasure_key`` (PROMISE_ERASURE_KEY)
        checks new record ids against the tombstones of erased ones; without it, ids cannot
        be checked once anything was erased, and are refused. ``limits`` bound the records
        :meth:`accept` validates. ``journal`` notes which promise is being evaluated, for a
        worker process that a crash in the rules core may kill (engine/quarantine.py)."""
        self.catalog = catalog
        self.sessions = sessions
        self.alerts = alerts
        self.journal = journal
        # SQLite has one writer, and its busy handler sleeps up to 100 ms between tries:
        # concurrent API requests queue on this lock instead, woken as soon as it is free.
        bind = sessions.kw.get("bind")
        self._writer = (
            threading.Lock()
            if bind is not None and bind.dialect.name == "sqlite"
            else contextlib.nullcontext()
        )
        self.erasure_key = erasure_key
        self.limits = limits
        self.evaluator = Evaluator(catalog, on_change=lambda outcome: None)
        self.scope_fields = sorted({p.scope for p in catalog.promises.values()})
        with sessions.begin() as session:
            state_table.set_clock(session, 0)  # the clock row exists before workers race to move it
            for name in self.scope_fields:
                record_table.index_scope_field(session, name)
            outcome_table.record_versions(
                session, (_version_row(p) for p in catalog.promises.values())
            )
            self._suspects = quarantine.suspects(session)

    # --- ingest --------------------------------------------------------------------------------

    def ingest(self, raw_records: Iterable[Any]) -> list[IngestResult]:
        """Accept a batch and evaluate it before returning (one process, no worker)."""
        answers = self.accept(raw_records)
        while self.evaluate_pending():
            pass
        return answers

    def accept(self, raw_records: Iterable[Any]) -> list[IngestResult]:
        """Validate and durably store a batch, queued for evaluation; bad records are
        reported, the rest kept. Committed before it returns: "accepted" means stored."""
        results: list[IngestResult | Interaction] = []
        for raw in raw_records:
            parsed = parse_record(raw, self.limits)
            if isinstance(parsed, list):
                raw_id = raw.get("id") if isinstance(raw, dict) else None
                parsed = IngestResult(
                    raw_id if isinstance(raw_id, str) else None, "rejected", parsed
                )
            results.append(parsed)
        try:
            return self._store(results, queue=True)
        except IntegrityError:  # a concurrent request stored one of these ids first:
            return self._store(results, queue=True)  # admitting again answers it "duplicate"

    def backfill(
        self,
        records: list[Interaction],
        until: datetime | None = None,
        on_answers: Callable[[list[IngestResult]], None] = lambda answers: None,
    ) -> Counter[Status]:
        """Store ``records`` (in event-time order) in bulk and evaluate them: for replays and
        imports of history. Into an empty database, everything stored is evaluated in one
        streaming pass (:meth:`recompute`), which beats a scope re-evaluation per batch.
        Into one that holds history, only what the new records touch is evaluated, as the
        worker does it (queued with the records, so a crash part-way leaves them queued):
        a daily import costs the day's scopes, not the years. ``on_answers`` hears each
        chunk's answers; returns how many records got each answer.

        A bulk load that dies before its recompute leaves a mark, so that the next backfill
        recomputes everything again: its records were stored but not evaluated."""
        with self.sessions.begin() as session:
            empty = record_table.count_records(session) == 0 or (
                state_table.get_state(session, BULK_LOAD) is not None
            )
            if empty:
                state_table.set_state(session, BULK_LOAD, to_micros(now()))
        counts: Counter[Status] = Counter()
        for chunk in chunked(records, BULK_CHUNK):
            answers = self._store(chunk, queue=not empty)
            counts.update(answer.status for answer in answers)
            on_answers(answers)
        if empty:
            everything = counts["accepted"] == len(records)  # stored is exactly records
            self.recompute(until, stored=records if everything else None)
            return counts
        while self.evaluate_pending(BULK_CHUNK):
            pass
        if until is not None:
            self.advance(until)
        return counts

    def _store(
        self, items: Sequence[IngestResult | Interaction], *, queue: bool
    ) -> list[IngestResult]:
        """Admit ``items`` and store the new records in one transaction: ``queue``d for the
        worker, or (a bulk load) with the clock moved for :meth:`recompute`."""
        with self._writer, self.sessions.begin() as session:
            answers, new = self._admit(session, items)
            if new:
                record_table.add_records(session, new, self.scope_fields)
                if queue:
                    record_table.enqueue(session, new)
                else:
                    state_table.set_clock(session, max(r.at for r in new))
        return answers

    def evaluate_pending(self, limit: int = 2_000) -> int:
        """Evaluate up to ``limit`` queued records; returns how many.

        The records leave the queue in the transaction that stores their outcomes, so a
        crash part-way leaves them queued for the next attempt: none lost, none doubled.
        """
        with self._journaled(), self.sessions.begin() as session:
            records = record_table.take_pending(session, limit)
            if records:
                self._evaluate_new(session, records)
                record_table.dequeue(session, [r.id for r in records])
            return len(records)

    def evaluate_released(self, limit: int = 500) -> int:
        """Evaluate up to ``limit`` scopes that a quarantined promise skipped and may now
        evaluate (it was released, or a changed version replaced it); returns how many."""
        with self._journaled(), self.sessions.begin() as session:
            held = quarantine.in_force(session, self.catalog)
            pairs = quarantine.released_backlog(session, self.catalog, held, limit)
            if pairs:
                clock = state_table.get_clock(session) or 0
                self._evaluate(session, dict.fromkeys(pairs, "released from quarantine"), clock)
            return len(pairs)

    def release(self, promise_id: str) -> int:
        """Evaluate a quarantined promise again (its skipped scopes first); returns how many
        quarantines of it were lifted."""
        with self.sessions.begin() as session:
            return quarantine.release(session, promise_id)

    @contextmanager
    def _journaled(self) -> Iterator[None]:
        """Clear the crash journal when evaluation ends, committed or raising: only a
        process that dies mid-evaluation leaves an entry behind."""
        try:
            yield
        finally:
            if self.journal is not None:
                self.journal.clear()

    def _admit(
        self, session: Session, items: Sequence[IngestResult | Interaction]
    ) -> tuple[list[IngestResult], list[Interaction]]:
        """Answer each record, in order, against the batch, the stored and the erased ids;
        return the answers and the new records."""
        ids = {item.id for item in items if isinstance(item, Interaction)}
        known = Deduplicator(
            stored=record_table.fingerprints(session, ids),
            erased=pseudonyms.tombstoned(session, ids, self.erasure_key),
        )
        answers: list[IngestResult] = []
        new: list[Interaction] = []
        for item in items:
            if isinstance(item, IngestResult):  # refused by validation already
                answers.append(item)
                continue
            answers.append(known.admit(item))
            if answers[-1].status == "accepted":
                new.append(item)
        return answers, new

    def _evaluate_new(self, session: Session, records: list[Interaction]) -> None:
        """Evaluate the scopes that stored, not yet evaluated, ``records`` touch."""
        touched: dict[tuple[str, str], list[Interaction]] = {}
        for record in records:
            fields = record.fields()
            for name in self.scope_fields:
                value = record_table.scope_value(fields, name)
                if value is not None:
                    touched.setdefault((name, value), []).append(record)
        clock = max(state_table.get_clock(session) or 0, max(r.at for r in records))
        state_table.set_clock(session, clock)
        work: dict[tuple[str, str], str] = {
            (pid, value): ""  # worded once the scope's records are read, under its lock
            for pid, promise in self.catalog.promises.items()
            for (name, value) in touched
            if name == promise.scope
        }
        work.update(self._falling_due(session, clock, exclude=work))
        self._evaluate(session, work, clock, touched)

    # --- the clock -----------------------------------------------------------------------------

    def advance(self, moment: datetime) -> int:
        """Move the clock to ``moment`` and decide what fell due; returns scopes looked at."""
        with self._journaled(), self.sessions.begin() as session:
            clock = max(state_table.get_clock(session) or 0, to_micros(moment))
            state_table.set_clock(session, clock)
            work = self._falling_due(session, clock)
            self._evaluate(session, work, clock)
            return len(work)

    def _falling_due(
        self, session: Session, clock: int, exclude: dict[tuple[str, str], str] | None = None
    ) -> dict[tuple[str, str], str]:
        """Scopes whose open outcome the clock has made at risk or broken."""
        reason = f"clock advanced to {from_micros(clock).isoformat()}"
        return {
            (pid, scope): reason
            for pid, scope in outcome_table.open_scopes_due(session, from_micros(clock))
            if pid in self.catalog.promises and (pid, scope) not in (exclude or {})
        }

    # --- evaluation and outcome history --------------------------------------------------------

    def _evaluate(
        self,
        session: Session,
        work: dict[tuple[str, str], str],
        clock: int,
        touched: dict[tuple[str, str], list[Interaction]] | None = None,
    ) -> None:
        """Evaluate each (promise, scope) of ``work``; ``touched`` holds the new records of
        each scope (field, value), whose reasons are worded here. A scope continues from its
        checkpoint when its new records all come after it, else it is judged afresh from
        all of its records. A quarantined promise is skipped (its scopes kept for later),
        and one whose evaluation raises is quarantined: the other promises go on."""
        held = quarantine.in_force(session, self.catalog)
        if held:
            skipped = [key for key in work if key[0] in held]
            quarantine.defer(session, skipped)
            checkpoint_table.forget(session, skipped)  # they start afresh once released
            work = {key: reason for key, reason in work.items() if key[0] not in held}
        state_table.lock_scopes(session, work)  # then read: nothing read is stale under the lock
        saved = checkpoint_table.load(session, work)
        starts = self._starts(work, saved, touched or {})
        afresh = [key for key in work if key not in starts]
        cache = record_table.scopes_records(
            session, {(self.catalog.promises[pid].scope, scope) for pid, scope in afresh}
        )
        onwards = _onwards(self.catalog, starts, cache)
        cache.update(record_table.records_after(session, onwards))
        outcomes = outcome_table.outcomes_in_scopes(session, afresh)
        reasons = _reasons(session, touched or {}, cache)
        for pid, group in groupby(sorted(work.items()), key=lambda item: item[0][0]):
            promise = self.catalog.promises[pid]
            items = list(group)
            if self.journal is not None:
                self.journal.entering(promise)
            try:
                decided = self._decide(
                    promise, [s for (_, s), _ in items], cache, outcomes, starts, clock
                )
            except Exception as exc:  # isolate the promise; the others are still evaluated
                log.exception("evaluating promise %s raised", pid)
                quarantine.put(session, promise, f"its evaluation raised {exc!r}")
                quarantine.defer(session, (key for key, _ in items))
                checkpoint_table.forget(session, (key for key, _ in items))
                continue
            continued = {
                k
                for ((_, scope), _), (fresh, _) in zip(items, decided, strict=True)
                if (pid, scope) in starts
                for k in fresh
            }
            rows = outcome_table.outcomes_by_key(session, pid, continued)
            writes = _Writes()
            for ((_, scope), reason), (fresh, checkpoint) in zip(items, decided, strict=True):
                pair = (pid, scope)
                start = starts.get(pair)
                if start is None:  # judged afresh: every stored outcome of the scope
                    stored, complete = outcomes[pair], True
                else:  # continued: only the outcomes it changed
                    stored, complete = {k: rows[k] for k in fresh if k in rows}, False
                why = reasons.get((promise.scope, scope), reason)
                self._sync(session, promise, fresh, stored, why, writes, complete=complete)
                if checkpoint is not start:
                    kept = None if checkpoint is None else columns(checkpoint, promise.version)
                    checkpoint_table.save(session, saved, pair, kept)
            self._write(session, promise, writes)
            if (pid, promise.version) in self._suspects:
                quarantine.forgive(session, promise)
                self._suspects.discard((pid, promise.version))

    def _starts(
        self,
        work: dict[tuple[str, str], str],
        saved: dict[tuple[str, str], CheckpointRow],
        touched: dict[tuple[str, str], list[Interaction]],
    ) -> dict[tuple[str, str], Checkpoint]:
        """The checkpoints that scopes of ``work`` continue from: one of the promise's
        version, before every new record of the scope (a record before it arrived late:
        its scope is judged afresh)."""
        starts = {}
        for pid, scope in work:
            row = saved.get((pid, scope))
            promise = self.catalog.promises[pid]
            if row is None or row.version != promise.version:
                continue
            start = from_row(row)
            if all(r.order > start.order for r in touched.get((promise.scope, scope), ())):
                starts[(pid, scope)] = start
        return starts

    def _decide(
        self,
        promise: Promise,
        scopes: list[str],
        cache: dict[tuple[str, str], list[Interaction]],
        outcomes: dict[tuple[str, str], dict[str, OutcomeRow]],
        starts: dict[tuple[str, str], Checkpoint],
        clock: int,
    ) -> list[tuple[dict[str, Outcome], Checkpoint | None]]:
        """The fresh outcomes of each of ``promise``'s ``scopes`` (all of them, or from its
        checkpoint on only those that changed), and the checkpoint to keep; no writes."""
        decided = []
        for scope in scopes:
            records = cache[(promise.scope, scope)]
            start = starts.get((promise.id, scope))
            if start is None:
                stored = outcomes[(promise.id, scope)]
                judged = history.judge_afresh(
                    self.evaluator, promise, scope, records, stored, clock
                )
            else:  # the cache may hold the whole scope: another promise judged it afresh
                onwards = [r for r in records if r.order > start.order]
                judged = history.judge_onwards(
                    self.evaluator, promise, scope, start, onwards, clock
                )
            decided.append(judged)
        return decided

    def _sync(
        self,
        session: Session,
        promise: Promise,
        fresh: dict[str, Outcome],
        stored: dict[str, OutcomeRow],
        reason: str,
        writes: _Writes,
        *,
        complete: bool = True,
    ) -> None:
        """Make stored outcomes equal the fresh ones, keeping a revision for each change and
        owing the alerts the changes call for (in this same transaction: the outbox). New
        outcomes and alerts go to ``writes``, inserted by :meth:`_write` for many scopes at
        once. When ``fresh`` is ``complete``, a stored outcome missing from it is no
        opportunity any more; else ``fresh`` holds only what changed."""
        created = writes.created
        changes: list[outbox.Change] = []
        for key, outcome in fresh.items():
            row = stored.pop(key, None)
            if row is None:
                created.append(outcome)
                changes.append((None, outcome))
                continue
            before = outcome_table.row_to_outcome(row)
            if _frozen(before, promise):
                continue
            if before.verdict() != outcome.verdict():
                outcome_table.add_revision(session, promise.id, key, before, outcome, reason)
                changes.append((before, outcome))
            outcome_table.apply_outcome(row, outcome)
        for key, row in stored.items() if complete else ():
            before = outcome_table.row_to_outcome(row)
            if not _frozen(before, promise):
                session.delete(row)
                gone = f"{reason}: no longer an opportunity"
                outcome_table.add_revision(session, promise.id, key, before, None, gone)
                changes.append((before, None))
        if self.alerts:
            writes.alerts += outbox.owed(session, promise, changes, reason)

    def _write(self, session: Session, promise: Promise, writes: _Writes) -> None:
        outcome_table.add_outcomes(session, writes.created, promise.owner)
        team = self.catalog.teams.get(promise.owner)
        outbox.queue(session, writes.alerts, team, now())

    def recompute(
        self, until: datetime | None = None, stored: list[Interaction] | None = None
    ) -> None:
        """Evaluate every stored record again, streaming in event time (for bulk replays).

        ``stored``, when given, must be exactly the stored records in event-time order (the
        caller just loaded them into an empty database): they are not read back.
        """
        latest: dict[tuple[str, str], Outcome] = {}
        evaluator = Evaluator(self.catalog, lambda o: latest.__setitem__((o.promise, o.key), o))
        with self.sessions.begin() as session:
            for record in stored if stored is not None else record_table.all_records(session):
                evaluator.add(record)
            clock = max(
                state_table.get_clock(session) or 0,
                evaluator.clock or 0,
                to_micros(until) if until else 0,
            )
            if clock:
                state_table.set_clock(session, clock)
                evaluator.advance(from_micros(clock))
            fresh: dict[str, dict[str, Outcome]] = {pid: {} for pid in self.catalog.promises}
            for (pid, key), outcome in latest.items():
                fresh[pid][key] = outcome
            mine: dict[str, dict[str, OutcomeRow]] = {pid: {} for pid in self.catalog.promises}
            for (pid, key), row in outcome_table.all_outcomes(session).items():
                mine.setdefault(pid, {})[key] = row
            sealed = history.sealed_scopes(session)  # evaluated scope by scope, after a seal
            state_table.delete_state(session, BULK_LOAD)  # everything stored is evaluated
            checkpoint_table.forget_all(session)  # records came in that no checkpoint saw
            for pid, promise in self.catalog.promises.items():
                writes = _Writes()
                self._sync(
                    session,
                    promise,
                    history.outside(fresh[pid], pid, sealed),
                    history.outside(mine[pid], pid, sealed),
                    "recomputed from all records",
                    writes,
                )
                self._write(session, promise, writes)
            again = {
                s: "recomputed from all records" for s in sealed if s[0] in self.catalog.promises
            }
            self._evaluate(session, again, clock)

    # --- reading ---------------------------------------------------------------------------------

    def record_count(self) -> int:
        with self.sessions() as session:
            return record_table.count_records(session)

    def outcomes(self) -> list[Outcome]:
        with self.sessions() as session:
            rows = outcome_table.all_outcomes(session).values()
            return sorted(
                (outcome_table.row_to_outcome(r) for r in rows),
                key=lambda o: (o.promise, o.opened_at, o.key),
            )


def _frozen(outcome: Outcome, promise: Promise) -> bool:
    """Decided under an older version of the promise: that version's verdict stands.

    The "kept" of a limit's scope-wide opportunity (keyed by its scope: a limit without a
    window) is provisional (a later record can still break it), so it is not final; a
    windowed limit's per-record outcomes are final, like a never's. A sealed outcome (records
    behind it erased or expired) is always final.
    """
    if outcome.sealed:
        return True
    provisional = outcome.state in OPEN_STATES or (
        outcome.state == "kept" and promise.kind == "limit" and outcome.key == outcome.scope
    )
    return outcome.version != promise.version and not provisional


def _onwards(
    catalog: Catalog,
    starts: dict[tuple[str, str], Checkpoint],
    read: dict[tuple[str, str], list[Interaction]],
) -> dict[tuple[str, str], tuple[int, str]]:
    """Where each continued scope (field, value) is read from: after the earliest checkpoint
    of its promises, unless its records are ``read`` whole already (a promise of the same
    scope field is judged afresh)."""
    points: dict[tuple[str, str], tuple[int, str]] = {}
    for (pid, scope), start in starts.items():
        key = (catalog.promises[pid].scope, scope)
        if key not in read:
            point = (to_micros(start.order[0]), start.order[1])
            points[key] = min(points.get(key, point), point)
    return points


def _reasons(
    session: Session,
    touched: dict[tuple[str, str], list[Interaction]],
    scopes: dict[tuple[str, str], list[Interaction]],
) -> dict[tuple[str, str], str]:
    """Why each touched scope is evaluated: new records, or a late one (it arrived after
    later records of its scope had been evaluated: a verdict may be revised).

    Only records after a scope's earliest new one can make it late, and those are rare, so
    the one question to the queue (was such a record evaluated yet?) is usually not asked.
    """
    batch = {r.id for new in touched.values() for r in new}
    later = {
        key: [r for r in scopes[key] if r.id not in batch and r.order > min(n.order for n in new)]
        for key, new in touched.items()
    }
    queued = record_table.queued(session, {r.id for records in later.values() for r in records})
    reasons = {}
    for key, new in touched.items():
        evaluated = [r for r in later[key] if r.id not in queued]
        late = [r for r in new if any(r.order < e.order for e in evaluated)]
        if late:
            first = min(late, key=lambda r: r.order)
            reasons[key] = (
                f"late record {first.id} (occurred {first.occurred_at.isoformat()}) arrived "
                "after later records of its scope were evaluated"
            )
        else:
            reasons[key] = f"new record(s) {', '.join(sorted(r.id for r in new)[:5])}"
    return reasons


def _version_row(promise: Promise) -> PromiseVersionRow:
    return PromiseVersionRow(
        promise_id=promise.id,
        version=promise.version,
        kind=promise.kind,
        title=promise.title,
        owner=promise.owner,
        definition=canonical(promise),
        first_seen_at=now(),
    )
