"""One error family for the promise language, split by when a problem is found.

Definition problems are found while loading YAML and always carry a file and line,
so a rule author can jump straight to the offending key or value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong (or worth a warning) in a definition file."""

    file: Path
    line: int
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}: {prefix}{self.message}"


class PromiseError(Exception):
    """Base of every error the promise language raises."""


class DefinitionError(PromiseError):
    """The catalog cannot be loaded; every problem found is listed, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __reduce__(self) -> tuple[type[DefinitionError], tuple[list[Problem]]]:
        # Rebuilt from the problems, not the message, when it crosses a process boundary.
        return (DefinitionError, (self.problems,))
