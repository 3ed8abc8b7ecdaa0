"""The background processes: the evaluation worker and the alert dispatcher.

The worker drains the queue of accepted records and, live, moves the clock. It runs apart
from the HTTP process (``promise worker``, or supervised by ``promise serve``), so a crash
in the rules core can take neither the API nor an accepted record with it: the queue is
only emptied together with the outcomes. The dispatcher (``promise dispatcher``) delivers
the alerts those outcomes queued, so a slow receiver never holds up evaluation.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

from engine.alerting.dispatch import Dispatcher
from engine.errors import DATABASE_DOWN, InvalidDefinition
from engine.evaluation import quarantine
from engine.lifeline import open_lifeline
from engine.privacy import retention
from engine.runtime import Runtime
from engine.service import PromiseService
from engine.settings import Settings
from engine.shards import EVERY, SHARDS, Share
from rules.loader import files_fingerprint

log = logging.getLogger("promise.worker")
RETENTION_EVERY = 3600.0
"""Seconds between retention runs of a worker (PROMISE_RETENTION_DAYS)."""


def run_worker(
    settings: Settings,
    *,
    live: bool,
    interval: float,
    once: bool = False,
    batch: int = 2_000,
    stop: threading.Event | None = None,
    share: Share = EVERY,
) -> int:
    """Run until ``stop`` is set (or, with ``once``, until the queue is empty and what fell
    due by the last clock is decided); returns how many records this worker evaluated. A
    round under way when ``stop`` is set is finished: it is one transaction, so stopping
    mid-round would only waste it. ``share``: this worker's shards of the scopes, when
    several share the database (engine/shards.py)."""
    stop = stop or threading.Event()
    runtime = Runtime.open(settings, quarantine_refused=True)
    journal = quarantine.CrashJournal(settings.database_url)
    if crash := journal.left_behind():  # the previous worker died in the rules core
        with runtime.sessions.begin() as session:
            quarantine.recover(session, crash, runtime.catalog)
        journal.clear()

    def evaluator() -> PromiseService:  # again after each reload of the catalog
        return PromiseService(
            runtime.catalog,
            runtime.sessions,
            journal=journal,
            backfill_alert_window=settings.backfill_alert_window,
            share=share,
        )

    service = evaluator()
    edits = _Edits(runtime)
    shards = share.shards
    log.info(
        "worker %d started: share %s, shards %d-%d of %d",
        os.getpid(),
        share,
        shards.start,
        shards.stop - 1,
        SHARDS,
    )
    evaluated = 0
    retention_due = time.monotonic()
    outage = _Outage(stop)
    size = _BatchSize(batch, runtime.db.dialect.name == "sqlite")
    while not stop.is_set():
        if edits.reloaded():
            service = evaluator()
        try:
            if share.leads and settings.retention_days and time.monotonic() >= retention_due:
                retention_due = time.monotonic() + RETENTION_EVERY
                retained = retention.apply_retention(
                    runtime.sessions, service.catalog, settings.retention_days
                )
                if retained.records:
                    log.info(retained.summary())
            started = time.monotonic()
            done = service.evaluate_pending(size.records)
            size.took(done, time.monotonic() - started)
            evaluated += done
            drained = not done and service.queue_empty()  # then the clock read next is final
            done += service.evaluate_released()
            if live:
                service.advance(datetime.now(UTC))
            else:  # what fell due in my shards by the clock other workers moved
                done += service.catch_up()
            runtime.heartbeat()
        except DATABASE_DOWN as exc:
            outage.wait(exc)
            continue
        outage.rounds = 0
        if once and drained and not done:
            break
        if not done:
            stop.wait(interval)
    return evaluated


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
    (each is one transaction), so it is simply tried again. A stop cuts the wait short."""

    def __init__(self, stop: threading.Event) -> None:
        self.rounds = 0
        self.stop = stop

    def wait(self, exc: Exception) -> None:
        self.rounds += 1
        log.warning("database unavailable (%s); retrying", str(exc).splitlines()[0])
        self.stop.wait(min(0.5 * 2**self.rounds, 10.0))


class _Edits:
    """Puts edits to the promise files in force without a restart; an invalid edit is
    logged and the running promises stay."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.files = files_fingerprint(runtime.settings.dir)

    def reloaded(self) -> bool:
        """Whether the files changed and ``runtime.catalog`` is now the edited catalog."""
        files = files_fingerprint(self.runtime.settings.dir)
        if files == self.files:
            return False
        self.files = files
        try:
            self.runtime.reload()
        except InvalidDefinition as exc:
            log.error(
                "promise files changed but are invalid; keeping the running promises:\n%s",
                "\n".join(exc.problems),
            )
            return False
        log.info("promise files changed: reloaded %d promises", len(self.runtime.catalog.promises))
        return True


def run_dispatcher(
    settings: Settings, *, interval: float, once: bool = False, stop: threading.Event | None = None
) -> int:
    """Deliver alerts until ``stop`` is set (or, with ``once``, until nothing is due), the
    round under way finished; returns how many deliveries were attempted."""
    stop = stop or threading.Event()
    runtime = Runtime.open(settings, quarantine_refused=True)
    dispatcher = Dispatcher(settings, runtime.catalog, runtime.sessions)
    edits = _Edits(runtime)
    attempted = 0
    log.info("dispatcher %d started", os.getpid())
    outage = _Outage(stop)
    try:
        while not stop.is_set():
            if edits.reloaded():
                dispatcher.catalog = runtime.catalog
            try:
                done = dispatcher.run_once()
            except DATABASE_DOWN as exc:
                outage.wait(exc)
                continue
            outage.rounds = 0
            attempted += done
            if once and not done:
                break
            if not done:
                stop.wait(interval)
    finally:
        dispatcher.close()
    return attempted


class Supervisor:
    """Keeps one background process (``promise worker`` or ``promise dispatcher``) running
    beside the HTTP server; restarts it if it dies.

    Each child gets a lifeline (:mod:`engine.lifeline`) and stops by itself once this
    process is gone, even by ``kill -9``; :func:`stop_all` stops the children of a server
    that is shutting down.
    """

    def __init__(self, command: str, *options: str) -> None:
        self.name = command
        self.command = [sys.executable, "-m", "api.cli.main", command, *options]
        self.process: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._lock = threading.RLock()  # no child is started once ``_stop`` is set
        self._thread = threading.Thread(
            target=self._watch, name=f"{command}-supervisor", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def _watch(self) -> None:
        backoff = 0.5
        while True:
            with self._lock:
                if self._stop.is_set():
                    return
                read, write = open_lifeline()
                try:
                    self.process = subprocess.Popen(
                        [*self.command, "--lifeline", str(read)], pass_fds=(read,)
                    )
                except OSError:
                    os.close(write)
                    raise
                finally:
                    os.close(read)
            started = time.monotonic()
            try:
                self.process.wait()
            finally:
                os.close(write)
            if self._stop.is_set():
                return
            log.warning("%s exited with %s; restarting", self.name, self.process.returncode)
            backoff = 0.5 if time.monotonic() - started > 30 else min(backoff * 2, 10)
            self._stop.wait(backoff)

    def terminate(self) -> None:
        """Start no new child, and ask the running one to stop (SIGTERM: it finishes its
        round). Only once: a second SIGTERM would end it at once."""
        with self._lock:
            if self._stop.is_set():
                return
            self._stop.set()
            if self.process and self.process.poll() is None:
                self.process.terminate()

    def join(self, deadline: float) -> None:
        """Wait until the child has stopped, and kill it if it still runs at ``deadline``
        (``time.monotonic``)."""
        if self._thread.ident is None:  # never started
            return
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            log.warning("%s did not stop within the grace period; killing it", self.name)
            with self._lock:
                if self.process:
                    self.process.kill()
            self._thread.join()


def stop_all(supervisors: list[Supervisor], grace: float) -> None:
    """Stop every supervised child at once, within ``grace`` seconds in all."""
    deadline = time.monotonic() + grace
    for supervisor in supervisors:
        supervisor.terminate()
    for supervisor in supervisors:
        supervisor.join(deadline)
