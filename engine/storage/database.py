"""Database connections and schema migrations (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str, **options: Any) -> Engine:
    """An engine for ``url``; SQLite files get WAL, foreign keys and a busy timeout.

    A plain ``postgresql://`` URL uses psycopg 3, the driver this project installs.
    """
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        options.setdefault("connect_args", {"timeout": 30})
        engine = create_engine(url, **options)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # Deleted rows are overwritten with zeros, not left in free pages: an erased
            # customer's data must not survive in the file (engine.privacy.erasure).
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        return engine
    # psycopg prepares a statement after five runs and PostgreSQL may then use a generic
    # plan: the idempotency lookup (id IN (...500 ids)) fell to a sequential scan and bulk
    # loads slowed from ~5,000 to ~250 records/s at 40k rows. Plan every query afresh.
    options.setdefault("connect_args", {}).setdefault("prepare_threshold", None)
    return create_engine(url, pool_pre_ping=True, **options)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe to run at every start."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def checkpoint(session: Session) -> None:
    """On SQLite, copy the write-ahead log into the database file and empty it: until then
    the ``-wal`` file keeps the pages as they were before a delete (erased data included).
    Waits for readers of older snapshots (the busy timeout); a no-op on other databases."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
