"""The results of the last feature run, read from the Cucumber JSON that
``promise test --cucumber-json`` writes (pytest-bdd's ``--cucumberjson`` writes the same)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from engine.docs.features import Scenario

# --- results of the last test run ----------------------------------------------------------------

Status = Literal["passed", "failed", "skipped", "not run"]


@dataclass(frozen=True)
class Result:
    """A scenario's result in the last run; for an outline, one status per example run."""

    status: Status
    runs: tuple[Status, ...] = ()
    message: str | None = None


@dataclass(frozen=True)
class Results:
    """Results per (promise id, scenario line), from Cucumber JSON."""

    source: Path | None = None
    ran_at: datetime | None = None
    by_scenario: Mapping[tuple[str, int], Result] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return self.ran_at is not None

    def of(self, promise_id: str, scenario: Scenario) -> Result:
        return self.by_scenario.get((promise_id, scenario.line), Result("not run"))


def load_results(path: Path | None) -> Results:
    """The last run's results; empty ("not run yet") when the file is missing or unreadable."""
    if path is None or not Path(path).is_file():
        return Results(path)
    try:
        features = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Results(path)
    runs: dict[tuple[str, int], list[tuple[Status, str | None]]] = {}
    for feature in features if isinstance(features, list) else []:
        promise_id = Path(str(feature.get("uri", ""))).stem
        for element in feature.get("elements", []):
            statuses = [s.get("result", {}) for s in element.get("steps", [])]
            status: Status = "passed"
            message = None
            for result in statuses:
                if result.get("status") == "failed":
                    status, message = "failed", result.get("error_message") or None
                    break
                if result.get("status") == "skipped":
                    status = "skipped"
            runs.setdefault((promise_id, int(element.get("line", 0))), []).append((status, message))
    by_scenario = {}
    for key, found in runs.items():
        statuses = tuple(s for s, _ in found)
        overall: Status = (
            "failed" if "failed" in statuses else "skipped" if "skipped" in statuses else "passed"
        )
        message = next((m for _, m in found if m), None)
        by_scenario[key] = Result(overall, statuses, message)
    ran_at = datetime.fromtimestamp(Path(path).stat().st_mtime, UTC)
    return Results(Path(path), ran_at, by_scenario)
