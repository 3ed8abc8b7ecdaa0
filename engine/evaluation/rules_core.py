"""The only module that touches durable-rules: rulesets driven synchronously, firings returned.

durable-rules runs actions from a background thread, swallows their exceptions and can
segfault when states are deleted under that thread (see durable-rules-notes.md). Here the
background dispatch is disabled and every call returns the rule firings it caused, so the
engine stays in charge of order and errors. See docs/durable-rules-findings.md for the
two memory-safety rules every caller relies on.
"""

from __future__ import annotations

import copy
import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import durable_rules_engine as _core
import orjson
from durable import engine as durable_engine

if TYPE_CHECKING:  # not imported at run time: the refusal server starts with durable alone
    from rules.compiler import CompiledPromise

Fact = dict[str, Any]


@dataclass(frozen=True)
class Firing:
    """One rule that fired: its ruleset, its rule name and the facts bound to each alias."""

    ruleset: str
    rule: str
    facts: dict[str, Fact]


# Result codes of durable-rules' assert/retract functions (see durable/engine.py).
_NOT_HANDLED, _OBSERVED, _QUEUED = 1, 2, 3


class DuplicateFact(Exception):
    """durable-rules already holds a fact with this id in this session."""


class _SynchronousHost(durable_engine.Host):
    """Used only to create and register rulesets; facts bypass its Python wrapper."""

    def _run(self) -> None:
        """No dispatch thread: nothing runs in the background."""

    def get_action(self, action_name: str):
        return _never_called


def _never_called(closure: Any) -> None:  # pragma: no cover - actions are read, not run
    raise AssertionError("durable-rules tried to run an action through its own dispatcher")


def refusal(rules: dict[str, Any]) -> str | None:
    """Why durable-rules will not create a ruleset of ``rules``, or None when it does.

    It refuses some rulesets the compiler writes (a pattern whose automaton outgrows its
    fixed tables) and crashes on others (groups nested ~150 deep): call this only in a
    process that may die (engine/evaluation/core_check.py).
    """
    try:
        _SynchronousHost().register_rulesets({"probe": copy.deepcopy(rules)})
    except Exception as exc:  # durable-rules raises bare Exceptions with an error code
        return str(exc)
    return None


READY = "ready"


def serve_refusals() -> None:
    """A child process's loop (``python -m engine.evaluation.rules_core``): ``READY``, then
    the :func:`refusal` of each ruleset read from stdin, one JSON line each."""
    print(READY, flush=True)
    for line in sys.stdin:
        print(json.dumps(refusal(json.loads(line))), flush=True)


class RulesCore:
    """One Host holding the compiled rulesets; use from one thread only.

    Facts go straight to durable-rules' C functions, serialised with orjson, and the
    actions they trigger are read and completed in the same call: the library's own
    Python wrapper spent most of the time in json and per-action closures.
    """

    def __init__(self) -> None:
        self._handles: dict[str, int] = {}
        self._host = _SynchronousHost()

    def register(self, compiled: CompiledPromise) -> None:
        # register_rulesets mutates its argument.
        self._host.register_rulesets({compiled.name: copy.deepcopy(compiled.rules)})
        self._handles[compiled.name] = self._host.get_ruleset(compiled.name)._handle

    def is_registered(self, name: str) -> bool:
        return name in self._handles

    def assert_fact(self, ruleset: str, fact: Fact) -> list[Firing] | None:
        """The firings caused, or None when no rule wants the fact: it is then not held,
        and must not be retracted (retracting a fact that was never held corrupts
        durable-rules' memory and crashes a later, unrelated call)."""
        return self._call(_core.assert_fact, ruleset, fact)

    def retract_fact(self, ruleset: str, fact: Fact) -> None:
        self._call(_core.retract_fact, ruleset, fact)

    def _call(self, function: Any, ruleset: str, fact: Fact) -> list[Firing] | None:
        handle = self._handles[ruleset]
        code, state = function(handle, orjson.dumps(fact).decode())
        if code == _NOT_HANDLED:
            return None
        if code == _OBSERVED:
            raise DuplicateFact(f"{ruleset}: fact already held: {fact!r}")
        firings: list[Firing] = []
        if code == _QUEUED:
            return firings
        started = _core.start_action_for_state(handle, state)
        message = started[1] if started else None
        while message:
            ((action, facts),) = orjson.loads(message).items()
            firings.append(Firing(ruleset, action.rpartition(":")[2], facts))
            message = _core.complete_and_start_action(handle, state)
        return firings


if __name__ == "__main__":
    serve_refusals()
