"""The step library of the living documentation: one vocabulary for every promise.

Every scenario runs the real engine: a :class:`PromiseService` over a fresh SQLite database
(in ``tmp_path``) with the catalog loaded from the real ``promises/`` directory. Each record
step ingests one record at once, in the order the scenario tells it; the engine decides in
event time, so "a record arrives late" is simply a record whose time is earlier than what
the engine has already judged (a later record, or the clock). Steps pass what they found
to later steps through pytest-bdd's ``target_fixture`` (the ``outcome`` a Then step looked
at), never a global.

features/README.md lists every step pattern; keep it in step with this file.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from inspect import Parameter, Signature
from pathlib import Path
from typing import Any

import pytest
from pytest_bdd import parsers, step
from sqlalchemy.orm import Session, sessionmaker

from engine.alerting.status import Alert, AlertFilter, list_alerts
from engine.outcomes import Outcome
from engine.service import PromiseService
from engine.storage.database import make_engine, migrate, session_factory
from features.feature_dates import format_day, parse_day, parse_moment
from rules.loader import load_catalog
from rules.models import Catalog

ROOT = Path(__file__).resolve().parents[1]

QUOTED = r'"(?P<{}>[^"]+)"'
WORD = r"(?P<{}>[A-Za-z][\w-]*)"
WHEN = r"(?P<when>\S.*)"
STATE = r"(?P<state>pending|at risk|kept|broken|cancelled)"

CHANNEL_NOUNS = {
    "phone": "phone call",
    "email": "email",
    "chat": "chat",
    "web": "web form",
    "sms": "text message",
    "social": "social media message",
    "video": "video call",
    "branch": "branch visit",
    "app": "app message",
    "other": "record",
}


def _state(words: str) -> str:
    return words.replace(" ", "_")


def _words(state: str) -> str:
    return state.replace("_", " ")


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def promise_catalog() -> Catalog:
    """The real catalog: the features document what ships, never a copy."""
    return load_catalog(ROOT / "promises")


@pytest.fixture(scope="session")
def empty_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite file, made once and copied for each scenario (fast)."""
    path = tmp_path_factory.mktemp("template") / "promise.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


@pytest.fixture
def sessions(tmp_path: Path, empty_database: Path) -> Iterator[sessionmaker[Session]]:
    """A fresh SQLite database for this scenario alone."""
    path = tmp_path / "promise.db"
    shutil.copyfile(empty_database, path)
    engine = make_engine(f"sqlite:///{path}")
    yield session_factory(engine)
    engine.dispose()


@dataclass
class Written:
    """A record as the scenario wrote it: what it may be called, and the day it named."""

    id: str
    occurred_at: datetime
    day: date
    names: frozenset[str]


@dataclass
class Desk:
    """The scenario's view of the engine: the records it sent and whose case is whose."""

    service: PromiseService
    written: dict[str, Written] = field(default_factory=dict)
    case_customers: dict[str, str] = field(default_factory=dict)
    judged_until: datetime | None = None
    """The latest moment the engine has judged: the latest record or clock step so far."""

    def advance(self, when: datetime) -> None:
        self.service.advance(when)
        self._judged(when)

    def _judged(self, when: datetime) -> None:
        if self.judged_until is None or when > self.judged_until:
            self.judged_until = when

    def customer_of(self, case: str) -> str:
        if case not in self.case_customers:
            raise ValueError(
                f'case "{case}" has no customer yet: start with a step that names both, '
                f'e.g. customer "C-1" emails contact-centre about case "{case}" on ...'
            )
        return self.case_customers[case]

    def send(self, when: datetime, names: set[str], *, late: bool = False, **fields: Any) -> str:
        """Ingest one record now; ``late`` insists that a later record already arrived."""
        if late and (self.judged_until is None or self.judged_until <= when):
            raise ValueError(
                f"this record is not late: nothing after {when.isoformat()} has been judged yet"
            )
        record_id = f"r{len(self.written) + 1:03d}"
        if fields.get("case_id") and fields.get("customer_id"):
            self.case_customers.setdefault(fields["case_id"], fields["customer_id"])
        record = {"id": record_id, "occurred_at": when.isoformat(), **fields}
        [answer] = self.service.ingest([record])
        if answer.status != "accepted":
            problems = "; ".join(f"{p.field}: {p.reason}" for p in answer.problems)
            raise ValueError(f"the engine refused record {record}: {answer.status} {problems}")
        self.written[record_id] = Written(record_id, when, when.date(), frozenset(names))
        self._judged(when)
        return record_id

    def outcomes(self, promise: str, who: str) -> list[Outcome]:
        return [
            o
            for o in self.service.outcomes()
            if o.promise == promise and who in (o.scope, o.customer_id)
        ]

    def alerts(self, **where: Any) -> list[Alert]:
        found, _ = list_alerts(self.service.sessions, AlertFilter(**where), None, 10_000)
        return found

    def describe(self, outcomes: list[Outcome]) -> str:
        if not outcomes:
            return "no opportunity at all"
        return "; ".join(
            f"{_words(o.state)} (opened {o.opened_at:%Y-%m-%d %H:%M} UTC, due "
            f"{o.due_at and f'{o.due_at:%Y-%m-%d %H:%M} UTC'}, evidence "
            f"{', '.join(self.name(e) for e in o.evidence)})"
            for o in outcomes
        )

    def name(self, record_id: str) -> str:
        w = self.written.get(record_id)
        if w is None:
            return record_id
        return f"{' / '.join(sorted(w.names))} of {format_day(w.day)} {w.occurred_at:%H:%M}"


@pytest.fixture
def desk(promise_catalog: Catalog, sessions: sessionmaker[Session]) -> Desk:
    return Desk(PromiseService(promise_catalog, sessions))


@pytest.fixture
def outcome() -> Outcome | None:
    """The outcome the last ``Then the "..." promise is ...`` step looked at."""
    return None


def pytest_bdd_step_error(
    request: pytest.FixtureRequest,
    feature: Any,
    scenario: Any,
    step: Any,
    step_func: Callable[..., Any],
    step_func_args: dict[str, Any],
    exception: Exception,
) -> None:
    """A step the library cannot read (a bad date, an unknown case) names the step text."""
    if isinstance(exception, ValueError) and hasattr(exception, "add_note"):
        exception.add_note(
            f"in step: {step.keyword} {step.name} ({feature.rel_filename}:{step.line_number})"
        )


# --- records -------------------------------------------------------------------------------------
#
# Each phrase is a regular expression over the step text (ending in "on <moment>") and a
# function from its named groups to (record fields, the names a reader may call it by). They
# are registered as steps below, and also serve "a record arrives late: <phrase>".

Build = Callable[[Desk, dict[str, str]], tuple[dict[str, Any], set[str]]]
PHRASES: list[tuple[re.Pattern[str], Build]] = []


def phrase(pattern: str) -> Callable[[Build], Build]:
    def register(build: Build) -> Build:
        PHRASES.append((re.compile(pattern + " on " + WHEN), build))
        return build

    return register


def _by(channel: str, *extra: str) -> set[str]:
    if channel not in CHANNEL_NOUNS:
        raise ValueError(f"unknown channel {channel!r}; channels are {', '.join(CHANNEL_NOUNS)}")
    return {CHANNEL_NOUNS[channel], *extra}


@phrase(
    rf"customer {QUOTED.format('customer')} (?:gave|gives) their {QUOTED.format('item')} "
    rf"by {WORD.format('channel')} to {WORD.format('team')}"
)
def _gave(desk: Desk, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "channel": g["channel"],
        "direction": "inbound",
        "type": "info_provided",
        "team": g["team"],
        "attributes": {"item": g["item"]},
    }
    return fields, _by(g["channel"], "answer")


@phrase(
    rf"{WORD.format('team')} (?:asks|asked) {QUOTED.format('customer')} for "
    rf"{QUOTED.format('item')} by {WORD.format('channel')}"
)
def _asks(desk: Desk, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "channel": g["channel"],
        "direction": "outbound",
        "type": "info_requested",
        "team": g["team"],
        "attributes": {"item": g["item"]},
    }
    return fields, _by(g["channel"], "question")


@phrase(
    rf"customer {QUOTED.format('customer')} emails {WORD.format('team')} about case "
    rf"{QUOTED.format('case')}"
)
def _emails(desk: Desk, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "case_id": g["case"],
        "channel": "email",
        "direction": "inbound",
        "type": "message",
        "team": g["team"],
    }
    return fields, {"email", "customer's email"}


@phrase(
    rf"customer {QUOTED.format('customer')} writes (?:again )?on case {QUOTED.format('case')} "
    rf"by {WORD.format('channel')}"
)
def _writes(desk: Desk, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "case_id": g["case"],
        "channel": g["channel"],
        "direction": "inbound",
        "type": "message",
    }
    return fields, _by(g["channel"], "message", "customer's message")


@phrase(
    rf"{WORD.format('team')} (?:replies|replied) on case {QUOTED.format('case')} "
    rf"by {WORD.format('channel')}"
)
def _replies(desk: Desk, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": desk.customer_of(g["case"]),
        "case_id": g["case"],
        "channel": g["channel"],
        "direction": "outbound",
        "type": "message",
        "team": g["team"],
    }
    return fields, _by(g["channel"], "reply")


@phrase(rf"{WORD.format('team')} sets case {QUOTED.format('case')} to {QUOTED.format('status')}")
def _status(desk: Desk, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": desk.customer_of(g["case"]),
        "case_id": g["case"],
        "channel": "other",
        "direction": "internal",
        "type": "status",
        "team": g["team"],
        "attributes": {"status": g["status"]},
    }
    return fields, {"status change"}


@phrase(rf"{WORD.format('team')} closes case {QUOTED.format('case')} as {QUOTED.format('reason')}")
def _closes(desk: Desk, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": desk.customer_of(g["case"]),
        "case_id": g["case"],
        "channel": "other",
        "direction": "internal",
        "type": "closed",
        "team": g["team"],
        "attributes": {"reason": g["reason"]},
    }
    return fields, {"closure"}


@phrase(
    rf"customer {QUOTED.format('customer')} opens case {QUOTED.format('case')} with "
    rf"{WORD.format('team')} by {WORD.format('channel')}"
)
def _opens(desk: Desk, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "case_id": g["case"],
        "channel": g["channel"],
        "direction": "inbound",
        "type": "case_opened",
        "team": g["team"],
    }
    return fields, _by(g["channel"], "case opening")


@phrase(rf"{WORD.format('team')} hands case {QUOTED.format('case')} over to {WORD.format('to')}")
def _handoff(desk: Desk, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": desk.customer_of(g["case"]),
        "case_id": g["case"],
        "channel": "other",
        "direction": "internal",
        "type": "handoff",
        "team": g["team"],
        "attributes": {"to": g["to"]},
    }
    return fields, {"handoff", f"handoff to {g['to']}"}


@phrase(rf"{WORD.format('team')} promises {QUOTED.format('customer')} a callback")
def _callback_promised(desk: Desk, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "channel": "phone",
        "direction": "outbound",
        "type": "callback_promised",
        "team": g["team"],
    }
    return fields, {"callback promise"}


@phrase(rf"{WORD.format('team')} (?:calls|called) {QUOTED.format('customer')}(?: back)?")
def _calls(desk: Desk, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "channel": "phone",
        "direction": "outbound",
        "type": "call",
        "team": g["team"],
    }
    return fields, {"phone call", "call"}


@phrase(rf"{WORD.format('team')} cancels the callback for {QUOTED.format('customer')}")
def _callback_cancelled(desk: Desk, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "channel": "phone",
        "direction": "internal",
        "type": "callback_cancelled",
        "team": g["team"],
    }
    return fields, {"cancellation"}


@phrase(rf"customer {QUOTED.format('customer')} answers the survey with a score of (?P<score>\d+)")
def _survey_scored(desk: Desk, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "channel": "web",
        "direction": "inbound",
        "type": "survey_response",
        "attributes": {"nps": int(g["score"])},
    }
    return fields, {"survey response"}


@phrase(rf"customer {QUOTED.format('customer')} answers the survey without a score")
def _survey_unscored(desk: Desk, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "channel": "web",
        "direction": "inbound",
        "type": "survey_response",
    }
    return fields, {"survey response"}


@phrase(
    rf"{WORD.format('team')} follows up with {QUOTED.format('customer')} by "
    rf"{WORD.format('channel')}"
)
def _follows_up(desk: Desk, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "channel": g["channel"],
        "direction": "outbound",
        "type": "follow_up",
        "team": g["team"],
    }
    return fields, _by(g["channel"], "follow-up")


@phrase(
    rf"(?:customer|traveller) {QUOTED.format('customer')} reports a problem with booking "
    rf"{QUOTED.format('case')} by {WORD.format('channel')}"
)
def _problem(desk: Desk, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "case_id": g["case"],
        "channel": g["channel"],
        "direction": "inbound",
        "type": "problem_reported",
    }
    return fields, _by(g["channel"], "problem report")


@phrase(
    rf"{WORD.format('team')} (?:resolves|resolved) the problem with booking {QUOTED.format('case')}"
)
def _resolved(desk: Desk, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": desk.customer_of(g["case"]),
        "case_id": g["case"],
        "channel": "other",
        "direction": "internal",
        "type": "resolved",
        "team": g["team"],
    }
    return fields, {"resolution"}


@phrase(
    rf"(?:customer|traveller) {QUOTED.format('customer')} cancels booking {QUOTED.format('case')}"
)
def _booking_cancelled(desk: Desk, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "case_id": g["case"],
        "channel": "app",
        "direction": "inbound",
        "type": "booking_cancelled",
    }
    return fields, {"cancellation"}


@phrase(
    rf"customer {QUOTED.format('customer')} complains to {WORD.format('team')} about case "
    rf"{QUOTED.format('case')} by {WORD.format('channel')}"
)
def _complains(desk: Desk, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "case_id": g["case"],
        "channel": g["channel"],
        "direction": "inbound",
        "type": "complaint",
        "team": g["team"],
    }
    return fields, _by(g["channel"], "complaint")


@phrase(
    rf"{WORD.format('team')} (?:resolves|resolved) the complaint on case {QUOTED.format('case')}"
)
def _complaint_resolved(desk: Desk, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": desk.customer_of(g["case"]),
        "case_id": g["case"],
        "channel": "email",
        "direction": "outbound",
        "type": "complaint_resolved",
        "team": g["team"],
    }
    return fields, {"complaint resolution"}


def _record_step(pattern: re.Pattern[str], build: Build) -> Callable[..., str]:
    def send_record(desk: Desk, when: datetime, **groups: str) -> str:
        fields, names = build(desk, groups)
        return desk.send(when, names, **fields)

    # pytest-bdd passes a step only the arguments its signature names: name every group.
    params = [Parameter("desk", Parameter.POSITIONAL_OR_KEYWORD)] + [
        Parameter(name, Parameter.KEYWORD_ONLY) for name in pattern.groupindex
    ]
    send_record.__signature__ = Signature(params)  # type: ignore[attr-defined]
    send_record.__name__ = build.__name__.lstrip("_")
    return send_record


# Any keyword: a record can set the scene (Given), be what happens (When), or follow (And).
for _pattern, _build in PHRASES:
    step(parsers.re(_pattern.pattern), converters={"when": parse_moment})(
        _record_step(_pattern, _build)
    )


@step(parsers.re(r"a record arrives late: (?P<text>.+)"))
def a_record_arrives_late(desk: Desk, text: str) -> str:
    """Ingest a record earlier than something the engine already judged (a record or the
    clock); the engine evaluates its scope again."""
    for pattern, build in PHRASES:
        found = pattern.fullmatch(text)
        if found is not None:
            groups = found.groupdict()
            when = parse_moment(groups.pop("when"))
            fields, names = build(desk, groups)
            return desk.send(when, names, late=True, **fields)
    raise ValueError(f"no record phrase matches {text!r}; see features/README.md for the list")


# --- the clock -----------------------------------------------------------------------------------


@step(parsers.re(rf"the clock reaches {WHEN}"), converters={"when": parse_moment})
def the_clock_reaches(desk: Desk, when: datetime) -> None:
    desk.advance(when)


# --- outcomes ------------------------------------------------------------------------------------


@step(
    parsers.re(rf"the {QUOTED.format('promise')} promise is {STATE} for {QUOTED.format('who')}"),
    target_fixture="outcome",
)
def the_promise_is(desk: Desk, promise: str, state: str, who: str) -> Outcome:
    """The latest opportunity (by opening time) of the promise for that customer or case."""
    found = desk.outcomes(promise, who)
    assert found, f'"{promise}" has no opportunity for "{who}"; outcomes: {desk.service.outcomes()}'
    latest = max(found, key=lambda o: (o.opened_at, o.key))
    assert latest.state == _state(state), (
        f'expected "{promise}" to be {state} for "{who}", but it is {_words(latest.state)}: '
        + desk.describe([latest])
    )
    return latest


@step(
    parsers.re(
        rf"the {QUOTED.format('promise')} promise has no opportunity for {QUOTED.format('who')}"
    )
)
def no_opportunity(desk: Desk, promise: str, who: str) -> None:
    found = desk.outcomes(promise, who)
    assert not found, f'expected nothing for "{who}", found {desk.describe(found)}'


@step(parsers.re(rf"the {QUOTED.format('promise')} outcomes for {QUOTED.format('who')} are:"))
def the_outcomes_are(desk: Desk, promise: str, who: str, datatable: list[list[str]]) -> None:
    """A table with an ``opened`` and a ``state`` column, in order of opening."""
    header, *rows = datatable
    if header[:2] != ["opened", "state"]:
        raise ValueError("the table's columns are: | opened | state |")
    found = sorted(desk.outcomes(promise, who), key=lambda o: (o.opened_at, o.key))
    expected = [(parse_moment(opened), _state(state)) for opened, state, *_ in rows]
    actual = [(o.opened_at, o.state) for o in found]
    assert actual == expected, f'"{promise}" for "{who}": {desk.describe(found)}'


def _the(outcome: Outcome | None) -> Outcome:
    if outcome is None:
        raise ValueError('say which outcome first: Then the "<promise>" promise is ... for "..."')
    return outcome


@step(parsers.re(rf"it (?:is|was) due (?:on|at) {WHEN}"), converters={"when": parse_moment})
def it_is_due(outcome: Outcome | None, when: datetime) -> None:
    due = _the(outcome).due_at
    assert due == when, f"due at {due and due.isoformat()}, not {when.isoformat()}"


@step(parsers.re(r"it has no due time while it is paused"))
def it_has_no_due_time(outcome: Outcome | None) -> None:
    assert _the(outcome).due_at is None, f"it is due at {_the(outcome).due_at}"


@step(parsers.re(rf"it was decided (?:on|at) {WHEN}"), converters={"when": parse_moment})
def it_was_decided(outcome: Outcome | None, when: datetime) -> None:
    decided = _the(outcome).decided_at
    assert decided == when, f"decided at {decided and decided.isoformat()}, not {when.isoformat()}"


@step(
    parsers.re(
        r"the evidence names the (?P<what>[a-z][\w' -]*?) of "
        r"(?P<day>[A-Za-z]+ \d{4}-\d{2}-\d{2})(?: (?P<time>\d{2}:\d{2}(?: \S+)?))?"
    )
)
def the_evidence_names(
    desk: Desk, outcome: Outcome | None, what: str, day: str, time: str | None
) -> None:
    """A record in the evidence is called ``what`` and was written for that day (or moment)."""
    evidence = [desk.written[e] for e in _the(outcome).evidence if e in desk.written]
    if time is None:
        on_day = parse_day(day)
        hits = [w for w in evidence if what in w.names and w.day == on_day]
    else:
        moment = parse_moment(f"{day} {time}")
        hits = [w for w in evidence if what in w.names and w.occurred_at == moment]
    names = ", ".join(desk.name(e) for e in _the(outcome).evidence)
    assert hits, f"the evidence does not name the {what} of {day}: it is {names}"


@step(parsers.re(r"the evidence lists (?P<count>\d+) records?"))
def the_evidence_lists(desk: Desk, outcome: Outcome | None, count: str) -> None:
    evidence = _the(outcome).evidence
    names = ", ".join(desk.name(e) for e in evidence)
    assert len(evidence) == int(count), f"the evidence has {len(evidence)}: {names}"


# --- alerts --------------------------------------------------------------------------------------


_TIMES = {"once": 1, "twice": 2}


@step(
    parsers.re(
        rf"the {QUOTED.format('team')} team is alerted (?:(?P<times>once|twice|\d+ times) )?"
        rf"that {QUOTED.format('promise')} is (?P<state>at risk|broken) for {QUOTED.format('who')}"
    )
)
def the_team_is_alerted(
    desk: Desk, team: str, promise: str, state: str, who: str, times: str | None
) -> None:
    """At least one such alert; exactly ``times`` of them when the step says how many."""
    alerts = desk.alerts(team=team, promise=promise, kind="alert")
    hits = [
        a
        for a in alerts
        if a.state == _state(state) and who in (a.customer_id, (a.outcome or {}).get("scope"))
    ]
    seen = [f"{_words(a.state)} for {a.customer_id}" for a in alerts] or ["none"]
    assert hits, f'no "{state}" alert to {team} for "{who}"; its alerts: {", ".join(seen)}'
    if times is not None:
        expected = _TIMES.get(times) or int(times.split()[0])
        assert len(hits) == expected, f'{len(hits)} "{state}" alerts to {team}, not {times}'


@step(parsers.re(rf"nobody is alerted about {QUOTED.format('promise')}"))
def nobody_is_alerted(desk: Desk, promise: str) -> None:
    alerts = desk.alerts(promise=promise)
    seen = ", ".join(f"{a.kind} {_words(a.state)} to {a.team}" for a in alerts)
    assert not alerts, f"alerts were raised: {seen}"


@step(parsers.re(rf"a correction is sent(?: to the {QUOTED.format('team')} team)?"))
def a_correction_is_sent(desk: Desk, outcome: Outcome | None, team: str | None) -> None:
    """A correction of an earlier alert, for the outcome looked at last (if any)."""
    corrections = desk.alerts(kind="correction", team=team)
    if outcome is not None:
        corrections = [
            c
            for c in corrections
            if c.promise == outcome.promise and (c.outcome or {}).get("scope") == outcome.scope
        ]
    everything = ", ".join(f"{a.kind} {_words(a.state)} to {a.team}" for a in desk.alerts())
    assert corrections, f"no correction was sent; alerts: {everything or 'none'}"
    assert all(c.corrects for c in corrections)


@step(parsers.re(r"no correction is sent"))
def no_correction_is_sent(desk: Desk) -> None:
    corrections = desk.alerts(kind="correction")
    assert not corrections, f"{len(corrections)} correction(s) were sent"
