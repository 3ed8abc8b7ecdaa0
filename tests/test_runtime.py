"""engine.runtime: how every process connects, migrates and loads the catalog in force."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import ROOT
from engine.errors import InvalidDefinition
from engine.runtime import Runtime
from engine.settings import Settings


def test_reload_puts_an_edit_in_force_and_an_invalid_one_changes_nothing(tmp_path: Path) -> None:
    promises = tmp_path / "promises"
    shutil.copytree(ROOT / "promises", promises)
    runtime = Runtime.open(Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", dir=promises))
    assert runtime.reload() == []

    path = promises / "two-handoffs.yaml"
    path.write_text(path.read_text().replace("max: 2", "max: 3"))
    assert runtime.reload() == ["two-handoffs"]
    edited = runtime.catalog

    path.write_text(path.read_text().replace("max: 3", "max: three"))
    with pytest.raises(InvalidDefinition) as refused:
        runtime.reload()
    assert str(refused.value) == (
        "the promise catalog is invalid; the running promises stay in force"
    )
    assert refused.value.problems == [
        f"{path}:10: 'max': input should be a valid integer, got 'three'"
    ]
    assert runtime.catalog is edited
