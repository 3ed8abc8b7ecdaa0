"""Empty, migrated databases for tests and for each example of a property test.

Running the migrations takes about 0.25 s, and the suite needs thousands of empty SQLite
databases: each is a copy of one database migrated once per process (a template file in
that process's own temporary folder, so pytest-xdist's workers never share one). PostgreSQL
tests share their run's database, emptied between uses.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import Engine

from engine.storage.database import make_engine, migrate
from engine.storage.schema import Base


def sqlite_copy(template: Path, path: Path) -> Engine:
    """An engine on a new database at ``path``: a copy of ``template``, which is migrated
    on first use (built under another name, so that a failed migration leaves none)."""
    if not template.exists():
        building = template.with_name(f"{template.name}.building")
        blank = make_engine(f"sqlite:///{building}")
        migrate(blank)
        blank.dispose()  # the last connection gone, SQLite folds its WAL into the file
        building.replace(template)
    shutil.copy(template, path)
    return make_engine(f"sqlite:///{path}")


def empty(engine: Engine) -> None:
    """Delete every row of every table (children first), keeping the schema."""
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
