"""The engine as a service over a database: ingest records, keep outcomes and their history.

Each batch is one transaction: new records, and every outcome they change with a
revision saying why. A scope touched by a batch goes on from its checkpoint, or from an
earlier one before a late record, and gives the verdicts of evaluating all its stored
records afresh, so arrival order and batch boundaries never change a verdict. Outcomes
decided under an older promise version keep that version's verdict. Several workers split
the scopes by shard (engine/shards.py).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from engine.alerting import burn, outbox
from engine.clock import from_micros, now, to_micros
from engine.collector import fewer_collections
from engine.evaluation import history, quarantine
from engine.evaluation.checkpoint import SPACING, Checkpoint, Order, columns, from_row
from engine.evaluation.evaluator import Evaluator
from engine.ingest.dedup import Deduplicator, IngestResult, Status
from engine.outcomes import OPEN_STATES, Outcome
from engine.privacy import pseudonyms
from engine.records import DEFAULT_LIMITS, Interaction, RecordLimits, parse_record
from engine.settings import BACKFILL_ALERT_WINDOW
from engine.shards import EVERY, SHARDS, Share, shard, shards_of
from engine.storage import checkpoint_table, outcome_table, record_table, state_table
from engine.storage.bulk import build_indexes, chunked, drop_indexes
from engine.storage.schema import CheckpointRow, InteractionRow, OutcomeRow, PromiseVersionRow
from rules.models import Catalog, Promise
from rules.version import canonical

log = logging.getLogger("promise.service")
BULK_CHUNK = 5_000
"""Records stored per transaction by :meth:`PromiseService.backfill`."""
BULK_LOAD = "bulk_load_unfinished"
"""The state row of a bulk load whose records are not all evaluated yet."""


@dataclass
class _Plan:
    """How one (promise, scope) is judged: afresh (no ``start``; its ``latest`` checkpoint,
    if any, is dropped), onwards from its ``latest`` checkpoint (``start`` is that one), or
    from a kept checkpoint before a late record with the checkpoints ``later`` than it
    (where the run may meet the stored one again)."""

    start: Checkpoint | None = None
    latest: CheckpointRow | None = None
    last: Checkpoint | None = None  # the latest, read
    later: list[Checkpoint] | None = None
    last_late: Order | None = None  # the latest new record before the latest checkpoint


@dataclass
class _Writes:
    """New outcomes, alert rows and checkpoints of one promise, gathered over many scopes so
    that each kind is inserted in one statement."""

    created: list[Outcome] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    afresh: list[tuple[str, str]] = field(default_factory=list)  # their old checkpoints go


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
        backfill_alert_window: timedelta = BACKFILL_ALERT_WINDOW,
        checkpoint_spacing: int = SPACING,
        share: Share = EVERY,
    ) -> None:
        """``alerts=False`` stores outcomes without queueing alerts: for backfilling history
        that nobody needs to be paged about now. ``erasure_key`` (PROMISE_ERASURE_KEY)
        checks new record ids against the tombstones of erased ones; without it, ids cannot
        be checked once anything was erased, and are refused. ``limits`` bound the records
        :meth:`accept` validates. ``journal`` notes which promise is being evaluated, for a
        worker process that a crash in the rules core may kill (engine/quarantine.py).
        ``backfill_alert_window`` (PROMISE_BACKFILL_ALERT_WINDOW): backfilled history alerts
        only breaches decided this long before the clock, or later. ``checkpoint_spacing``:
        records of a scope between the checkpoints kept for late records
        (engine/evaluation/checkpoint.py). ``share``: the shards of the scopes this service
        evaluates, one worker's among several (engine/shards.py)."""
        self.catalog = catalog
        self.backfill_alert_window = backfill_alert_window
        self.sessions = sessions
        self.alerts = alerts
        self.journal = journal
        self.share = share
        self._looked_at = 0
        """The latest clock at which this service decided what fell due (committed)."""
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
        self.evaluator = Evaluator(
            catalog, on_change=lambda outcome: None, spacing=checkpoint_spacing
        )
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

    def accept(self, raw_records: Iterable[Any], *, backfill: bool = False) -> list[IngestResult]:
        """Validate and durably store a batch, queued for evaluation; bad records are
        reported, the rest kept. Committed before it returns: "accepted" means stored.
        ``backfill`` queues them as history: their old breaches are not alerted."""
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
            return self._store(results, queue=True, backfill=backfill)
        except IntegrityError:  # a concurrent request stored one of these ids first:
            # admitting again answers it "duplicate"
            return self._store(results, queue=True, backfill=backfill)

    @fewer_collections()
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
        chunk's answers; returns how many records got each answer. The records are history:
        only breaches decided within ``backfill_alert_window`` of the clock are alerted.

        A bulk load that dies before its recompute leaves a mark, so that the next backfill
        recomputes everything again: its records were stored but not evaluated. A bulk
        load stores them without the indexes that only reads need, built once at the end
        (the next backfill builds them when a crash came first)."""
        with self.sessions.begin() as session:
            empty = record_table.count_records(session) == 0 or (
                state_table.get_state(session, BULK_LOAD) is not None
            )
            if empty:
                state_table.set_state(session, BULK_LOAD, to_micros(now()))
                drop_indexes(session, InteractionRow)
        counts: Counter[Status] = Counter()
        for chunk in chunked(records, BULK_CHUNK):
            answers = self._store(chunk, queue=not empty, backfill=True)
            counts.update(answer.status for answer in answers)
            on_answers(answers)
        if empty:
            with self.sessions.begin() as session:
                build_indexes(session, InteractionRow)
            everything = counts["accepted"] == len(records)  # stored is exactly records
            self.recompute(until, stored=records if everything else None, backfilled=True)
            return counts
        while self.evaluate_pending(BULK_CHUNK):
            pass
        if until is not None:
            self.advance(until)
        return counts

    def _store(
        self, items: Sequence[IngestResult | Interaction], *, queue: bool, backfill: bool = False
    ) -> list[IngestResult]:
        """Admit ``items`` and store the new records in one transaction: ``queue``d for the
        worker (as ``backfill`` history or not), or (a bulk load) with the clock moved for
        :meth:`recompute`."""
        with self._writer, self.sessions.begin() as session:
            answers, new = self._admit(session, items)
            if new:
                record_table.add_records(session, new, self.scope_fields)
                if queue:
                    record_table.enqueue(session, new, self.scope_fields, backfill=backfill)
                else:
                    state_table.set_clock(session, max(r.at for r in new))
        return answers

    def evaluate_pending(self, limit: int = 2_000) -> int:
        """Evaluate up to ``limit`` queued records; returns how many.

        The records leave the queue in the transaction that stores their outcomes, so a
        crash part-way leaves them queued for the next attempt: none lost, none doubled.
        """
        with self._journaled(), self.sessions.begin() as session:
            taken = record_table.take_pending(
                session, limit, self.share.shards, max(1, len(self.scope_fields))
            )
            if not taken.records:
                return 0
            clock = self._evaluate_new(session, taken)
            record_table.dequeue(session, taken)
            self._objectives(session, clock, backfilled=taken.backfill)
            state_table.set_clock(session, clock)  # last: other workers wait for its row
        self._looked_at = max(self._looked_at, clock)  # committed: what fell due is decided
        return len(taken.records)

    def queue_empty(self) -> bool:
        """Whether no worker has records left to evaluate."""
        with self.sessions() as session:
            return record_table.queue_empty(session)

    def evaluate_released(self, limit: int = 500) -> int:
        """Evaluate up to ``limit`` scopes that a quarantined promise skipped and may now
        evaluate (it was released, or a changed version replaced it); returns how many."""
        if not self.share.leads:
            return 0
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

    def _evaluate_new(self, session: Session, taken: record_table.Taken) -> int:
        """Evaluate the scopes, of the shards they were taken for, that stored, not yet
        evaluated, records touch; returns the clock they moved to."""
        touched: dict[tuple[str, str], list[Interaction]] = {}
        for record in taken.records:
            fields = record.fields()
            for name in self.scope_fields:
                value = record_table.scope_value(fields, name)
                if value is not None and shard(name, value) in taken.shards[record.id]:
                    touched.setdefault((name, value), []).append(record)
        clock = max(state_table.get_clock(session) or 0, max(r.at for r in taken.records))
        work: dict[tuple[str, str], str] = {
            (pid, value): ""  # worded once the scope's records are read, under its lock
            for pid, promise in self.catalog.promises.items()
            for (name, value) in touched
            if name == promise.scope
        }
        work.update(self._falling_due(session, clock, exclude=work))
        self._evaluate(session, work, clock, touched, backfilled=taken.backfill)
        return clock

    # --- the clock -----------------------------------------------------------------------------

    def advance(self, moment: datetime) -> int:
        """Move the clock to ``moment`` and decide what fell due in this worker's shards;
        returns scopes looked at."""
        with self._journaled(), self.sessions.begin() as session:
            clock = max(state_table.get_clock(session) or 0, to_micros(moment))
            work = self._falling_due(session, clock)
            self._evaluate(session, work, clock)
            self._objectives(session, clock)
            state_table.set_clock(session, clock)
        self._looked_at = max(self._looked_at, clock)
        return len(work)

    def catch_up(self) -> int:
        """Decide what fell due in this worker's shards since the clock that other workers
        moved; returns scopes looked at (0, with no query but the clock's, when it has not
        moved since this worker last looked)."""
        with self.sessions() as session:
            clock = state_table.get_clock(session) or 0
        if clock <= self._looked_at:
            return 0
        return self.advance(from_micros(clock))

    def _falling_due(
        self, session: Session, clock: int, exclude: dict[tuple[str, str], str] | None = None
    ) -> dict[tuple[str, str], str]:
        """Scopes of this worker's shards whose open outcome the clock has made at risk or
        broken."""
        reason = f"clock advanced to {from_micros(clock).isoformat()}"
        mine = self.share.shards
        return {
            (pid, scope): reason
            for pid, scope in outcome_table.open_scopes_due(session, from_micros(clock))
            if pid in self.catalog.promises
            and (pid, scope) not in (exclude or {})
            and shard(self.catalog.promises[pid].scope, scope) in mine
        }

    # --- evaluation and outcome history --------------------------------------------------------

    def _evaluate(
        self,
        session: Session,
        work: dict[tuple[str, str], str],
        clock: int,
        touched: dict[tuple[str, str], list[Interaction]] | None = None,
        *,
        backfilled: bool = False,
    ) -> None:
        """Evaluate each (promise, scope) of ``work``; ``touched`` holds the new records of
        each scope (field, value), whose reasons are worded here. A scope continues from its
        checkpoint when its new records all come after it, else it is judged afresh from
        all of its records. A quarantined promise is skipped (its scopes kept for later),
        and one whose evaluation raises is quarantined: the other promises go on.
        ``backfilled``: alert only recent breaches."""
        quiet_before = self._quiet_before(clock, backfilled)
        held = quarantine.in_force(session, self.catalog)
        if held:
            skipped = [key for key in work if key[0] in held]
            quarantine.defer(session, skipped)
            checkpoint_table.forget(session, skipped)  # they start afresh once released
            work = {key: reason for key, reason in work.items() if key[0] not in held}
        locked = shards_of(self.catalog, work)
        state_table.lock_shards(session, locked)  # then read: nothing read is stale under them
        started = time.monotonic()
        plans = self._plans(session, work, touched or {})
        afresh = [key for key, plan in plans.items() if plan.start is None]
        cache = record_table.scopes_records(
            session, {(self.catalog.promises[pid].scope, scope) for pid, scope in afresh}
        )
        cache.update(record_table.records_after(session, _onwards(self.catalog, plans, cache)))
        outcomes = outcome_table.outcomes_in_scopes(session, afresh)
        restarted = {
            (self.catalog.promises[pid].scope, scope)
            for (pid, scope), plan in plans.items()
            if plan.later is not None
        }
        reasons = _reasons(session, touched or {}, cache, restarted)
        for pid, group in groupby(sorted(work.items()), key=lambda item: item[0][0]):
            promise = self.catalog.promises[pid]
            items = list(group)
            if self.journal is not None:
                self.journal.entering(promise)
            try:
                decided = [
                    self._decide(
                        session, promise, scope, plans[(pid, scope)], cache, outcomes, clock
                    )
                    for (_, scope), _ in items
                ]
            except Exception as exc:  # isolate the promise; the others are still evaluated
                log.exception("evaluating promise %s raised", pid)
                quarantine.put(session, promise, f"its evaluation raised {exc!r}")
                quarantine.defer(session, (key for key, _ in items))
                checkpoint_table.forget(session, (key for key, _ in items))
                continue
            changed = {k for judged in decided if not judged.complete for k in judged.outcomes}
            rows = outcome_table.outcomes_by_key(session, pid, changed)
            writes = _Writes()
            for ((_, scope), reason), judged in zip(items, decided, strict=True):
                pair, plan = (pid, scope), plans[(pid, scope)]
                if judged.complete:  # judged afresh: every stored outcome of the scope
                    stored = outcomes[pair]
                else:  # from a checkpoint: the outcomes it changed, and those it decided again
                    stored = {k: rows[k] for k in judged.outcomes if k in rows}
                    if plan.later is not None:
                        since = plan.start.order[0] if plan.start else None
                        through = judged.met.order[0] if judged.met else None
                        opened = outcome_table.opened_between(session, pid, scope, since, through)
                        stored |= {row.key: row for row in opened if judged.redecided(row)}
                why = reasons.get((promise.scope, scope), reason)
                complete = judged.complete or plan.later is not None
                self._sync(
                    session,
                    promise,
                    fresh=judged.outcomes,
                    stored=stored,
                    reason=why,
                    writes=writes,
                    complete=complete,
                    quiet_before=quiet_before,
                )
                leaves = _keep_checkpoints(
                    session, pair, plan, judged, promise.version, self.evaluator.spacing
                )
                writes.checkpoints += [{"promise_id": pid, "scope": scope, **r} for r in leaves]
                if plan.start is None and plan.latest is not None:
                    writes.afresh.append(pair)
            self._write(session, promise, writes)
            if (pid, promise.version) in self._suspects:
                quarantine.forgive(session, promise)
                self._suspects.discard((pid, promise.version))
        if work and log.isEnabledFor(logging.DEBUG):  # for operators, and for the test that
            log.debug(  # no two workers judge a shard at once
                "judged %d scopes of shards %s from %.6f to %.6f (monotonic)",
                len(work),
                sorted(locked),
                started,
                time.monotonic(),
            )

    def _plans(
        self,
        session: Session,
        work: dict[tuple[str, str], str],
        touched: dict[tuple[str, str], list[Interaction]],
    ) -> dict[tuple[str, str], _Plan]:
        """How each (promise, scope) of ``work`` is judged: onwards from its latest
        checkpoint when its new records all come after it; when one comes before (a late
        record), from a kept checkpoint before it if the scope is long (a late record's
        restart reads a scope's pages one query at a time, while scopes judged afresh are
        read together) and has no sealed deadline numbering; else afresh."""
        saved = checkpoint_table.latest(session, work)
        plans = {}
        for pair in work:
            pid, scope = pair
            promise = self.catalog.promises[pid]
            row = saved.get(pair)
            if row is None or row.version != promise.version:
                plans[pair] = _Plan(latest=row)
                continue
            latest = from_row(row)
            seal = latest.state.get(history.SEALED, {}).get("since")  # none judges before it
            early = [
                r
                for r in touched.get((promise.scope, scope), ())
                if r.order <= latest.order and (seal is None or r.at > seal)
            ]
            if not early:
                plans[pair] = _Plan(start=latest, latest=row, last=latest)
                continue
            if latest.n < 2 * self.evaluator.spacing or history.SEALED in latest.state:
                plans[pair] = _Plan(latest=row)  # small: one batched read is cheaper; or sealed
                continue
            first = min(early, key=lambda r: r.order)
            kept = checkpoint_table.kept_before(session, pair, (first.at, first.id))
            if kept is not None and kept.version != promise.version:
                plans[pair] = _Plan(latest=row)
                continue
            start = (
                from_row(kept)
                if kept is not None
                else history.beginning(self.evaluator, promise, scope)
            )
            later = checkpoint_table.after(session, pair, _place(start))
            plans[pair] = _Plan(
                start,
                row,
                latest,
                [from_row(r) for r in later],
                max(r.order for r in early),
            )
        return plans

    def _decide(
        self,
        session: Session,
        promise: Promise,
        scope: str,
        plan: _Plan,
        cache: dict[tuple[str, str], list[Interaction]],
        outcomes: dict[tuple[str, str], dict[str, OutcomeRow]],
        clock: int,
    ) -> history.Judged:
        """Judge one scope of ``promise`` as its ``plan`` says (no database writes)."""
        key = (promise.scope, scope)
        if plan.start is None:
            stored = outcomes[(promise.id, scope)]
            return history.judge_afresh(self.evaluator, promise, scope, cache[key], stored, clock)
        if plan.later is None:  # the cache may hold the whole scope: another promise's read
            onwards = [r for r in cache[key] if r.order > plan.start.order]
            return history.judge_onwards(self.evaluator, promise, scope, plan.start, onwards, clock)

        def read(after: Order, through: Order | None) -> list[Interaction]:
            return record_table.scope_records_between(session, *key, after, through)

        assert plan.last is not None and plan.last_late is not None
        return history.judge_late(
            self.evaluator,
            promise,
            scope,
            plan.start,
            plan.last,
            plan.later,
            read,
            clock,
            plan.last_late,
        )

    def _sync(
        self,
        session: Session,
        promise: Promise,
        fresh: dict[str, Outcome],
        stored: dict[str, OutcomeRow],
        reason: str,
        writes: _Writes,
        quiet_before: datetime | None = None,
        *,
        complete: bool = True,
    ) -> None:
        """Make stored outcomes equal the fresh ones, keeping a revision for each change and
        owing the alerts the changes call for (in this same transaction: the outbox). New
        outcomes and alerts go to ``writes``, inserted by :meth:`_write` for many scopes at
        once. Breaches decided before ``quiet_before`` (history) are recorded, not alerted.
        When ``fresh`` is ``complete``, a stored outcome missing from it is no opportunity any
        more; else ``fresh`` holds only what changed."""
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
            writes.alerts += outbox.owed(session, promise, changes, reason, quiet_before)

    def _write(self, session: Session, promise: Promise, writes: _Writes) -> None:
        outcome_table.add_outcomes(session, writes.created, promise.owner)
        session.flush()  # a latest checkpoint deleted, or marked so no more, before its heir
        checkpoint_table.forget(session, writes.afresh)
        checkpoint_table.add(session, writes.checkpoints)
        team = self.catalog.teams.get(promise.owner)
        outbox.queue(session, writes.alerts, team, now())

    def recompute(
        self,
        until: datetime | None = None,
        stored: list[Interaction] | None = None,
        *,
        backfilled: bool = False,
    ) -> None:
        """Evaluate every stored record again, streaming in event time (for bulk replays).

        ``stored``, when given, must be exactly the stored records in event-time order (the
        caller just loaded them into an empty database): they are not read back. ``backfilled``:
        alert only recent breaches.
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
            state_table.lock_shards(session, range(SHARDS))  # every scope is judged again
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
            first = not any(mine.values())  # a first load: indexes are built once, after it
            if first:
                drop_indexes(session, OutcomeRow)
            for pid, promise in self.catalog.promises.items():
                writes = _Writes()
                self._sync(
                    session,
                    promise,
                    history.outside(fresh[pid], pid, sealed),
                    history.outside(mine[pid], pid, sealed),
                    "recomputed from all records",
                    writes,
                    self._quiet_before(clock, backfilled),
                )
                self._write(session, promise, writes)
            if first:
                build_indexes(session, OutcomeRow)
            again = {
                s: "recomputed from all records" for s in sealed if s[0] in self.catalog.promises
            }
            self._evaluate(session, again, clock, backfilled=backfilled)
            self._objectives(session, clock, backfilled=backfilled)

    def _objectives(self, session: Session, clock: int, *, backfilled: bool = False) -> None:
        """Open and resolve the objective (burn-rate) alerts at ``clock``, once its outcomes are
        written: the leading worker's job. A backfill whose clock is older than its alert
        window is history: no alert."""
        if not self.share.leads:
            return
        quiet_before = self._quiet_before(clock, backfilled)
        moment = from_micros(clock)
        if not self.alerts or (quiet_before is not None and moment < quiet_before):
            return
        for promise in self.catalog.promises.values():
            team = self.catalog.teams.get(promise.owner)
            if burn.wanted(promise, team):
                outbox.queue(session, burn.owed(session, promise, moment), team, now())

    def _quiet_before(self, clock: int, backfilled: bool) -> datetime | None:
        """For ``backfilled`` history, the decision time before which a breach is not alerted:
        the window back from the engine's clock, or from the wall clock when that is later
        (history loaded in several rounds moves the clock through the past: the end of each
        round's stretch is not recent)."""
        if not backfilled:
            return None
        return max(from_micros(clock), now()) - self.backfill_alert_window

    # --- reading ---------------------------------------------------------------------------------

    def record_count(self) -> int:
        with self.sessions() as session:
            return record_table.count_records(session)

    @fewer_collections()
    def outcomes(self) -> list[Outcome]:
        with self.sessions() as session:
            return sorted(
                outcome_table.read_all(session), key=lambda o: (o.promise, o.opened_at, o.key)
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
    plans: dict[tuple[str, str], _Plan],
    read: dict[tuple[str, str], list[Interaction]],
) -> dict[tuple[str, str], tuple[int, str]]:
    """Where each scope (field, value) continued from its latest checkpoint is read from:
    after the earliest such checkpoint of its promises, unless its records are ``read``
    whole already (a promise of the same scope field is judged afresh)."""
    points: dict[tuple[str, str], tuple[int, str]] = {}
    for (pid, scope), plan in plans.items():
        key = (catalog.promises[pid].scope, scope)
        if plan.start is not None and plan.later is None and key not in read:
            point = (to_micros(plan.start.order[0]), plan.start.order[1])
            points[key] = min(points.get(key, point), point)
    return points


def _keep_checkpoints(
    session: Session,
    pair: tuple[str, str],
    plan: _Plan,
    judged: history.Judged,
    version: str,
    spacing: int,
) -> list[dict[str, Any]]:
    """Drop the checkpoints a judgement made stale; returns the rows of those it leaves, for
    the caller to add with the other scopes' (one statement). A scope that cannot be
    continued keeps none (a kept one without a latest would outlive what it stands for);
    a short one keeps none either (judged afresh with the others, it costs less: what
    counts is the records read, which after a seal are more than those judged)."""
    final = judged.onwards if judged.onwards is not None else judged
    if final.latest is None:
        if plan.latest is not None:
            checkpoint_table.drop(session, pair)
        return []
    rows = _rows(judged, version)
    if plan.start is None:  # afresh: the caller drops the old ones, in bulk
        return rows if judged.read >= spacing // 4 else []
    if plan.later is None:  # onwards from the latest
        return _go_on(session, plan, judged, rows)
    if judged.met is None:  # a late record's run to the end
        checkpoint_table.drop(session, pair, after=_place(plan.start))
        return rows
    # a late record's run met the stored one again, then went on from the latest
    before = _place(judged.met)
    checkpoint_table.drop(session, pair, after=_place(plan.start), before=before)
    return rows + _go_on(session, plan, final, _rows(final, version))


def _go_on(
    session: Session, plan: _Plan, judged: history.Judged, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """After a run onwards from the latest checkpoint, that one is the latest no more."""
    assert plan.latest is not None and plan.last is not None
    if judged.latest is plan.last:
        return []  # no new record: nothing moved
    if plan.latest.kept:
        plan.latest.latest = False
    else:
        session.delete(plan.latest)
    return rows


def _rows(judged: history.Judged, version: str) -> list[dict[str, Any]]:
    rows = [columns(c, version, latest=False, kept=True) for c in judged.kept]
    if judged.latest is not None:
        if judged.kept and judged.kept[-1].order == judged.latest.order:
            rows[-1]["latest"] = True
        else:
            rows.append(columns(judged.latest, version, latest=True, kept=False))
    return rows


def _place(checkpoint: Checkpoint) -> tuple[int, str]:
    occurred, record_id = checkpoint.order
    return (to_micros(occurred), record_id)


def _reasons(
    session: Session,
    touched: dict[tuple[str, str], list[Interaction]],
    scopes: dict[tuple[str, str], list[Interaction]],
    restarted: set[tuple[str, str]],
) -> dict[tuple[str, str], str]:
    """Why each touched scope is evaluated: new records, or a late one (it arrived after
    later records of its scope had been evaluated: a verdict may be revised). The scope's
    records read (``scopes``) tell, or for a scope ``restarted`` before its latest
    checkpoint (not read whole), its latest evaluated record does: a record the checkpoint
    took in while it was still queued is not late.

    Only records after a scope's earliest new one can make it late, and those are rare, so
    the one question to the queue (was such a record evaluated yet?) is usually not asked.
    """
    batch = {r.id for new in touched.values() for r in new}
    later = {
        key: [r for r in scopes[key] if r.id not in batch and r.order > min(n.order for n in new)]
        for key, new in touched.items()
        if key not in restarted
    }
    queued = record_table.queued(session, {r.id for records in later.values() for r in records})
    reasons = {}
    for key, new in touched.items():
        if key in restarted:
            last = record_table.last_evaluated(session, *key, (r.id for r in new))
            arrived_late = [r for r in new if last is not None and r.order < last]
        else:
            evaluated = [r for r in later[key] if r.id not in queued]
            arrived_late = [r for r in new if any(r.order < e.order for e in evaluated)]
        if arrived_late:
            first = min(arrived_late, key=lambda r: r.order)
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
