"""Acceptance on real, third-party data: the shipped mappings and example promise sets.

The data is read from ``$PROMISE_DATA_DIR`` (default ``promises/examples/data``, unchanged
copies of ../shared/data):
helpdesk.csv (an Italian software company's ticket log) and twcs_sample.csv (customer
support on Twitter). The first-response verdict of every help-desk ticket, and the
resolution due time of every ticket that never waited, are checked against an independent
computation written here in plain Python: its own CSV reading, its own business-hours
arithmetic over the same calendar definition (only ``holidays`` and ``zoneinfo`` shared),
nothing from ``rules`` or ``engine``.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest
from ruamel.yaml import YAML

from conftest import ROOT, start_server, stop_server
from engine.ingest.importer import ImportResult, import_file
from engine.ingest.mapping import load_mapping
from engine.sandbox.in_memory import ReplayResult, replay
from rules.loader import load_catalog

HELPDESK = ROOT / "promises" / "examples" / "helpdesk"
TWITTER = ROOT / "promises" / "examples" / "twitter"
PROMISE = str(Path(sys.executable).parent / "promise")


def data_file(name: str) -> Path:
    """A file of the real data, or a failure that says where it was looked for."""
    directory = Path(os.environ.get("PROMISE_DATA_DIR", ROOT / "promises" / "examples" / "data"))
    path = directory / name
    if not path.is_file():
        pytest.fail(
            f"real data file {path} not found: set PROMISE_DATA_DIR to the directory holding "
            "helpdesk.csv and twcs_sample.csv (default: promises/examples/data)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def helpdesk_import() -> ImportResult:
    return import_file(data_file("helpdesk.csv"), load_mapping(HELPDESK / "mapping.yaml"))


@pytest.fixture(scope="module")
def helpdesk_replay(helpdesk_import: ImportResult) -> ReplayResult:
    return replay(load_catalog(HELPDESK), helpdesk_import.records)


# --- the mappings --------------------------------------------------------------------------


def test_helpdesk_mapping_counts_every_row(helpdesk_import: ImportResult) -> None:
    result = helpdesk_import
    assert result.rows == 21_348
    assert dict(result.skipped) == {
        "status of a linked bug-tracker entry, not an activity on the ticket": 8
    }
    assert dict(result.rejected) == {}
    assert result.mapped == 21_340
    assert dict(result.derived) == {"handoff": 8_646}
    assert len(result.records) == 21_340 + 8_646
    assert len({r.case_id for r in result.records}) == 4_580
    first = next(r for r in result.records if r.id == "Case 1/00001")
    assert (first.type, first.case_id, first.agent, first.occurred_at) == (
        "opened",
        "Case 1",
        "Value 1",
        datetime(2012, 10, 9, 12, 50, 17, tzinfo=UTC),  # 14:50:17 in Rome, summer time
    )
    assert first.attributes["variant"] == "Variant 12"  # the second "Variant" column


def test_twitter_mapping_counts_every_row() -> None:
    result = import_file(data_file("twcs_sample.csv"), load_mapping(TWITTER / "mapping.yaml"))
    assert result.rows == 5_000  # the bare CR inside tweet 3399 does not split its row
    assert dict(result.skipped) == {
        "company tweet that answers no tweet (no customer to attribute it to)": 21,
        "company reply whose customer is not in the file (the tweets it answers are missing)": 5,
    }
    assert dict(result.rejected) == {}
    assert result.mapped == len(result.records) == 4_974
    by_id = {r.id: r for r in result.records}
    assert by_id["tweet-3399"].customer_id == "116510"
    # tweet 1 (sprintcare) answers 3, which answers 4, ... up to the conversation's root
    reply, question = by_id["tweet-1"], by_id["tweet-3"]
    assert (reply.direction, reply.team, reply.customer_id) == ("outbound", "sprintcare", "115712")
    assert reply.case_id == question.case_id == by_id["tweet-8"].case_id


# --- first response, ticket by ticket, against an independent computation ----------------


@dataclass(frozen=True)
class Verdict:
    state: str
    opened_at: datetime
    due_at: datetime
    decided_at: datetime | None


class OfficeHours:
    """Business-time addition written from the calendar's definition, independently."""

    def __init__(self, definition: dict) -> None:
        self.zone = ZoneInfo(definition["timezone"])
        (days, spans), *others = definition["hours"].items()
        assert days == "mon-fri" and not others, "this check knows mon-fri hours only"
        self.spans = []
        for span in spans.split(","):
            start, end = span.strip().split("-")
            self.spans.append((_hm(start), _hm(end)))
        self.holidays = holidays.country_holidays(definition["holidays"]["country"])

    def open_periods(self, day: date) -> list[tuple[datetime, datetime]]:
        if day.weekday() >= 5 or day in self.holidays:
            return []
        return [
            (
                datetime(day.year, day.month, day.day, *start, tzinfo=self.zone).astimezone(UTC),
                datetime(day.year, day.month, day.day, *end, tzinfo=self.zone).astimezone(UTC),
            )
            for start, end in self.spans
        ]

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The earliest instant by which ``duration`` of opening time has passed."""
        remaining, day = duration, start.astimezone(self.zone).date()
        while True:
            for opens, closes in self.open_periods(day):
                begin = max(opens, start)
                if begin >= closes:
                    continue
                if remaining <= closes - begin:
                    return begin + remaining
                remaining -= closes - begin
            day += timedelta(days=1)

    def close_of_business(self, start: datetime, days: int) -> datetime:
        """The closing time of the ``days``-th day with opening hours after ``start``'s date."""
        day = start.astimezone(self.zone).date()
        while True:
            day += timedelta(days=1)
            periods = self.open_periods(day)
            days -= bool(periods)
            if days == 0:
                return periods[-1][1]


def _hm(text: str) -> tuple[int, int]:
    hours, minutes = text.split(":")
    return int(hours), int(minutes)


OPENS = {"Insert ticket", "Assign seriousness"}
RESPONDS = {"Take in charge ticket", "Resolve ticket"}
CLOSES = {"Closed"}
NOT_TICKET_EVENTS = {"VERIFIED", "RESOLVED", "INVALID", "DUPLICATE"}


def expected_first_responses(path: Path) -> dict[str, list[Verdict]]:
    """Every ticket's first-response opportunities, straight from the CSV."""
    calendars = YAML(typ="safe").load((HELPDESK / "calendars.yaml").read_text())["calendars"]
    office = OfficeHours(calendars["it-office"])
    rome = ZoneInfo("Europe/Rome")
    tickets: dict[str, list[tuple[datetime, int, str]]] = defaultdict(list)
    latest = datetime.min.replace(tzinfo=UTC)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = csv.reader(handle)
        header = next(rows)
        case, activity = header.index("Case ID"), header.index("Activity")
        stamp = header.index("Complete Timestamp")
        for number, row in enumerate(rows, start=1):
            if row[activity] in NOT_TICKET_EVENTS:
                continue
            moment = datetime.strptime(row[stamp], "%Y/%m/%d %H:%M:%S.%f").replace(tzinfo=rome)
            moment = moment.astimezone(UTC)
            latest = max(latest, moment)
            tickets[row[case]].append((moment, number, row[activity]))
    return {
        ticket: _ticket_verdicts(sorted(events), office, latest)
        for ticket, events in tickets.items()
    }


def _ticket_verdicts(
    events: list[tuple[datetime, int, str]], office: OfficeHours, latest: datetime
) -> list[Verdict]:
    """A deadline of 8 business hours from an opening to a response, one ticket's events
    in order; a closing cancels; the clock ends at the latest time in the whole file."""
    found: list[Verdict] = []
    current: dict | None = None  # the open opportunity: opened, due, warn, broken
    for moment, _, what in events:
        if current is not None and not current["broken"] and moment > current["due"]:
            current["broken"] = True
        if current is not None and what in CLOSES | RESPONDS:
            if current["broken"]:
                state, decided = "broken", current["due"]
            else:
                state, decided = ("cancelled" if what in CLOSES else "kept"), moment
            found.append(Verdict(state, current["opened"], current["due"], decided))
            current = None
        elif current is None and what in OPENS:
            current = {
                "opened": moment,
                "due": office.add(moment, timedelta(hours=8)),
                "warn": office.add(moment, timedelta(hours=6)),
                "broken": False,
            }
    if current is not None:
        if current["broken"] or latest > current["due"]:
            found.append(Verdict("broken", current["opened"], current["due"], current["due"]))
        else:
            state = "at_risk" if latest >= current["warn"] else "pending"
            found.append(Verdict(state, current["opened"], current["due"], None))
    return found


def test_first_response_agrees_with_an_independent_count_on_every_ticket(
    helpdesk_replay: ReplayResult,
) -> None:
    engine: dict[str, list[Verdict]] = defaultdict(list)
    for outcome in helpdesk_replay.outcomes:
        if outcome.promise == "first-response-8bh":
            engine[outcome.scope].append(
                Verdict(outcome.state, outcome.opened_at, outcome.due_at, outcome.decided_at)
            )
    expected = expected_first_responses(data_file("helpdesk.csv"))
    assert len(expected) == 4_580
    disagreements = [
        f"{ticket}: engine {engine.get(ticket, [])} != expected {verdicts}"
        for ticket, verdicts in sorted(expected.items())
        if sorted(engine.get(ticket, []), key=lambda v: v.opened_at) != verdicts
    ]
    assert not disagreements, f"{len(disagreements)} tickets disagree:\n" + "\n".join(
        disagreements[:20]
    )
    assert set(engine) <= set(expected)
    states = defaultdict(int)
    for verdicts in expected.values():
        for verdict in verdicts:
            states[verdict.state] += 1
    assert sum(len(v) for v in expected.values()) == 4_504  # 78 tickets never open
    assert states["kept"] > 2_000 and states["broken"] > 1_000


def test_resolution_is_due_at_the_close_of_the_fifth_business_day(
    helpdesk_replay: ReplayResult,
) -> None:
    """``within: 5bd``: 18:00 Rome time on the fifth business day after the opening's date,
    for every ticket whose clock never stopped; and the compliance the README shows."""
    calendars = YAML(typ="safe").load((HELPDESK / "calendars.yaml").read_text())["calendars"]
    office = OfficeHours(calendars["it-office"])
    with data_file("helpdesk.csv").open(newline="", encoding="utf-8") as handle:
        waited = {row["Case ID"] for row in csv.DictReader(handle) if row["Activity"] == "Wait"}
    outcomes = [o for o in helpdesk_replay.outcomes if o.promise == "resolution-5bd"]
    assert Counter(o.state for o in outcomes) == {"kept": 2_891, "broken": 1_611, "pending": 1}
    never_waited = [o for o in outcomes if o.scope not in waited]
    assert len(never_waited) > 3_000
    wrong = [o for o in never_waited if o.due_at != office.close_of_business(o.opened_at, 5)]
    assert not wrong, f"{len(wrong)} due times differ, e.g. {wrong[:3]}"


# --- the command line --------------------------------------------------------------------


def _promise(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [PROMISE, *args], capture_output=True, text=True, cwd=cwd or ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.parametrize(
    ("catalog", "data", "promises"),
    [
        (HELPDESK, "helpdesk.csv", ["first-response-8bh", "resolution-5bd", "two-handoffs"]),
        (TWITTER, "twcs_sample.csv", ["ask-twice", "reply-1h"]),
    ],
    ids=["helpdesk", "twitter"],
)
def test_replay_with_a_mapping_prints_a_summary_table(
    catalog: Path, data: str, promises: list[str]
) -> None:
    done = _promise(
        "replay",
        str(data_file(data)),
        "--mapping",
        str(catalog / "mapping.yaml"),
        "--promises",
        str(catalog),
    )
    assert "rows read" in done.stderr and "skipped" in done.stderr
    lines = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if "│" in line}
    for promise in promises:
        assert promise in lines, done.stdout
        assert "%" in lines[promise]  # a compliance figure: something was decided


def _table_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as connection:
        names = [
            name
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if name != "alembic_version"
        ]
        return {
            name: connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            for name in names
        }


@pytest.fixture(scope="module")
def helpdesk_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """helpdesk.csv imported into a SQLite file with the help-desk promises."""
    db = tmp_path_factory.mktemp("helpdesk") / "promise.db"
    _import(db)
    return db


def _import(db: Path) -> subprocess.CompletedProcess[str]:
    return _promise(
        "import",
        str(data_file("helpdesk.csv")),
        "--mapping",
        str(HELPDESK / "mapping.yaml"),
        "--promises",
        str(HELPDESK),
        "--db",
        f"sqlite:///{db}",
    )


@pytest.mark.slow
def test_importing_twice_changes_nothing(helpdesk_db: Path) -> None:
    before = _table_counts(helpdesk_db)
    assert before["interactions"] == 29_986
    with sqlite3.connect(helpdesk_db) as connection:
        outcomes = connection.execute(
            "SELECT promise_id, scope, state, due_at, decided_at FROM outcomes ORDER BY 1, 2, 3"
        ).fetchall()
    again = _import(helpdesk_db)
    assert "stored 0 new records, 29986 already there, 0 refused" in again.stderr
    assert _table_counts(helpdesk_db) == before
    with sqlite3.connect(helpdesk_db) as connection:
        assert (
            connection.execute(
                "SELECT promise_id, scope, state, due_at, decided_at FROM outcomes ORDER BY 1, 2, 3"
            ).fetchall()
            == outcomes
        )


# --- the dashboard on the help-desk data -----------------------------------------------------


@pytest.mark.slow
def test_the_dashboard_shows_the_help_desk_promises(helpdesk_db: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    server = start_server(f"sqlite:///{helpdesk_db}", tmp_path, "--no-live", promise_dir=HELPDESK)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(f"{server.url}/ui/login")
                page.fill("#key", server.admin_key)
                page.click("button[type=submit]")
                expect(page).to_have_url(f"{server.url}/ui")
                for promise in ("first-response-8bh", "resolution-5bd", "two-handoffs"):
                    expect(page.locator(f"#promise-{promise}")).to_be_visible()
                    expect(page.locator(f"#promise-{promise} .attainment")).to_contain_text("%")
                expect(page.locator("#promise-first-response-8bh")).to_contain_text("helpdesk")
                if os.environ.get("PROMISE_UPDATE_SCREENSHOTS") == "1":
                    page.screenshot(path=ROOT / "docs" / "helpdesk-dashboard.png", full_page=True)
            finally:
                browser.close()
    finally:
        stop_server(server)


def test_the_json_summary_of_a_mapped_replay_is_the_spec_document(tmp_path: Path) -> None:
    """A small export of one's own, mapped without code: the documented example works."""
    export = tmp_path / "tickets.csv"
    export.write_text(
        "Ticket,Event,When,Who,Who\n"
        "T-1,created,2024-03-01 10:00,c-1,\n"
        "T-1,replied,2024-03-01 10:30,c-1,a-7\n"
        "T-2,created,2024-03-01 11:00,c-2,\n"
    )
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "timestamp: {column: When, format: '%Y-%m-%d %H:%M', timezone: Europe/London}\n"
        "record:\n"
        "  id: {template: '{Ticket}-{row}'}\n"
        "  case_id: {column: Ticket}\n"
        "  customer_id: {column: Who}\n"
        "  agent: {column: Who.2}\n"
        "  channel: email\n"
        "  direction: {column: Event, map: {created: inbound, replied: outbound}}\n"
        "  type: message\n"
    )
    done = _promise(
        "replay",
        str(export),
        "--mapping",
        str(mapping),
        "--json",
        "--until",
        "2024-03-05T00:00:00Z",
        cwd=ROOT,
    )
    document = json.loads(done.stdout)
    assert document["records"] == 3
    assert document["summary"]["email-reply-1bd"] == {
        "kept": 1,
        "broken": 1,
        "at_risk": 0,
        "pending": 0,
        "cancelled": 0,
    }
