"""The `promise` command as users run it: a real process, real files, exit codes, output."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROMISE = Path(sys.executable).parent / "promise"


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PROMISE), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def write_jsonl(path: Path, lines: list[object]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


RECORDS = [
    {
        "id": "e1",
        "occurred_at": "2024-03-01T16:00:00Z",
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
        "team": "claims",
        "attributes": {"item": "policy_number"},
    },
    {
        "id": "q1",
        "occurred_at": "2024-03-04T09:00:00Z",
        "customer_id": "C-1",
        "channel": "email",
        "direction": "outbound",
        "type": "info_requested",
        "team": "contact-centre",
        "attributes": {"item": "policy_number"},
    },
]


def test_check_accepts_the_shipped_catalog() -> None:
    result = run("check", "promises")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert "OK: 7 promises" in result.stderr


def test_check_lists_every_problem_as_file_line_message_and_exits_1() -> None:
    result = run("check", "tests/fixtures/bad_catalog")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    errors = [line for line in lines if ": warning: " not in line]
    assert len(errors) == 26
    assert "tests/fixtures/bad_catalog/bad-regex.yaml:6: invalid regex 'policy_(number'" in (
        result.stdout
    )
    for line in lines:
        file, number, _ = line.split(":", 2)
        assert Path(ROOT / file).exists() and int(number) >= 1


def test_check_strict_turns_warnings_into_failure(tmp_path: Path) -> None:
    catalog = tmp_path / "promises"
    catalog.mkdir()
    for name in ("teams.yaml", "calendars.yaml"):
        (catalog / name).write_text((ROOT / "promises" / name).read_text())
    text = (ROOT / "promises" / "two-handoffs.yaml").read_text()
    (catalog / "handoffs.yaml").write_text(text)  # not named after its id: a warning
    assert run("check", str(catalog)).returncode == 0
    strict = run("check", "--strict", str(catalog))
    assert strict.returncode == 1
    assert "warning: file name should be two-handoffs.yaml" in strict.stdout


def test_check_warns_where_plain_days_meet_a_calendar_and_still_exits_0(tmp_path: Path) -> None:
    catalog = tmp_path / "promises"
    catalog.mkdir()
    for name in ("teams.yaml", "calendars.yaml"):
        (catalog / name).write_text((ROOT / "promises" / name).read_text())
    text = (ROOT / "promises" / "email-reply-1bd.yaml").read_text()
    (catalog / "email-reply-1bd.yaml").write_text(text.replace("within: 8h", "within: 5d"))
    line = text.splitlines().index("within: 8h") + 1
    result = run("check", str(catalog), "--features", str(ROOT / "features"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == (
        f"{catalog}/email-reply-1bd.yaml:{line}: warning: '5d' with calendar 'uk-office' is 120 "
        "hours of business time (a 'd' is 24 hours of opening hours), not 5 business days: "
        "write '5bd' for business days, or '120h' for business hours\n"
    )
    assert "1 warning(s)" in result.stderr
    assert run("check", "--strict", str(catalog), "--features", str(ROOT / "features")).returncode


def test_replay_json_is_the_spec_document(tmp_path: Path) -> None:
    file = write_jsonl(tmp_path / "in.jsonl", [*RECORDS, "{broken", {"id": "x"}])
    result = run("replay", str(file), "--json", "--until", "2024-03-04T16:00:00Z")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["records"], document["rejected"]) == (3, 2)
    by_promise = {o["promise"]: o for o in document["outcomes"]}
    assert by_promise["ask-once"]["evidence"] == ["p1", "q1"]
    assert by_promise["ask-once"]["state"] == "broken"
    assert by_promise["ask-once"]["due_at"] is None
    email = by_promise["email-reply-1bd"]
    assert (email["state"], email["due_at"]) == ("broken", "2024-03-04T15:30:00+00:00")
    assert set(email) == {
        "promise",
        "version",
        "scope",
        "customer_id",
        "state",
        "opened_at",
        "due_at",
        "decided_at",
        "evidence",
    }
    assert document["summary"]["ask-once"] == {
        "pending": 0,
        "at_risk": 0,
        "kept": 0,
        "broken": 1,
        "cancelled": 0,
    }
    assert "in.jsonl:4: (line): malformed JSON" in result.stderr
    assert "in.jsonl:5: occurred_at: required" in result.stderr.replace("\n", " ")


def test_replay_refuses_bad_lines_precisely_and_keeps_the_others(tmp_path: Path) -> None:
    """Invalid UTF-8 is refused, not replaced (a record's id must not change), and a line
    nested 100,000 levels deep is a bad line, not a crash."""
    file = write_jsonl(tmp_path / "in.jsonl", RECORDS)
    with file.open("ab") as out:
        out.write(b'{"id": "bad-\xff"}\n' + b"[" * 100_000 + b"]" * 100_000 + b"\n")
    result = run("replay", str(file), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["records"] == len(RECORDS)
    assert "in.jsonl:4: (line): the line is not valid UTF-8 at line 1, column 13" in (
        result.stderr.replace("\n", " ")
    )
    assert "in.jsonl:5: (line): malformed JSON: nested too deeply" in (
        result.stderr.replace("\n", " ")
    )


def test_replay_prints_a_summary_table_without_json(tmp_path: Path) -> None:
    result = run("replay", str(write_jsonl(tmp_path / "in.jsonl", RECORDS)))
    assert result.returncode == 0
    assert "ask-once" in result.stdout and "compliance" in result.stdout
    assert "3 records, 0 rejected" in result.stdout


def test_replay_reads_csv_with_attribute_columns(tmp_path: Path) -> None:
    csv = tmp_path / "in.csv"
    csv.write_text(
        "id,occurred_at,customer_id,channel,direction,type,attributes.nps\n"
        "s1,2024-03-01T10:00:00Z,C-1,web,inbound,survey_response,4\n"
        "s2,2024-03-01T10:00:00Z,C-2,web,inbound,survey_response,9\n"
    )
    result = run("replay", str(csv), "--json", "--until", "2024-03-04T00:00:00Z")
    outcomes = json.loads(result.stdout)["outcomes"]
    assert [(o["promise"], o["scope"], o["state"]) for o in outcomes] == [
        ("detractor-follow-up-48h", "C-1", "broken")
    ]


def test_replay_exits_1_when_no_record_could_be_read(tmp_path: Path) -> None:
    result = run("replay", str(write_jsonl(tmp_path / "in.jsonl", ["nope"])))
    assert result.returncode == 1
    assert "no record could be read" in result.stderr


def test_replay_into_a_database_twice_stores_each_record_once(tmp_path: Path) -> None:
    file = write_jsonl(tmp_path / "in.jsonl", RECORDS)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    first = json.loads(run("replay", str(file), "--db", url, "--json").stdout)
    second = json.loads(run("replay", str(file), "--db", url, "--json").stdout)
    assert first["outcomes"] == second["outcomes"]
    memory = json.loads(run("replay", str(file), "--json").stdout)
    assert first["outcomes"] == memory["outcomes"]


def test_replay_into_a_database_records_old_breaches_as_backfilled_unless_told_not_to(
    tmp_path: Path,
) -> None:
    """History from 2024 is older than PROMISE_BACKFILL_ALERT_WINDOW: its breach is recorded
    as backfilled (counted in reports, sent to nobody); --no-alerts records nothing."""
    file = write_jsonl(tmp_path / "in.jsonl", RECORDS)  # ask-once breaks for C-1
    counts = {}
    for flag in ("--alerts", "--no-alerts"):
        path = tmp_path / f"store{flag}.db"
        assert run("replay", str(file), "--db", f"sqlite:///{path}", flag).returncode == 0
        with sqlite3.connect(path) as db:
            counts[flag] = db.execute("SELECT kind, team, state FROM alerts").fetchall()
    assert counts == {"--alerts": [("backfilled", "customer-care", "broken")], "--no-alerts": []}


CONFLICT = "is already stored with different content; a record id can only ever mean one record"
"""README: a different record under a known id is refused as a conflict (the first stays);
the same record again is a duplicate. Every path in gives that one answer."""


def test_replay_refuses_a_conflicting_record_id_in_a_file_and_keeps_the_first(
    tmp_path: Path,
) -> None:
    conflicting = {**RECORDS[0], "channel": "chat"}
    file = write_jsonl(tmp_path / "in.jsonl", [*RECORDS, RECORDS[0], conflicting])
    result = run("replay", str(file), "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["records"], document["rejected"]) == (3, 1)
    assert f"in.jsonl:5: id: 'e1' {CONFLICT}" in result.stderr.replace("\n", " ")
    alone = json.loads(
        run("replay", str(write_jsonl(tmp_path / "3.jsonl", RECORDS)), "--json").stdout
    )
    assert document["outcomes"] == alone["outcomes"]


def test_replay_into_a_database_refuses_a_conflict_with_a_stored_record(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    first = run("replay", str(write_jsonl(tmp_path / "a.jsonl", RECORDS)), "--db", url, "--json")
    conflicting = write_jsonl(tmp_path / "b.jsonl", [{**RECORDS[0], "channel": "chat"}])
    again = run("replay", str(conflicting), "--db", url, "--json")
    assert again.returncode == 0, again.stderr
    assert f"skipped record 'e1': id: 'e1' {CONFLICT}" in again.stderr.replace("\n", " ")
    assert json.loads(again.stdout)["outcomes"] == json.loads(first.stdout)["outcomes"]
    with sqlite3.connect(tmp_path / "store.db") as db:
        assert db.execute("SELECT channel FROM interactions WHERE id = 'e1'").fetchall() == [
            ("email",)
        ]


def _csv(path: Path, *rows: str) -> Path:
    path.write_text("id,at,customer,case\n" + "".join(f"{row}\n" for row in rows))
    return path


def test_import_refuses_a_conflicting_record_id_across_files_and_the_database(
    tmp_path: Path,
) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "timestamp: {column: at}\n"
        "record:\n"
        "  id: {column: id}\n"
        "  customer_id: {column: customer}\n"
        "  case_id: {column: case}\n"
        "  channel: email\n"
        "  direction: inbound\n"
        "  type: message\n"
    )
    first = _csv(tmp_path / "a.csv", "m1,2024-03-01T16:00:00Z,C-1,K-1")
    second = _csv(
        tmp_path / "b.csv",
        "m1,2024-03-01T17:00:00Z,C-1,K-1",  # m1 again, with another time
        "m2,2024-03-01T16:30:00Z,C-2,K-2",
    )
    url = f"sqlite:///{tmp_path / 'store.db'}"
    both = run("import", str(first), str(second), "--mapping", str(mapping), "--db", url)
    assert both.returncode == 0, both.stderr
    stderr = both.stderr.replace("\n", " ")
    assert "b.csv: 2 rows read, 1 mapped, 0 skipped, 1 rejected; 1 records" in stderr
    assert f"rejected 1: id: 'm1' {CONFLICT} (first at line 2)" in stderr
    assert "stored 2 new records, 0 already there, 0 refused" in stderr

    third = _csv(
        tmp_path / "c.csv", "m2,2024-03-01T16:45:00Z,C-2,K-2", "m1,2024-03-01T16:00:00Z,C-1,K-1"
    )
    again = run("import", str(third), "--mapping", str(mapping), "--db", url)
    assert again.returncode == 0, again.stderr
    stderr = again.stderr.replace("\n", " ")
    assert f"refused record 'm2': id: 'm2' {CONFLICT}" in stderr
    assert "stored 0 new records, 1 already there, 1 refused" in stderr
    with sqlite3.connect(tmp_path / "store.db") as db:
        assert db.execute("SELECT id, occurred_at FROM interactions ORDER BY id").fetchall() == [
            ("m1", "2024-03-01 16:00:00.000000"),
            ("m2", "2024-03-01 16:30:00.000000"),
        ]


@pytest.mark.parametrize(
    "command",
    [
        ["check"],
        ["compile"],
        ["replay"],
        ["serve"],
        ["worker"],
        ["dispatcher"],
        ["keys", "create"],
        ["keys", "revoke"],
        ["keys", "list"],
    ],
)
def test_every_command_explains_itself_with_an_example(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0
    assert "Example" in result.stdout


def test_serve_refuses_several_workers_on_sqlite(tmp_path: Path) -> None:
    """Several workers only share a PostgreSQL queue; on SQLite they would wait for the one
    writer, so the server says so instead of starting."""
    env = {**os.environ, "PROMISE_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}"}
    done = subprocess.run(
        [str(PROMISE), "serve", "--workers", "3"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--workers 3: SQLite has one writer" in done.stderr
    assert "PROMISE_DATABASE_URL=postgresql://" in done.stderr
