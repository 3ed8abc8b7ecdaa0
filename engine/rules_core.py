"""The only module that touches durable-rules: a Host driven synchronously, firings returned.

durable-rules runs actions from a background thread, swallows their exceptions and can
segfault when states are deleted under that thread (see durable-rules-notes.md). Here the
background dispatch is disabled and every call returns the rule firings it caused, so the
engine stays in charge of order and errors.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from durable import engine as durable_engine

from rules.compiler import CompiledPromise

Fact = dict[str, Any]


@dataclass(frozen=True)
class Firing:
    """One rule that fired: its ruleset, its rule name and the facts bound to each alias."""

    ruleset: str
    rule: str
    facts: dict[str, Fact]


class DuplicateFact(Exception):
    """durable-rules already holds a fact with this id in this session."""


class _SynchronousHost(durable_engine.Host):
    def __init__(self, core: RulesCore) -> None:
        self._core = core
        super().__init__()

    def _run(self) -> None:
        """No dispatch thread: actions run inside the call that triggered them."""

    def get_action(self, action_name: str):
        return self._core._action(action_name)


class RulesCore:
    """One Host holding the compiled rulesets; use from one thread only."""

    def __init__(self) -> None:
        self._aliases: dict[str, list[str]] = {}
        self._fired: list[Firing] = []
        self._errors: list[BaseException] = []
        self._host = _SynchronousHost(self)

    def register(self, compiled: CompiledPromise) -> None:
        for rule in compiled.rules.values():
            self._aliases[rule["run"]] = [next(iter(p)) for p in rule["all"]]
        # register_rulesets mutates its argument.
        self._host.register_rulesets({compiled.name: copy.deepcopy(compiled.rules)})

    def is_registered(self, name: str) -> bool:
        return name in self._host._ruleset_directory

    def assert_fact(self, ruleset: str, fact: Fact) -> list[Firing] | None:
        """The firings caused, or None when no rule wants the fact: it is then not held,
        and must not be retracted (retracting a fact that was never held corrupts
        durable-rules' memory and crashes a later, unrelated call)."""
        return self._call(self._host.assert_fact, ruleset, fact)

    def retract_fact(self, ruleset: str, fact: Fact) -> None:
        self._call(self._host.retract_fact, ruleset, fact)

    def delete_session(self, ruleset: str, sid: str) -> None:
        """Forget everything held for ``sid``, freeing one of the ruleset's ~1,024 slots."""
        self._host.delete_state(ruleset, sid)

    def _call(self, method, ruleset: str, payload: Any) -> list[Firing] | None:
        self._fired, self._errors = [], []
        try:
            method(ruleset, payload)
        except durable_engine.MessageNotHandledException:
            return None
        except durable_engine.MessageObservedException:
            raise DuplicateFact(f"{ruleset}: fact already held: {payload!r}") from None
        if self._errors:
            raise self._errors[0]
        return self._fired

    def _action(self, action_name: str):
        ruleset, _, rule = action_name.rpartition(":")
        aliases = self._aliases[action_name]

        def action(closure: Any) -> None:
            try:
                facts = {alias: dict(getattr(closure, alias)._d) for alias in aliases}
                self._fired.append(Firing(ruleset, rule, facts))
            except BaseException as exc:  # durable-rules would swallow it
                self._errors.append(exc)

        return action
