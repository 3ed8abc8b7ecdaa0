"""The step registry: each step is a regular expression over the step text, a template a
reader can copy, and a function of the scenario's world.

Two runners use it: ``promise test`` (``engine.authoring.run``) and pytest-bdd
(``features/conftest.py``). A step function takes the world, the pattern's named groups and
the step's data table (or ``None``); it raises :class:`Mismatch` when the engine decided
otherwise than the step expects, and ``ValueError`` when the step itself cannot be read.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass

from engine.authoring.world import World

Table = list[list[str]]
StepFunction = Callable[[World, dict[str, str | None], Table | None], None]


class Mismatch(AssertionError):
    """The engine decided otherwise: what the step expected beside what the engine decided."""

    def __init__(self, expected: str, actual: str) -> None:
        self.expected, self.actual = expected, actual
        super().__init__(side_by_side(expected, actual))


def side_by_side(expected: str, actual: str) -> str:
    """Two texts in two columns under ``expected`` and ``the engine decided`` (``||``
    between them: tables in either column have single bars)."""
    left, right = expected.splitlines() or [""], actual.splitlines() or [""]
    width = max(len("expected"), *map(len, left))
    rows = [f"{'expected':<{width}}  ||  the engine decided", f"{'-' * width}--++--{'-' * 18}"]
    for i in range(max(len(left), len(right))):
        a = left[i] if i < len(left) else ""
        b = right[i] if i < len(right) else ""
        rows.append(f"{a:<{width}}  ||  {b}".rstrip())
    return "\n".join(rows)


class UndefinedStep(LookupError):
    """No step of the library reads this text; ``suggestions`` are the nearest templates."""

    def __init__(self, text: str, suggestions: list[str]) -> None:
        self.text, self.suggestions = text, suggestions
        hint = "; did you mean: " + " | ".join(suggestions) if suggestions else ""
        super().__init__(f"undefined step: {text!r}{hint}")


@dataclass(frozen=True)
class StepDef:
    pattern: re.Pattern[str]
    template: str
    """How a reader writes it, e.g. ``the "<promise>" promise is <state> for "<who>"``."""
    function: StepFunction
    table: bool = False
    """Whether the step reads a data table (pytest-bdd passes one only when asked)."""


@dataclass
class Library:
    steps: list[StepDef]

    def step(
        self, pattern: str, template: str | None = None, *, table: bool = False
    ) -> Callable[[StepFunction], StepFunction]:
        """Register a step; its template is read off the pattern unless given."""

        def register(function: StepFunction) -> StepFunction:
            shown = template or template_of(pattern)
            self.steps.append(StepDef(re.compile(pattern), shown, function, table))
            return function

        return register

    def find(self, text: str) -> tuple[StepDef, dict[str, str | None]]:
        """The step that reads ``text`` in full, with its groups; else :class:`UndefinedStep`."""
        for definition in self.steps:
            found = definition.pattern.fullmatch(text)
            if found is not None:
                return definition, found.groupdict()
        raise UndefinedStep(text, self.nearest(text))

    def nearest(self, text: str, n: int = 3) -> list[str]:
        """The templates most like ``text`` (quoted values and moments count as placeholders)."""
        shape = _placeholders(text)
        scored = sorted(
            self.steps,
            key=lambda d: -difflib.SequenceMatcher(None, shape, _placeholders(d.template)).ratio(),
        )
        return [d.template for d in scored[:n]]


def template_of(pattern: str) -> str:
    """A pattern as a reader writes it: ``(?P<who>...)`` is ``<who>``, an optional part is
    left out, and of alternatives the first is shown."""
    text = re.sub(r"\(\?P<(\w+)>[^()]*\)", r"<\1>", pattern)
    text = re.sub(r"\(\?:[^()]*\)\?", "", text)
    text = re.sub(r"\(\?:([^|()]*)\|[^()]*\)", r"\1", text)
    return text.replace("\\", "")


_MOMENT = re.compile(r"[A-Za-z]+ \d{4}-\d{2}-\d{2}(?: \d{2}:\d{2})?(?: [A-Za-z_/+:\-\d]+)?$")


def _placeholders(text: str) -> str:
    """``"C-1"`` and ``"<who>"`` alike become ``"_"``; a trailing moment becomes ``<when>``."""
    text = re.sub(r'"[^"]*"', '"_"', text)
    return _MOMENT.sub("<when>", text)
