"""Evaluations that store nothing (pre-flight checks) run in a child process.

durable-rules can crash the process it runs in; the HTTP service must survive that, so
such work goes to a one-process pool that is replaced if it dies.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from engine.errors import InvalidDefinition, Unavailable
from engine.settings import Settings
from rules.errors import DefinitionError


class SandboxCrashed(Unavailable):
    """The evaluation process died (e.g. a segfault in the rules core); try again."""


class Sandbox:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn")
                )
            return self._pool

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

    def _run(self, job: Any, *args: Any) -> Any:
        try:
            return self._executor().submit(job, *args).result()
        except BrokenProcessPool:
            with self._lock:
                self._pool = None
            raise SandboxCrashed(
                "the evaluation process died; the request can be retried"
            ) from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)


_cached: dict[str, Any] = {}


def _loaded(settings: dict[str, Any], catalog: str) -> tuple[Any, Any]:
    """The catalog and sessions in the child, loaded once per catalog in force (the parent
    has migrated the database)."""
    from engine.runtime import Runtime

    key = repr((sorted(settings.items()), catalog))
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
