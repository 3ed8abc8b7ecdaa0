"""The background processes: the evaluation worker and the alert dispatcher.

The worker drains the queue of accepted records and, live, moves the clock. It runs apart
from the HTTP process (``promise worker``, or supervised by ``promise serve``), so a crash
in the rules core can take neither the API nor an accepted record with it: the queue is
only emptied together with the outcomes. The dispatcher (``promise dispatcher``) delivers
the alerts those outcomes queued, so a slow receiver never holds up evaluation.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from engine.alerting.dispatch import Dispatcher
from engine.evaluation import quarantine
from engine.privacy import retention
from engine.reading.queries import WORKER
from engine.service import PromiseService
from engine.settings import Settings
from engine.storage import state_table
from engine.storage.database import make_engine, migrate, session_factory
from rules.loader import check_directory, files_fingerprint, load_catalog
from rules.models import Catalog

log = logging.getLogger("promise.worker")
DATABASE_DOWN = (OperationalError, InterfaceError)
RETENTION_EVERY = 3600.0
"""Seconds between retention runs of a worker (PROMISE_RETENTION_DAYS)."""


def run_worker(
    settings: Settings, *, live: bool, interval: float, once: bool = False, batch: int = 2_000
) -> int:
    """Run until stopped (or, with ``once``, until the queue is empty); returns how many
    records this worker evaluated."""
    engine = make_engine(settings.database_url)
    migrate(engine)
    sessions = session_factory(engine)
    catalog = load_catalog(settings.dir)
    journal = quarantine.CrashJournal(settings.database_url)
    if crash := journal.left_behind():  # the previous worker died in the rules core
        with sessions.begin() as session:
            quarantine.recover(session, crash, catalog)
        journal.clear()
    service = PromiseService(catalog, sessions, journal=journal)
    files = files_fingerprint(settings.dir)
    evaluated = 0
    retention_due = time.monotonic()
    outage = _Outage()
    size = _BatchSize(batch, engine.dialect.name == "sqlite")
    while True:
        if files != (files := files_fingerprint(settings.dir)):
            service = _reloaded(settings, sessions, journal) or service
        try:
            if settings.retention_days and time.monotonic() >= retention_due:
                retention_due = time.monotonic() + RETENTION_EVERY
                retained = retention.apply_retention(
                    sessions, service.catalog, settings.retention_days
                )
                if retained.records:
                    log.info(retained.summary())
            started = time.monotonic()
            done = service.evaluate_pending(size.records)
            size.took(done, time.monotonic() - started)
            evaluated += done
            done += service.evaluate_released()
            if live:
                service.advance(datetime.now(UTC))
            with sessions.begin() as session:
                state_table.beat(session, WORKER)
        except DATABASE_DOWN as exc:
            outage.wait(exc)
            continue
        outage.rounds = 0
        if once and not done:
            return evaluated
        if not done:
            time.sleep(interval)


class _BatchSize:
    """How many records one evaluation transaction takes. SQLite has a single writer, so
    there a batch is sized to hold the write lock about ``SQLITE_BATCH_SECONDS``: the API's
    inserts wait behind it. PostgreSQL takes ``most`` (bigger batches cost less per record)."""

    SQLITE_BATCH_SECONDS = 0.2

    def __init__(self, most: int, sqlite: bool) -> None:
        self.most = most
        self.sqlite = sqlite
        self.records = min(most, 100) if sqlite else most

    def took(self, records: int, seconds: float) -> None:
        if self.sqlite and records >= self.records:  # a full batch: its pace is known
            pace = records / max(seconds, 1e-3)
            self.records = max(10, min(self.most, int(pace * self.SQLITE_BATCH_SECONDS)))


class _Outage:
    """Backs off while the database is unreachable. A round that failed committed nothing
    (each is one transaction), so it is simply tried again."""

    def __init__(self) -> None:
        self.rounds = 0

    def wait(self, exc: Exception) -> None:
        self.rounds += 1
        log.warning("database unavailable (%s); retrying", str(exc).splitlines()[0])
        time.sleep(min(0.5 * 2**self.rounds, 10.0))


def _reloaded(
    settings: Settings, sessions: sessionmaker[Session], journal: quarantine.CrashJournal
) -> PromiseService | None:
    """A service over the edited catalog, or None if it is invalid."""
    catalog = _reloaded_catalog(settings)
    return PromiseService(catalog, sessions, journal=journal) if catalog is not None else None


def _reloaded_catalog(settings: Settings) -> Catalog | None:
    """The edited catalog, or None (and the problems logged) if it is invalid."""
    result = check_directory(settings.dir)
    if result.catalog is None:
        log.error(
            "promise files changed but are invalid; keeping the running promises:\n%s",
            "\n".join(map(str, result.errors)),
        )
        return None
    log.info("promise files changed: reloaded %d promises", len(result.catalog.promises))
    return result.catalog


def run_dispatcher(settings: Settings, *, interval: float, once: bool = False) -> int:
    """Deliver alerts until stopped (or, with ``once``, until nothing is due); returns how
    many deliveries were attempted."""
    engine = make_engine(settings.database_url)
    migrate(engine)
    sessions = session_factory(engine)
    dispatcher = Dispatcher(settings, load_catalog(settings.dir), sessions)
    files = files_fingerprint(settings.dir)
    attempted = 0
    outage = _Outage()
    try:
        while True:
            if files != (files := files_fingerprint(settings.dir)):
                catalog = _reloaded_catalog(settings)
                if catalog is not None:
                    dispatcher.catalog = catalog
            try:
                done = dispatcher.run_once()
            except DATABASE_DOWN as exc:
                outage.wait(exc)
                continue
            outage.rounds = 0
            attempted += done
            if once and not done:
                return attempted
            if not done:
                time.sleep(interval)
    finally:
        dispatcher.close()


class Supervisor:
    """Keeps one background process (``promise worker`` or ``promise dispatcher``) running
    beside the HTTP server; restarts it if it dies."""

    def __init__(self, command: str, *options: str) -> None:
        self.name = command
        self.command = [sys.executable, "-m", "api.cli", command, *options]
        self.process: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, name=f"{command}-supervisor", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def _watch(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            self.process = subprocess.Popen(self.command)
            started = time.monotonic()
            while self.process.poll() is None and not self._stop.is_set():
                time.sleep(0.2)
            if self._stop.is_set():
                break
            log.warning("%s exited with %s; restarting", self.name, self.process.returncode)
            backoff = 0.5 if time.monotonic() - started > 30 else min(backoff * 2, 10)
            self._stop.wait(backoff)

    def stop(self) -> None:
        self._stop.set()
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
