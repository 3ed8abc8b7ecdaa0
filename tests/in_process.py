"""``promise`` commands run in the test's own process, through typer's runner over the
``promise`` app, as the shell would call them: a new process would spend a second or more
importing the command line before doing anything. tests/test_cli.py runs the real process.

The runner gives the command its own stdin, stdout and stderr and puts the environment back
afterwards. A command leaves its database engines open (its process would end), so the
engines it used are disposed of here: their connections close now, not whenever the garbage
collector finds them.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, event
from typer.testing import CliRunner

from api.cli.main import app


@dataclass(frozen=True)
class Ran:
    """What a command did, named as ``subprocess.CompletedProcess`` names it."""

    returncode: int
    stdout: str
    stderr: str


def promise(*args: str, cwd: Path, env: Mapping[str, str | None]) -> Ran:
    """``promise ARGS`` run in ``cwd`` with ``env`` set (``None`` unsets a variable); an
    exception other than an exit fails the test, as a traceback would."""
    with contextlib.chdir(cwd), _engines_disposed():
        done = CliRunner(env=env).invoke(app, list(args), catch_exceptions=False)
    return Ran(done.exit_code, done.stdout, done.stderr)


@contextlib.contextmanager
def _engines_disposed() -> Iterator[None]:
    """Closes the pooled connections of every engine that connected meanwhile."""
    used: weakref.WeakSet[Engine] = weakref.WeakSet()

    def note(connection: Connection) -> None:
        used.add(connection.engine)

    event.listen(Engine, "engine_connect", note)
    try:
        yield
    finally:
        event.remove(Engine, "engine_connect", note)
        for engine in list(used):
            engine.dispose()
