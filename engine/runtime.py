"""How every process starts: connect to the database, bring its schema up to date, load the
promise catalog.

The HTTP service, the worker, the dispatcher, the sandbox's child process and the ``promise``
commands all start here, so a change to how the engine starts (a pool option, a migration
step) is made once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import InvalidDefinition
from engine.evaluation import quarantine
from engine.evaluation.core_check import core_problems
from engine.settings import Settings
from engine.storage import state_table
from engine.storage.database import make_engine, migrate, session_factory
from engine.storage.state_table import WORKER
from rules.errors import DefinitionError
from rules.loader import check_directory
from rules.models import Catalog


def connect(url: str, *, migrated: bool = True) -> tuple[Engine, sessionmaker[Session]]:
    """The database at ``url`` and its sessions, its schema brought to the newest revision
    first (safe at every start). ``migrated=False`` is for a child of a process that did."""
    db = make_engine(url)
    if migrated:
        migrate(db)
    return db, session_factory(db)


@dataclass
class Runtime:
    """A migrated database and the catalog in force: what a process runs on."""

    settings: Settings
    db: Engine
    sessions: sessionmaker[Session]
    catalog: Catalog
    quarantine_refused: bool = False
    """Whether a promise the rules core cannot run is quarantined (the others run) rather
    than the catalog refused: for the background processes, which a catalog must never
    make crash-loop."""

    @classmethod
    def open(
        cls, settings: Settings, *, migrated: bool = True, quarantine_refused: bool = False
    ) -> Runtime:
        """Connect, migrate and load ``settings.dir``; DefinitionError if it is invalid
        (:meth:`load`)."""
        db, sessions = connect(settings.database_url, migrated=migrated)
        runtime = cls(settings, db, sessions, Catalog({}, {}, {}), quarantine_refused)
        runtime.catalog = runtime.load()
        return runtime

    def load(self) -> Catalog:
        """The catalog in ``settings.dir``, as ``promise check`` accepts it; DefinitionError
        lists every problem. A promise the rules core cannot run is a problem too, unless
        ``quarantine_refused``: then it is quarantined, with the problems as the reason."""
        result = check_directory(self.settings.dir)
        if result.catalog is None:
            raise DefinitionError(result.errors)
        refused = core_problems(result.catalog)
        if refused and not self.quarantine_refused:
            raise DefinitionError([p for problems in refused.values() for p in problems])
        if refused:
            with self.sessions.begin() as session:
                for pid, problems in refused.items():
                    reason = "the rules core cannot run it: " + "; ".join(map(str, problems))
                    quarantine.put(session, result.catalog.promises[pid], reason)
        return result.catalog

    def reload(self) -> list[str]:
        """Load the catalog again and put it in force; returns the ids of promises that
        changed (a new version) or appeared. An invalid catalog raises InvalidDefinition
        and the one in force stays."""
        try:
            catalog = self.load()
        except DefinitionError as exc:
            raise InvalidDefinition(
                "the promise catalog is invalid; the running promises stay in force",
                exc.problems,
            ) from None
        before = {pid: p.version for pid, p in self.catalog.promises.items()}
        self.catalog = catalog
        return sorted(pid for pid, p in catalog.promises.items() if before.get(pid) != p.version)

    def heartbeat(self) -> None:
        """Record that a worker is alive now (``GET /readyz`` reports when it last was)."""
        with self.sessions.begin() as session:
            state_table.beat(session, WORKER)
