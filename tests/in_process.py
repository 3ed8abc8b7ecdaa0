"""``promise`` commands run in the test's own process, through typer's runner over the
``promise`` app, as the shell would call them: a new process would spend seconds importing
the command line before doing anything. tests/test_cli.py runs the real process.

The runner gives the command its own stdin, stdout and stderr and puts the environment back
afterwards. Commands do not close their database engines (their process would end), so
the engines they left are collected here, which closes their connections.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

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
    with contextlib.chdir(cwd):
        done = CliRunner(env=env).invoke(app, list(args), catch_exceptions=False)
    gc.collect()
    return Ran(done.exit_code, done.stdout, done.stderr)
