"""`promise backtest DRAFT_DIR --db URL`: what a draft catalog would change over stored
history (issue #17 item 4), run as a rule author's CI would run it on a pull request."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT

PROMISE = Path(sys.executable).parent / "promise"
sys.path.insert(0, str(ROOT / "bench"))
from synthetic import history  # noqa: E402


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PROMISE), *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A database holding 500 synthetic records evaluated with the shipped promises: enough
    for each change the draft makes to show (the count itself matters to no assertion)."""
    folder = tmp_path_factory.mktemp("backtest")
    source = folder / "records.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in history(500, seed=9)))
    url = f"sqlite:///{folder / 'promise.db'}"
    loaded = run("replay", str(source), "--db", url, "--no-alerts", "--json")
    assert loaded.returncode == 0, loaded.stderr
    return source, url


def draft_of(tmp_path: Path) -> Path:
    """The shipped catalog with email replies due in 1 hour instead of 8, two-handoffs
    removed and a new promise, callback-1h."""
    draft = tmp_path / "draft"
    shutil.copytree(ROOT / "promises", draft, ignore=shutil.ignore_patterns("examples"))
    email = draft / "email-reply-1bd.yaml"
    email.write_text(email.read_text().replace("within: 8h", "within: 1h"))
    (draft / "two-handoffs.yaml").unlink()
    callback = (draft / "callback-2h.yaml").read_text()
    (draft / "callback-1h.yaml").write_text(
        callback.replace("id: callback-2h", "id: callback-1h").replace("within: 2h", "within: 1h")
    )
    return draft


def outcome_rows(url: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        return connection.execute(
            "SELECT promise_id, key, state, version FROM outcomes ORDER BY 1, 2"
        ).fetchall()


def test_a_draft_shows_what_it_would_change_and_stores_nothing(
    stored: tuple[Path, str], tmp_path: Path
) -> None:
    source, url = stored
    draft = draft_of(tmp_path)
    before = outcome_rows(url)
    result = run("backtest", str(draft), "--db", url, "--format", "json")
    assert result.returncode == 0, result.stderr
    found = {item["promise"]: item for item in json.loads(result.stdout)}
    assert outcome_rows(url) == before  # nothing stored

    email = found["email-reply-1bd"]
    assert email["status"] == "changed"
    assert email["transitions"]["kept→broken"]  # stricter: some replies are now late
    assert "broken→kept" not in email["transitions"]
    # The draft's verdicts are a replay's with the draft catalog, counted independently.
    replayed = run("replay", str(source), "--promises", str(draft), "--json")
    summary = json.loads(replayed.stdout)["summary"]
    for pid in ("email-reply-1bd", "callback-1h", "ask-once"):
        assert found[pid]["draft"] == {k: v for k, v in summary[pid].items() if v}, pid
    stored_states = Counter((p, s) for p, _, s, _ in before)
    handoffs = found["two-handoffs"]
    assert handoffs["status"] == "removed" and handoffs["draft"] == {}
    assert len(handoffs["transitions"]["gone"]) == sum(
        n for (p, _), n in stored_states.items() if p == "two-handoffs"
    )
    assert found["callback-1h"]["status"] == "new promise"
    assert set(found["callback-1h"]["transitions"]) == {"new"}
    for pid in ("ask-once", "callback-2h", "travel-guarantee", "detractor-follow-up-48h"):
        assert (found[pid]["status"], found[pid]["transitions"]) == ("unchanged", {}), pid


def test_markdown_for_a_pull_request_and_a_period(stored: tuple[Path, str], tmp_path: Path) -> None:
    _, url = stored
    draft = draft_of(tmp_path)
    md = run("backtest", str(draft), "--db", url, "--format", "md", "--examples", "2")
    assert md.returncode == 0, md.stderr
    lines = md.stdout.splitlines()
    assert lines[0] == "| promise | status | now | with the draft | changes |"
    (email,) = [line for line in lines if line.startswith("| `email-reply-1bd` | changed |")]
    assert "kept→broken: " in email and "(e.g. `" in email
    before_history = run(
        "backtest", str(draft), "--db", url, "--to", "2000-01-01", "--format", "json"
    )
    assert all(
        item["transitions"] == {} and item["current"] == {} == item["draft"]
        for item in json.loads(before_history.stdout)
    )


def test_an_invalid_draft_is_refused_with_file_and_line(
    stored: tuple[Path, str], tmp_path: Path
) -> None:
    _, url = stored
    draft = draft_of(tmp_path)
    email = draft / "email-reply-1bd.yaml"
    email.write_text(email.read_text().replace("within: 1h", "within: 1 hour"))
    result = run("backtest", str(draft), "--db", url)
    assert result.returncode == 1
    assert f"{email}:14: bad duration '1 hour'" in result.stderr
