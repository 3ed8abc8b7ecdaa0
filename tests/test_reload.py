"""Editing promises while the service runs: validated first, then in force, as a new version."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from conftest import ROOT, Server, start_server, stop_server


@pytest.fixture
def editable(db_engine: Engine, tmp_path: Path) -> Iterator[Server]:
    """A server over a copy of the catalog that the test may edit."""
    promises = tmp_path / "promises"
    shutil.copytree(ROOT / "promises", promises)
    running = start_server(
        db_engine.url.render_as_string(hide_password=False),
        tmp_path,
        "--no-live",
        promise_dir=promises,
    )
    yield running
    stop_server(running)


def handoff(id: str, day: int) -> dict[str, str]:
    return {
        "id": id,
        "occurred_at": f"2024-03-0{day}T09:00:00Z",
        "customer_id": "C-1",
        "case_id": "K-1",
        "channel": "other",
        "direction": "internal",
        "type": "handoff",
    }


def test_an_invalid_edit_is_refused_with_file_and_line_and_nothing_changes(
    editable: Server,
) -> None:
    client = editable.client()
    before = client.get("/promises/two-handoffs").json()["version"]
    path = editable.promise_dir / "two-handoffs.yaml"
    path.write_text(path.read_text().replace("max: 2", "max: two"))
    refused = client.post("/promises/reload")
    assert refused.status_code == 422
    assert any(
        p.endswith("two-handoffs.yaml:10: 'max': input should be a valid integer, got 'two'")
        for p in refused.json()["problems"]
    )
    assert client.get("/promises/two-handoffs").json()["version"] == before


def test_a_valid_edit_becomes_a_new_version_for_the_api_and_the_worker(
    editable: Server,
) -> None:
    client = editable.client()
    old = client.get("/promises/two-handoffs").json()["version"]
    path = editable.promise_dir / "two-handoffs.yaml"
    path.write_text(path.read_text().replace("max: 2", "max: 1"))
    answer = client.post("/promises/reload").json()
    assert answer["changed"] == ["two-handoffs"]
    detail = client.get("/promises/two-handoffs").json()
    assert detail["version"] != old
    assert [v["version"] for v in detail["versions"]] == [old, detail["version"]]

    # The worker notices the edit on its own: two handoffs now break the promise.
    client.post("/interactions", json=[handoff("h1", 1), handoff("h2", 2)])

    def broken() -> bool:
        items = client.get("/breaches", params={"promise": "two-handoffs"}).json()["items"]
        return [(o["version"], o["evidence"]) for o in items] == [(detail["version"], ["h1", "h2"])]

    editable.wait_for(broken)


def test_sighup_reloads_the_promises(editable: Server) -> None:
    client = editable.client()
    old = client.get("/promises/travel-guarantee").json()["version"]
    path = editable.promise_dir / "travel-guarantee.yaml"
    path.write_text(path.read_text().replace("within: 4h", "within: 3h"))
    editable.process.send_signal(signal.SIGHUP)
    editable.wait_for(lambda: client.get("/promises/travel-guarantee").json()["version"] != old)


AGENT_REF = """\
id: agent-ref
title: Handoffs by agents of team A
owner: operations
kind: limit
scope: case_id
count: {type: handoff, agent: {matches: "PATTERN"}}
max: 2
"""


def test_a_changed_pattern_is_a_new_version_shown_in_full(editable: Server) -> None:
    """Issue #14, 3: the version hash dropped the pattern, so an edit kept the version."""
    client = editable.client()
    path = editable.promise_dir / "agent-ref.yaml"
    path.write_text(AGENT_REF.replace("PATTERN", "A.*"))
    assert client.post("/promises/reload").json()["changed"] == ["agent-ref"]
    first = client.get("/promises/agent-ref").json()
    path.write_text(AGENT_REF.replace("PATTERN", "B.*"))
    assert client.post("/promises/reload").json()["changed"] == ["agent-ref"]
    detail = client.get("/promises/agent-ref").json()
    assert detail["version"] != first["version"]
    assert [v["version"] for v in detail["versions"]] == [first["version"], detail["version"]]
    assert detail["definition"]["count"]["conditions"] == [
        ["agent", {"@": "Matches", "source": "B.*"}],
        ["type", {"@": "Equals", "value": "handoff"}],
    ]
