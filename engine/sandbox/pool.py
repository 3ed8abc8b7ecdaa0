"""Evaluations that store nothing (pre-flight checks, backtests, what a customer already
gave) run in child processes, each request in one child, under limits.

durable-rules can crash the process it runs in, and a draft or a long history can make an
evaluation slow or large; the HTTP service must survive all of that and stay responsive.
So the sandbox keeps a small pool of children (``PROMISE_SANDBOX_PROCESSES``), started on
demand and each used by one request at a time: a request that finds them all busy is
refused at once (503 with Retry-After) rather than queued behind a slow backtest. Each
request has a time limit (``PROMISE_SANDBOX_TIMEOUT_SECONDS``): its child is then killed
and the request refused; the next request starts a fresh child. Each child's address space
is limited (``PROMISE_SANDBOX_MEMORY_MB``, RLIMIT_AS), so a runaway evaluation fails with
MemoryError in the child and that child is replaced. The children die with the server
(:mod:`engine.lifeline`).
"""

from __future__ import annotations

import math
import multiprocessing
import resource
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from engine.errors import InvalidDefinition, Unavailable
from engine.lifeline import die_with_parent
from engine.settings import Settings
from rules.errors import DefinitionError

STARTUP_SECONDS = 60.0
"""How long a new child may take to start (import the engine, load the catalog), apart from
the limit of the request that waits for it."""


class SandboxCrashed(Unavailable):
    """The evaluation process died (e.g. a segfault in the rules core); try again."""

    retry_after = 1


class SandboxBusy(Unavailable):
    """Every evaluation process is busy with another request."""

    retry_after = 1


class SandboxLimit(Unavailable):
    """The evaluation took longer, or needed more memory, than the sandbox allows."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Sandbox:
    """The pool of evaluation processes; thread-safe (each request runs in its own thread)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._slots = threading.BoundedSemaphore(settings.sandbox_processes)
        self._idle: list[_Child] = []
        self._lock = threading.Lock()
        self._closed = False

    def preflight(self, raw_record: dict[str, Any], catalog: str) -> list[dict[str, Any]]:
        """``catalog`` names the catalog in force (it changes on reload)."""
        return self._run(_preflight_job, self._settings(), catalog, raw_record)

    def given(self, customer_id: str, catalog: str) -> list[dict[str, Any]]:
        """What the customer already gave (Ask Once ``first`` records still in their window)."""
        return self._run(_given_job, self._settings(), catalog, customer_id)

    def backtest(self, draft_yaml: str) -> dict[str, Any]:
        """Run a draft over the stored history; InvalidDefinition if the draft is invalid."""
        try:
            return self._run(_backtest_job, self._settings(), draft_yaml)
        except DefinitionError as exc:
            raise InvalidDefinition("the draft promise is invalid", exc.problems) from exc

    def _settings(self) -> dict[str, Any]:
        return self.settings.model_dump(mode="json")

    def _run(self, job: Callable[..., Any], *args: Any) -> Any:
        limit = self.settings.sandbox_timeout_seconds
        if not self._slots.acquire(blocking=False):
            raise SandboxBusy(
                f"all {self.settings.sandbox_processes} evaluation processes are busy; "
                "try again shortly"
            )
        child = None
        try:
            with self._lock:
                child = self._idle.pop() if self._idle else None
            child = child or _Child(self._settings(), self.settings.sandbox_memory_mb)
            return child.run(job, args, limit)
        except _Stopped as stopped:
            child = None  # killed: the next request starts a fresh one
            raise stopped.answer(self.settings) from None
        finally:
            if child is not None:
                with self._lock:
                    if self._closed:
                        child.kill()
                    else:
                        self._idle.append(child)
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for child in idle:
            child.kill()


class _Stopped(Exception):
    """A child was killed or died; ``answer`` is what the request is told."""

    def __init__(self, why: str) -> None:
        self.why = why

    def answer(self, settings: Settings) -> Unavailable:
        again = math.ceil(settings.sandbox_timeout_seconds)  # a slot is free by then
        if self.why == "timeout":
            return SandboxLimit(
                f"the evaluation took longer than {settings.sandbox_timeout_seconds:g} s and "
                "was stopped; try a narrower request, or again later",
                again,
            )
        if self.why == "memory":
            return SandboxLimit(
                f"the evaluation needed more than {settings.sandbox_memory_mb} MiB and was "
                "stopped; try a narrower request, or again later",
                again,
            )
        return SandboxCrashed("the evaluation process died; the request can be retried")


class _Child:
    """One evaluation process and the pipe it takes jobs on (one at a time)."""

    def __init__(self, settings: dict[str, Any], memory_mb: int | None) -> None:
        context = multiprocessing.get_context("spawn")
        self.jobs, theirs = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(theirs, settings, memory_mb), name="promise-sandbox", daemon=True
        )
        self.process.start()
        theirs.close()
        self.ready = False

    def run(self, job: Callable[..., Any], args: tuple[Any, ...], limit: float) -> Any:
        """``job(*args)`` in the child within ``limit`` seconds; its exception re-raised."""
        try:
            if not self.ready:
                self._start(STARTUP_SECONDS)
            self.jobs.send((job, args))
            ok, value = self._receive(limit)
        except (EOFError, OSError):
            self.kill()
            raise _Stopped("died") from None
        if ok:
            return value
        if isinstance(value, MemoryError):  # its heap may be in any state: start afresh
            self.kill()
            raise _Stopped("memory")
        raise value

    def _start(self, limit: float) -> None:
        """Wait until the child has loaded the engine and the catalog (not counted in a
        request's limit: on a busy machine that alone can take seconds)."""
        try:
            self._receive(limit)
        except _Stopped:
            raise _Stopped("died") from None
        self.ready = True

    def _receive(self, limit: float) -> Any:
        if not self.jobs.poll(limit):
            self.kill()
            raise _Stopped("timeout")
        return self.jobs.recv()

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.jobs.close()


def _serve(jobs: Connection, settings: dict[str, Any], memory_mb: int | None) -> None:
    """The child: limit its memory, load the engine and the catalog, then run jobs until the
    pipe closes. Its parent decides when it ends: a Ctrl-C meant for the server is ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        die_with_parent(parent.sentinel, grace=0.0)
    if memory_mb is not None:
        size = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    import engine.sandbox.backtest
    import engine.sandbox.preflight  # noqa: F401  (imported before the first request's clock)
    from engine.runtime import Runtime

    try:  # the catalog the first request will most likely name (see _loaded)
        _cached.update(key=None, runtime=Runtime.open(Settings(**settings), migrated=False))
    except Exception:  # e.g. files edited into an invalid state: the first request says so
        _cached.clear()
    jobs.send(True)
    while True:
        try:
            job, args = jobs.recv()
        except EOFError:
            return
        try:
            answer = (True, job(*args))
        except Exception as exc:  # MemoryError included: the parent decides
            answer = (False, exc)
        try:
            jobs.send(answer)
        except Exception as exc:  # an answer or exception that does not pickle
            jobs.send((False, RuntimeError(f"the evaluation's answer could not be sent: {exc}")))


_cached: dict[str, Any] = {}


def _loaded(settings: dict[str, Any], catalog: str) -> tuple[Any, Any]:
    """The catalog and sessions in the child, loaded once per catalog in force (the parent
    has migrated the database). The first request takes the catalog loaded at the child's
    start: both come from the files as they are, as a load here would."""
    from engine.runtime import Runtime

    key = repr((sorted(settings.items()), catalog))
    if _cached.get("runtime") and _cached["key"] is None:
        _cached["key"] = key
    if _cached.get("key") != key:
        _cached.update(key=key, runtime=Runtime.open(Settings(**settings), migrated=False))
    return _cached["runtime"].catalog, _cached["runtime"].sessions


def _preflight_job(
    settings: dict[str, Any], catalog: str, raw_record: dict[str, Any]
) -> list[dict[str, Any]]:
    from engine.records import RecordLimits, parse_record
    from engine.sandbox.preflight import as_json, would_break

    record = parse_record(raw_record, RecordLimits.from_settings(Settings(**settings)))
    if isinstance(record, list):  # validated by the caller; kept as a guard
        raise ValueError("; ".join(map(str, record)))
    return as_json(would_break(*_loaded(settings, catalog), record))


def _given_job(settings: dict[str, Any], catalog: str, customer_id: str) -> list[dict[str, Any]]:
    from engine.sandbox.preflight import already_given, as_json

    return as_json(already_given(*_loaded(settings, catalog), customer_id))


def _backtest_job(settings: dict[str, Any], draft_yaml: str) -> dict[str, Any]:
    from dataclasses import asdict

    from engine.runtime import connect
    from engine.sandbox.backtest import backtest, load_draft

    config = Settings(**settings)
    draft = load_draft(config.dir, draft_yaml)  # DefinitionError pickles back to the caller
    _, sessions = connect(config.database_url, migrated=False)
    return asdict(backtest(draft, sessions))
