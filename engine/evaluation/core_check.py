"""Whether the rules core can run each promise, found by compiling it there in a child process.

durable-rules refuses some rulesets that ``rules/`` accepts (a pattern whose automaton
outgrows its fixed tables, such as ``[ab]*a[ab]{10}``) and crashes on others (groups nested
about 150 deep), and only the core itself can tell which. So every catalog is compiled in
the core before it is put in force: by ``promise check``, every process that loads the
catalog, a reload, a draft backtest. It is done in a child process, so that a crash is a
problem to report, not the end of the process that asked. A refused promise is reported at
each condition the core refuses on its own, else at its ``kind``.

Answers are kept per compiled ruleset for the life of the process: loading an unchanged
catalog again starts no child.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from engine.evaluation import rules_core
from rules.compiler import compile_promise, record_pattern
from rules.errors import Problem
from rules.loader import CheckResult, check_directory, problem_at
from rules.matches import condition_location
from rules.models import Catalog, Condition, Match, Matches, Promise, roles

CRASHED = "compiling it crashes the core's process"
_ANSWERS: dict[str, str | None] = {}
"""Each ruleset compiled so far (as JSON) and the core's refusal, or None."""
_TOO_LARGE = {"502", "503", "504", "505", "506"}
"""durable-rules' regex.c errors for an automaton larger than its fixed tables."""


def check_catalog(directory: Path) -> CheckResult:
    """:func:`rules.loader.check_directory`, and the rules core's problems with it: what
    ``promise check`` and every catalog load accept."""
    result = check_directory(directory)
    if result.catalog is None:
        return result
    refused = core_problems(result.catalog)
    if not refused:
        return result
    found = [problem for problems in refused.values() for problem in problems]
    return CheckResult(None, sorted([*result.problems, *found]))


def core_problems(catalog: Catalog) -> dict[str, list[Problem]]:
    """The problems of each promise in ``catalog`` that the rules core cannot run, by id."""
    child = _Child()
    try:
        found = {pid: _problems(promise, child) for pid, promise in catalog.promises.items()}
    finally:
        child.close()
    return {pid: problems for pid, problems in found.items() if problems}


def _problems(promise: Promise, child: _Child) -> list[Problem]:
    reason = child.refusal(compile_promise(promise).rules)
    if reason is None:
        return []
    refused = [
        problem_at(promise, (role, field, *condition_location(condition)), _explain(condition, why))
        for role, match in roles(promise).items()
        for field, condition in match.conditions
        if (why := child.refusal(_alone(field, condition))) is not None
    ]
    return refused or [
        problem_at(promise, ("kind",), f"the rules core cannot run this promise: {_why(reason)}")
    ]


def _alone(field: str, condition: Condition) -> dict[str, Any]:
    """A ruleset of one rule holding ``condition`` alone."""
    pattern = record_pattern(Match(((field, condition),)))
    return {"alone": {"all": [{"r": pattern}], "run": "probe:alone"}}


def _explain(condition: Condition, refusal: str) -> str:
    if isinstance(condition, Matches):
        return (
            f"the rules core cannot compile the pattern {condition.source!r}: {_why(refusal)}; "
            "write a simpler one (fewer or shorter repetitions after a '*' or '+', less nesting)"
        )
    return f"the rules core cannot run this condition: {_why(refusal)}"


def _why(refusal: str) -> str:
    code = re.search(r"error code: (\d+)", refusal)
    if code and code[1] in _TOO_LARGE:
        return f"its automaton outgrows the core's fixed tables (durable-rules error {code[1]})"
    return refusal


class _Child:
    """A process that asks the rules core about one ruleset at a time (a JSON line in, the
    answer out), started when first needed and replaced when a ruleset crashes it.

    A plain ``python -m`` of the rules core module rather than multiprocessing, whose
    spawned child would import the parent's main module (the whole ``promise`` command)."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None

    def refusal(self, rules: dict[str, Any]) -> str | None:
        key = json.dumps(rules, sort_keys=True)
        if key not in _ANSWERS:
            _ANSWERS[key] = self._ask(key)
        return _ANSWERS[key]

    def _ask(self, line: str) -> str | None:
        process = self._process or self._start()
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(line + "\n")
            process.stdin.flush()
            answer = process.stdout.readline()
        except BrokenPipeError:
            answer = ""
        if not answer:  # it died on this ruleset
            self.close()
            return CRASHED
        return json.loads(answer)

    def _start(self) -> subprocess.Popen[str]:
        with tempfile.TemporaryFile("w+") as errors:
            # The child imports this very code, wherever the parent found it.
            here = str(Path(rules_core.__file__).parents[2])
            path = os.pathsep.join(filter(None, (here, os.environ.get("PYTHONPATH"))))
            process = subprocess.Popen(
                [sys.executable, "-m", rules_core.__name__],
                env={**os.environ, "PYTHONPATH": path},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
            assert process.stdout is not None
            if process.stdout.readline() != f"{rules_core.READY}\n":
                process.kill()
                errors.seek(0)
                raise RuntimeError(f"the rules core check could not start: {errors.read()}")
        self._process = process
        return process

    def close(self) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            self._process.wait()
            self._process = None
