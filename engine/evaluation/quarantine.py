"""Isolating a promise that crashes evaluation, so that the other promises keep going.

A promise the rules core cannot compile at all is quarantined when a worker loads the
catalog (``engine/runtime.py``, from ``engine/evaluation/core_check.py``'s problems).
Past that, a promise can fail in two ways. Its evaluation can raise (a bug in a kind, a value the
rules core refuses): that is caught where it happens and the promise version is
quarantined at once, since it would raise again on the same records. Or it can kill the
process (a segfault in durable-rules' C core): nothing catches that, so the worker writes
in a crash journal, a small file, which promise it is about to evaluate, and the worker
that restarts after it reads the journal. A promise version found there ``CRASHES_TO_QUARANTINE``
times in a row is quarantined; once could be a ``kill -9`` or the OOM killer that
happened to land on it.

A quarantined version is not evaluated. The scopes it skips are kept (the backlog) and
evaluated once it is released: by loading a changed version of the promise, or with
``promise quarantine release``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from sqlalchemy import delete, make_url, select, tuple_
from sqlalchemy.orm import Session

from engine import clock
from engine.storage import state_table
from engine.storage.bulk import chunked
from engine.storage.schema import BacklogRow, QuarantineRow
from rules.models import Catalog, Promise

log = logging.getLogger("promise.quarantine")
CRASHES_TO_QUARANTINE = 3
_CRASHES = "crashes:"


@dataclass(frozen=True)
class Quarantine:
    """A quarantined promise version: why, and since when."""

    promise_id: str
    version: str
    reason: str
    since: datetime


@dataclass(frozen=True)
class Crash:
    """The promise a worker was evaluating when its process died."""

    promise_id: str
    version: str


class CrashJournal:
    """Which promise this worker is evaluating, in a file that outlives the process.

    Workers of one database on one machine each hold a numbered slot, locked with
    ``flock`` (the kernel drops the lock when the process dies): a restarted worker takes
    the lowest free slot, which is the one a dead worker left, and reads what it wrote.
    """

    SLOTS = 64

    def __init__(self, database_url: str) -> None:
        where = _beside(database_url)
        name = "promise-worker-" + hashlib.sha256(database_url.encode()).hexdigest()[:16]
        for slot in range(self.SLOTS):
            lock = (where / f"{name}-{slot}.lock").open("a")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            self._lock: IO[str] = lock  # held (open) for the life of the process
            self.path = where / f"{name}-{slot}.json"
            return
        raise RuntimeError(f"more than {self.SLOTS} workers of one database on this machine")

    def left_behind(self) -> Crash | None:
        """What the previous holder of this slot was evaluating when it died, if anything."""
        try:
            entry = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return Crash(entry["promise"], entry["version"])

    def entering(self, promise: Promise) -> None:
        """About to evaluate ``promise``: no fsync, since only the process may die, not the
        machine (the page cache survives a process)."""
        self.path.write_text(json.dumps({"promise": promise.id, "version": promise.version}))

    def clear(self) -> None:
        """Nothing is being evaluated (the batch committed, or raised and was handled)."""
        self.path.unlink(missing_ok=True)


def _beside(database_url: str) -> Path:
    """A SQLite file's journal lives next to it; other databases' in the temp directory."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database).resolve().parent
    return Path(tempfile.gettempdir())


def recover(session: Session, crash: Crash, catalog: Catalog) -> None:
    """Count a crash against the promise version it happened in; quarantine that version
    once it has crashed ``CRASHES_TO_QUARANTINE`` times in a row."""
    name = f"{_CRASHES}{crash.promise_id}@{crash.version}"
    count = state_table.states_named(session, name).get(name, 0) + 1
    promise = catalog.promises.get(crash.promise_id)
    if count < CRASHES_TO_QUARANTINE or promise is None or promise.version != crash.version:
        state_table.set_state(session, name, count)
        log.warning("the worker died evaluating %s (%d in a row)", name[len(_CRASHES) :], count)
        return
    state_table.delete_state(session, name)
    put(session, promise, f"the evaluation process died {count} times in a row evaluating it")


def suspects(session: Session) -> set[tuple[str, str]]:
    """(promise id, version) pairs with crashes counted and not yet forgiven."""
    tags = (
        name[len(_CRASHES) :].rsplit("@", 1) for name in state_table.states_named(session, _CRASHES)
    )
    return {(promise_id, version) for promise_id, version in tags}


def forgive(session: Session, promise: Promise) -> None:
    """The version was evaluated without dying: earlier crashes were not its fault."""
    state_table.delete_state(session, f"{_CRASHES}{promise.id}@{promise.version}")


def put(session: Session, promise: Promise, reason: str) -> None:
    log.error("quarantined promise %s@%s: %s", promise.id, promise.version, reason)
    if session.get(QuarantineRow, (promise.id, promise.version)) is None:
        session.add(
            QuarantineRow(
                promise_id=promise.id,
                version=promise.version,
                reason=reason[:2000],
                since=clock.now(),
            )
        )


def listed(session: Session) -> list[Quarantine]:
    """Every quarantine, of any version, oldest first."""
    rows = session.scalars(select(QuarantineRow).order_by(QuarantineRow.since))
    return [Quarantine(r.promise_id, r.version, r.reason, r.since) for r in rows]


def in_force(session: Session, catalog: Catalog) -> dict[str, Quarantine]:
    """Quarantines of the promise versions ``catalog`` holds, by promise id."""
    return {
        q.promise_id: q
        for q in listed(session)
        if (promise := catalog.promises.get(q.promise_id)) and promise.version == q.version
    }


def release(session: Session, promise_id: str) -> int:
    """Lift every quarantine of ``promise_id``; how many there were."""
    done = session.execute(delete(QuarantineRow).where(QuarantineRow.promise_id == promise_id))
    return done.rowcount or 0


def defer(session: Session, skipped: Iterable[tuple[str, str]]) -> None:
    """Keep (promise, scope) pairs a quarantined promise did not evaluate."""
    wanted = set(skipped)
    for chunk in chunked(sorted(wanted)):
        held = session.execute(
            select(BacklogRow.promise_id, BacklogRow.scope).where(
                tuple_(BacklogRow.promise_id, BacklogRow.scope).in_(chunk)
            )
        )
        wanted -= set(held.tuples())
    session.add_all(BacklogRow(promise_id=p, scope=s) for p, s in sorted(wanted))


def released_backlog(
    session: Session, catalog: Catalog, held: Iterable[str], limit: int
) -> list[tuple[str, str]]:
    """Up to ``limit`` skipped (promise, scope) pairs whose promise may be evaluated again,
    taken off the backlog (in the caller's transaction, which evaluates them)."""
    query = select(BacklogRow.promise_id, BacklogRow.scope).order_by(
        BacklogRow.promise_id, BacklogRow.scope
    )
    if blocked := sorted(held):
        query = query.where(BacklogRow.promise_id.not_in(blocked))
    pairs = list(session.execute(query.limit(limit)).tuples())
    if pairs:
        session.execute(
            delete(BacklogRow).where(tuple_(BacklogRow.promise_id, BacklogRow.scope).in_(pairs))
        )
    return [(p, s) for p, s in pairs if p in catalog.promises]  # the rest were removed
