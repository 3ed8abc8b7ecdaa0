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
from engine.settings import Settings
from engine.storage import state_table
from engine.storage.database import make_engine, migrate, session_factory
from engine.storage.state_table import WORKER
from rules.loader import check_directory, load_catalog
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

    @classmethod
    def open(cls, settings: Settings, *, migrated: bool = True) -> Runtime:
        """Connect, migrate and load ``settings.dir``; DefinitionError if it is invalid."""
        db, sessions = connect(settings.database_url, migrated=migrated)
        return cls(settings, db, sessions, load_catalog(settings.dir))

    def reload(self) -> list[str]:
        """Load the catalog again and put it in force; returns the ids of promises that
        changed (a new version) or appeared. An invalid catalog raises InvalidDefinition
        and the one in force stays."""
        result = check_directory(self.settings.dir)
        if result.catalog is None:
            raise InvalidDefinition(
                "the promise catalog is invalid; the running promises stay in force",
                result.errors,
            )
        before = {pid: p.version for pid, p in self.catalog.promises.items()}
        self.catalog = result.catalog
        return sorted(
            pid for pid, p in result.catalog.promises.items() if before.get(pid) != p.version
        )

    def heartbeat(self) -> None:
        """Record that a worker is alive now (``GET /readyz`` reports when it last was)."""
        with self.sessions.begin() as session:
            state_table.beat(session, WORKER)
