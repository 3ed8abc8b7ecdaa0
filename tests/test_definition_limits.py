"""What `promise check` accepts, every path can run (issue #14, items 4 and 5).

Patterns the rules core cannot compile and durations that calendar arithmetic cannot hold
are refused at their line by `promise check`, by every catalog load (reload, serve, replay)
and by a draft backtest; a worker quarantines a promise the core refuses and runs the others
instead of crash-looping on the catalog.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import in_process
import pytest
from sqlalchemy import Engine

import engine_adapter
from conftest import ROOT, Server, run_promise, start_server, stop_server
from engine.evaluation import quarantine
from engine.records import MAX_ATTRIBUTE_FIELDS, parse_record
from engine.service import PromiseService
from engine.storage.database import session_factory
from rules.compiler import MAX_TYPED_FIELDS
from rules.loader import check_directory, load_catalog

PROMISE = Path(sys.executable).parent / "promise"
NESTED = "(" * 200 + "a" + ")" * 200  # translates fine; creating its ruleset segfaults
AGENT_REF = """\
id: agent-ref
title: Handoffs by agents matching a pattern
owner: operations
kind: limit
scope: case_id
count:
  agent: {matches: "PATTERN"}
  type: handoff
max: 2
"""
DEADLINE = """\
id: slow-reply
title: Replies, eventually
owner: operations
kind: deadline
scope: case_id
start: {type: message, direction: inbound}
stop: {type: message, direction: outbound}
within: WITHIN
"""
RECORDS = [
    {
        "id": "m1",
        "occurred_at": "2024-03-01T10:00:00Z",
        "customer_id": "C-1",
        "case_id": "K-1",
        "channel": "email",
        "direction": "inbound",
        "type": "message",
    },
    {
        "id": "p1",
        "occurred_at": "2024-03-01T10:00:00Z",
        "customer_id": "C-1",
        "channel": "phone",
        "direction": "inbound",
        "type": "info_provided",
        "attributes": {"item": "iban"},
    },
    {
        "id": "q1",
        "occurred_at": "2024-03-02T10:00:00Z",
        "customer_id": "C-1",
        "channel": "email",
        "direction": "outbound",
        "type": "info_requested",
        "attributes": {"item": "iban"},
    },
]


def catalog(tmp_path: Path, files: dict[str, str], *, shipped: bool = False) -> Path:
    """A catalog directory: the shipped teams and calendars (and promises, if ``shipped``)
    plus ``files``."""
    folder = tmp_path / "promises"
    if shipped:
        shutil.copytree(ROOT / "promises", folder)
    else:
        folder.mkdir()
        for name in ("teams.yaml", "calendars.yaml"):
            shutil.copy(ROOT / "promises" / name, folder / name)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def promise(*args: str, cwd: Path) -> in_process.Ran:
    """``promise ARGS`` in ``cwd``, run in this process (tests/in_process.py): the rules core
    compiles each promise in a child process of its own, whatever process asks."""
    return in_process.promise(*args, cwd=cwd, env={})


# --- item 4: patterns the rules core cannot compile ---------------------------------------


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("[a-z]{1,250}", "repetition counts above 100 are not supported by the rules core"),
        (".{200}", "repetition counts above 100 are not supported by the rules core"),
        ("[ab]*a[ab]{10}", "its automaton outgrows the core's fixed tables"),
        (NESTED, "compiling it crashes the core's process"),
    ],
)
def test_check_refuses_a_pattern_the_core_cannot_compile_at_its_line(
    tmp_path: Path, pattern: str, words: str
) -> None:
    folder = catalog(tmp_path, {"agent-ref.yaml": AGENT_REF.replace("PATTERN", pattern)})
    done = promise("check", str(folder), cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    (problem,) = done.stdout.splitlines()
    assert problem.startswith(f"{folder / 'agent-ref.yaml'}:7: ")
    assert words in problem
    records = tmp_path / "records.jsonl"
    records.write_text("")
    replay = promise("replay", "--promises", str(folder), str(records), cwd=tmp_path)
    assert (replay.returncode, replay.stderr.strip()) == (1, problem)


def test_serve_refuses_such_a_catalog_with_its_problems(tmp_path: Path) -> None:
    folder = catalog(tmp_path, {"agent-ref.yaml": AGENT_REF.replace("PATTERN", "[ab]*a[ab]{10}")})
    done = subprocess.run(
        [str(PROMISE), "serve", "--port", "1"],
        cwd=tmp_path,
        env={
            **os.environ,
            "PROMISE_DIR": str(folder),
            "PROMISE_DATABASE_URL": f"sqlite:///{tmp_path / 'promise.db'}",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"{folder / 'agent-ref.yaml'}:7: the rules core cannot compile" in done.stderr


@pytest.fixture
def editable(db_engine: Engine, tmp_path: Path) -> Iterator[Server]:
    """A server over a copy of the shipped catalog that the test may edit."""
    folder = catalog(tmp_path, {}, shipped=True)
    url = db_engine.url.render_as_string(hide_password=False)
    running = start_server(url, tmp_path, "--no-live", promise_dir=folder)
    yield running
    stop_server(running)


def test_reload_refuses_it_and_the_worker_quarantines_it_and_runs_the_rest(
    editable: Server,
) -> None:
    """Once a reload answered 500 and the worker, loading the edit, crash-looped on it."""
    client = editable.client()
    path = editable.promise_dir / "two-handoffs.yaml"
    path.write_text(
        path.read_text().replace(
            "count: {type: handoff}", 'count: {type: handoff, agent: {matches: "[ab]*a[ab]{10}"}}'
        )
    )
    refused = client.post("/promises/reload")
    assert refused.status_code == 422
    (problem,) = refused.json()["problems"]
    assert problem.startswith(f"{path}:9: the rules core cannot compile the pattern")

    # The worker puts the edited files in force on its own: the refused promise is
    # quarantined there, and every other promise is still evaluated.
    client.post("/interactions", json=RECORDS)
    editable.wait_for(lambda: "two-handoffs" in editable.promise("quarantine", "list"))
    held = editable.promise("quarantine", "list")
    assert f"the rules core cannot run it: {problem}" in held
    editable.wait_for(lambda: len(client.get("/breaches").json()["items"]) == 1)
    assert client.get("/breaches").json()["items"][0]["promise"] == "ask-once"
    assert client.get("/readyz").status_code == 200


def test_a_draft_backtest_is_refused_with_its_problems(server: Server) -> None:
    client = server.client()
    for text, problem in [
        (
            AGENT_REF.replace("PATTERN", "[ab]*a[ab]{10}"),
            "draft.yaml:7: the rules core cannot compile the pattern '[ab]*a[ab]{10}'",
        ),
        (
            DEADLINE.replace("WITHIN", "1000000000d"),
            "draft.yaml:8: duration '1000000000d' is longer than the limit of 100 years",
        ),
    ]:
        answer = client.post("/promises/backtest", json={"yaml": text})
        assert answer.status_code == 422
        (found,) = answer.json()["problems"]
        assert found.startswith(problem)
    digest = client.put("/teams/travel-support/digest", json={"every": "1000000000d"})
    assert digest.status_code == 422
    assert digest.json()["detail"].startswith("every: duration '1000000000d' is longer than")


def test_a_worker_quarantines_what_the_core_refuses_and_never_crash_loops(
    db_engine: Engine, tmp_path: Path
) -> None:
    url = db_engine.url.render_as_string(hide_password=False)
    PromiseService(load_catalog(ROOT / "promises"), session_factory(db_engine)).accept(RECORDS)
    bad = AGENT_REF.replace("PATTERN", "[ab]*a[ab]{10}")
    folder = catalog(tmp_path, {"agent-ref.yaml": bad}, shipped=True)
    for _ in range(2):  # a restarted worker loads the same catalog
        run_promise(url, tmp_path, "worker", "--no-live", "--once", promise_dir=folder)
    with session_factory(db_engine)() as session:
        (held,) = quarantine.listed(session)
    assert held.promise_id == "agent-ref"
    assert held.reason.startswith(
        f"the rules core cannot run it: {folder / 'agent-ref.yaml'}:7: the rules core cannot "
        "compile the pattern '[ab]*a[ab]{10}'"
    )
    outcomes = PromiseService(load_catalog(ROOT / "promises"), session_factory(db_engine))
    assert {(o.promise, o.evidence[0]) for o in outcomes.outcomes()} == {
        ("ask-once", "p1"),
        ("email-reply-1bd", "m1"),
    }


# --- item 5: durations ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("within", "calendar", "words"),
    [
        (
            "1000000000d",
            None,
            "duration '1000000000d' is longer than the limit of 100 years (36525d)",
        ),
        ("36500000d", None, "duration '36500000d' is longer than the limit of 100 years (36525d)"),
        ("36526d", None, "duration '36526d' is longer than the limit of 100 years (36525d)"),
        (
            "36525d",
            "uk-office",
            "36525d of business time on calendar 'uk-office' (open 1d18h30m a week) takes "
            "more than 100 years to pass; the longest is 9239d22h",
        ),
    ],
)
def test_check_refuses_a_duration_calendar_arithmetic_cannot_hold(
    tmp_path: Path, within: str, calendar: str | None, words: str
) -> None:
    """1000000000d was an OverflowError traceback; 36500000d passed check and was then
    quarantined at the first record ("date value out of range")."""
    text = DEADLINE.replace("WITHIN", within) + (f"calendar: {calendar}\n" if calendar else "")
    folder = catalog(tmp_path, {"slow-reply.yaml": text})
    done = promise("check", str(folder), cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    refusals = [line for line in done.stdout.splitlines() if ": warning: " not in line]
    assert refusals == [f"{folder / 'slow-reply.yaml'}:8: {words}"]  # 'd' with a calendar warns too


def test_check_refuses_a_digest_period_too_long(tmp_path: Path) -> None:
    folder = catalog(tmp_path, {})
    teams = folder / "teams.yaml"
    teams.write_text(
        teams.read_text().replace(
            "  operations:\n    name: Operations\n",
            "  operations:\n    name: Operations\n    digest: {every: 99999999999999d}\n",
        )
    )
    done = promise("check", str(folder), cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    (problem,) = done.stdout.splitlines()
    assert "is longer than the limit of 100 years" in problem
    assert problem.startswith(f"{teams}:")


@pytest.mark.parametrize(
    ("within", "calendar", "due"),
    [
        ("36525d", None, "2124-03-02T10:00:00+00:00"),  # 2100 is no leap year
        ("9239d22h", "uk-office", "2126-07-12T10:30:00+00:00"),  # the longest on it
    ],
)
def test_the_longest_durations_check_accepts_are_evaluated(
    db_engine: Engine, tmp_path: Path, within: str, calendar: str | None, due: str
) -> None:
    text = DEADLINE.replace("WITHIN", within) + (f"calendar: {calendar}\n" if calendar else "")
    service = PromiseService(
        load_catalog(catalog(tmp_path, {"slow-reply.yaml": text})), session_factory(db_engine)
    )
    service.ingest(RECORDS[:1])
    (outcome,) = service.outcomes()
    assert outcome.state == "pending"
    assert outcome.due_at is not None and outcome.due_at.isoformat() == due
    with session_factory(db_engine)() as session:
        assert quarantine.listed(session) == []


def _naming(paths: int) -> str:
    """A limit counting records where each of ``paths`` attribute paths is present."""
    count = "".join(f"  attributes.a{n}: {{exists: true}}\n" for n in range(paths))
    return AGENT_REF.replace('  agent: {matches: "PATTERN"}\n', count)


def test_check_refuses_more_attribute_paths_than_a_fact_can_hold(tmp_path: Path) -> None:
    (tmp_path / "agent-ref.yaml").write_text(_naming(MAX_TYPED_FIELDS + 1))
    shutil.copy(ROOT / "promises" / "teams.yaml", tmp_path)
    (problem,) = check_directory(tmp_path).errors
    assert (problem.line, problem.message) == (
        4,
        f"this promise names {MAX_TYPED_FIELDS + 1} attribute paths in its matches and "
        f"'same'; the rules core holds at most {MAX_TYPED_FIELDS} per promise",
    )


def test_the_most_attribute_paths_run_on_the_largest_record(tmp_path: Path) -> None:
    """Each named path holding an object costs its record's fact two fields (its kind and
    its text) besides the largest number of attribute values a record may have."""
    (tmp_path / "agent-ref.yaml").write_text(_naming(MAX_TYPED_FIELDS))
    shutil.copy(ROOT / "promises" / "teams.yaml", tmp_path)
    catalog = load_catalog(tmp_path)
    per_path = MAX_ATTRIBUTE_FIELDS // MAX_TYPED_FIELDS
    attributes = {f"a{n}": {f"x{k}": k for k in range(per_path)} for n in range(MAX_TYPED_FIELDS)}
    record = {**RECORDS[0], "type": "handoff", "team": "t", "agent": "a", "attributes": attributes}
    assert not isinstance(parse_record(record), list)  # as large as a record may be
    record["occurred_at"] = datetime.fromisoformat(record["occurred_at"])
    (outcome,) = engine_adapter.evaluate(catalog, [record])
    assert outcome["evidence"] == ["m1"]
