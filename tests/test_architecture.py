"""The import rules of docs/ARCHITECTURE.md, checked on every module (imports inside
functions included): data flows ``rules -> engine -> api``, each room of ``engine/`` uses
only the rooms below it, ``api/`` never reaches around ``engine/`` into the database, and
durable-rules is imported in one module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rules", "engine", "api")
RULES_CORE = "engine.evaluation.rules_core"

BASE = {
    "engine.clock",
    "engine.settings",
    "engine.errors",
    "engine.outcomes",
    "engine.records",
    "engine.spreadsheet",
    "engine.lifeline",
    "engine.explain",
    "engine.shards",
    "engine.collector",
}
"""Plain values every room may use: time, settings, errors, outcomes, records, the one CSV
writer, the lifeline that ties a child process to its parent, the one wording of an
outcome in plain words (reports, alerts and the dashboard say it alike), the shards
that split the scopes between workers, and the garbage collector's setting for bulk work."""

ROOMS_BELOW: dict[str, set[str]] = {
    "engine.storage": set(),
    "engine.evaluation": {"engine.storage"},
    "engine.ingest": {"engine.storage"},
    "engine.alerting": {"engine.storage"},
    "engine.privacy": {"engine.storage"},
    "engine.keys": {"engine.storage"},
    "engine.docs": set(),
    "engine.authoring": {"engine.docs", "engine.service", "engine.storage", "engine.alerting"},
    "engine.reading": {"engine.storage", "engine.evaluation", "engine.alerting"},
    "engine.sandbox": {"engine.storage", "engine.evaluation", "engine.ingest", "engine.runtime"},
    "engine.runtime": {"engine.storage", "engine.evaluation"},
    "engine.service": {
        "engine.storage",
        "engine.evaluation",
        "engine.ingest",
        "engine.alerting",
        "engine.privacy",
    },
}
"""What each room of ``engine/`` may import besides ``rules/`` and BASE. The sandbox's child
process boots through ``engine.runtime`` like every other process."""


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = modules()


def imports(path: Path) -> set[str]:
    """Every absolute module an import in ``path`` names (``from a import b`` gives ``a.b``
    when that is a module, else ``a``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                names.add(full if full in MODULES else node.module)
    return names


def room(module: str) -> str:
    """``engine.storage.schema`` -> ``engine.storage``; top-level modules are their own room."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "engine" and len(parts) > 1 else parts[0]


def test_every_room_of_engine_has_its_rule() -> None:
    assert RULES_CORE in MODULES
    assert {room(m) for m in MODULES if m.startswith("engine.")} == set(ROOMS_BELOW) | BASE


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_architecture(module: str) -> None:
    problems = []
    for target in sorted(imports(MODULES[module])):
        top = target.split(".")[0]
        if top == "durable" and module != RULES_CORE:
            problems.append(f"imports {target}: only {RULES_CORE} may use durable-rules")
        if module.startswith("rules") and top in ("engine", "api"):
            problems.append(f"imports {target}: rules/ is a pure compiler")
        if module.startswith("engine") and top == "api":
            problems.append(f"imports {target}: engine/ never imports api/")
        if module.startswith("api") and room(target) == "engine.storage":
            problems.append(f"imports {target}: api/ asks engine/, never its tables")
        if module.startswith("engine") and top == "engine":
            here, there = room(module), room(target)
            allowed = ROOMS_BELOW.get(here)
            if allowed is not None and there != here and there not in allowed | BASE:
                problems.append(f"imports {target}: {here} may use only {sorted(allowed)}")
            if here in BASE and there not in BASE:
                problems.append(f"imports {target}: {here} is a base module, below every room")
    assert not problems, f"{module}: " + "; ".join(problems)
