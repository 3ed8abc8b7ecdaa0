"""The living documentation of a promise: the scenarios of ``features/<promise-id>.feature``,
listed on the dashboard so readers see which cases are pinned by executable examples."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

_KEYWORDS = ("Scenario Outline", "Scenario Template", "Scenario", "Example")


@dataclass(frozen=True)
class Scenario:
    keyword: str
    title: str


def scenarios(features_dir: Path, promise_id: str) -> list[Scenario] | None:
    """The scenario titles in file order, or ``None`` when the promise has no feature file.

    ``promise_id`` must come from the catalog (ids are validated), never from a URL as is.
    """
    path = features_dir / f"{promise_id}.feature"
    if not path.is_file():
        return None
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        keyword, colon, title = line.strip().partition(":")
        if colon and keyword in _KEYWORDS:
            found.append(Scenario(keyword, title.strip()))
    return found
