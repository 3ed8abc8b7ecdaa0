"""The shipped step library: every step a feature may use, for any catalog.

Two families. The readable phrases (``engine.authoring.phrases``) send the records of the
shipped promises in English sentences. The generic steps work for any record shape: a table
of records (``these interactions:``), one record by its fields, and outcomes and alerts
checked one by one or as a table. Every step works after any keyword (Given, When, Then,
And, But). features/README.md lists them all; keep it in step with this file.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, tzinfo
from typing import Any

from engine.authoring.dates import parse_day, parse_moment, parse_zone
from engine.authoring.library import Library, Mismatch, Table
from engine.authoring.phrases import PHRASES, QUOTED, WHEN, Build
from engine.authoring.world import World, alert_text, moment_text, words
from engine.outcomes import Outcome
from rules.models import RECORD_FIELDS

STATE = r"(?P<state>pending|at risk|kept|broken|cancelled)"
ZONE = r"(?:, times in (?P<zone>[^\s:]+))?"
MOMENT = (
    r"(?P<when>[A-Za-z]+ \d{4}-\d{2}-\d{2} \d{2}:\d{2}"
    r"(?: (?:[A-Za-z_]+(?:/[A-Za-z_+\-]+)*|[+-]\d{2}:\d{2}))?)"
)
"""A moment inside a step that goes on after it (``... on <when> with ...``)."""

LIBRARY = Library([])
step = LIBRARY.step


def _state(text: str) -> str:
    return text.replace(" ", "_")


def _rows(table: Table | None, step_text: str) -> list[dict[str, str]]:
    if not table or len(table) < 2:
        raise ValueError(f"{step_text!r} needs a table: a header row and a row per item")
    header, *rows = table
    return [dict(zip(header, row, strict=True)) for row in rows]


def _columns(header: Iterable[str], known: Iterable[str], what: str) -> None:
    allowed = list(known)
    unknown = [c for c in header if c not in allowed and not c.startswith("attributes.")]
    if unknown:
        raise ValueError(
            f"unknown column {unknown[0]!r} in the {what} table: columns are " + ", ".join(allowed)
        )


# --- records -------------------------------------------------------------------------------------

RecordBuild = Callable[[World, dict[str, Any]], tuple[datetime, dict[str, Any], set[str]]]
RECORD_STEPS: list[tuple[re.Pattern[str], RecordBuild]] = []
"""Every step that sends one record, for "a record arrives late: <step>"."""


def record_step(pattern: str) -> Callable[[RecordBuild], RecordBuild]:
    def register(build: RecordBuild) -> RecordBuild:
        RECORD_STEPS.append((re.compile(pattern), build))

        @step(pattern)
        def send(world: World, groups: dict[str, Any], table: Table | None) -> None:
            when, fields, names = build(world, groups)
            world.send(when, names, **fields)

        return build

    return register


def _phrase_step(pattern: re.Pattern[str], build: Build) -> None:
    @record_step(pattern.pattern)
    def phrase_record(world: World, groups: dict[str, Any]) -> Any:
        when = parse_moment(groups.pop("when"))
        fields, names = build(world, groups)
        return when, fields, names


for _pattern, _build in PHRASES:
    _phrase_step(_pattern, _build)


def _value(text: str) -> Any:
    """An attribute value: a JSON number, true, false, null or "quoted text"; else text."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, str | int | float | bool) or value is None else text


def record_fields(cells: dict[str, str]) -> dict[str, Any]:
    """A record's fields from ``field -> text``: record fields as text, ``attributes.a.b``
    nested (values read by :func:`_value`); empty cells are left out."""
    fields: dict[str, Any] = {}
    for name, text in cells.items():
        if text == "":
            continue
        if name.startswith("attributes."):
            *path, last = name.split(".")[1:]
            node = fields.setdefault("attributes", {})
            for part in path:
                node = node.setdefault(part, {})
            node[last] = _value(text)
        else:
            fields[name] = text
    return fields


_TIME_COLUMNS = ("occurred_at", "at")
_FIELD = re.compile(r'(?P<name>[a-z_]+(?:\.[\w-]+)*) "(?P<value>[^"]*)"')


@record_step(rf"(?:an interaction|a record) on {MOMENT} with (?P<fields>.+)")
def one_record(world: World, groups: dict[str, Any]) -> Any:
    """One record by its fields: ``with type "call", customer_id "C-1", attributes.x "7"``."""
    text = groups["fields"]
    pairs = _FIELD.findall(text)
    rebuilt = ", ".join(f'{n} "{v}"' for n, v in pairs)
    if not pairs or re.sub(r",? and ", ", ", text) != rebuilt:
        raise ValueError(
            f'cannot read the fields {text!r}: write them as name "value" pairs separated '
            'by commas, e.g. type "call", customer_id "C-1", attributes.item "address"'
        )
    cells = dict(pairs)
    _columns(cells, [f for f in RECORD_FIELDS if f != "id"], "record")
    return parse_moment(groups["when"]), record_fields(cells), set()


@step(rf"these (?:interactions|records){ZONE}:", table=True)
def these_interactions(world: World, groups: dict[str, Any], table: Table | None) -> None:
    """A table of records, one a row, sent in row order: a time column (``occurred_at`` or
    ``at``), any record field, and ``attributes.<path>`` columns."""
    rows = _rows(table, "these interactions:")
    zone = groups.get("zone") or "UTC"
    parse_zone(zone)
    _columns(rows[0], (*_TIME_COLUMNS, *RECORD_FIELDS), "interactions")
    time_column = next((c for c in _TIME_COLUMNS if c in rows[0]), None)
    if time_column is None:
        raise ValueError("the interactions table needs an occurred_at (or at) column")
    for row in rows:
        cells = {k: v for k, v in row.items() if k != time_column}
        world.send(parse_moment(row[time_column], zone), set(), **record_fields(cells))


@step(r"a record arrives late: (?P<text>.+)")
def a_record_arrives_late(world: World, groups: dict[str, Any], table: Table | None) -> None:
    """A record earlier than something the engine already judged (a record or the clock);
    the engine evaluates its scope again. Any one-record step may follow the colon."""
    for pattern, build in RECORD_STEPS:
        found = pattern.fullmatch(groups["text"])
        if found is not None:
            when, fields, names = build(world, found.groupdict())
            world.send(when, names, late=True, **fields)
            return
    raise ValueError(f"no record step matches {groups['text']!r}; see features/README.md")


# --- the clock -----------------------------------------------------------------------------------


@step(rf"the clock reaches {WHEN}")
def the_clock_reaches(world: World, groups: dict[str, Any], table: Table | None) -> None:
    """Moves the engine's clock, as a running server does: deadlines that fall due are decided."""
    world.advance(parse_moment(groups["when"]))


# --- outcomes, one at a time ---------------------------------------------------------------------


def _the(world: World) -> Outcome:
    if world.outcome is None:
        raise ValueError('say which outcome first: Then the "<promise>" promise is ... for "..."')
    return world.outcome


def _all(world: World, promise: str, who: str) -> str:
    found = world.outcomes(promise, who)
    return "\n".join(world.describe(o) for o in found) or f'no opportunity for "{who}"'


@step(rf"the {QUOTED.format('promise')} promise is {STATE} for {QUOTED.format('who')}")
def the_promise_is(world: World, groups: dict[str, Any], table: Table | None) -> None:
    """The latest opportunity (by opening time) of the promise for that customer or case;
    the steps below (``it ...``, ``the evidence ...``) look at it."""
    promise, state, who = groups["promise"], groups["state"], groups["who"]
    found = world.outcomes(promise, who)
    if not found:
        raise Mismatch(f"{promise}: {state} for {who}", _all(world, promise, who))
    world.outcome = found[-1]
    if world.outcome.state != _state(state):
        raise Mismatch(f"{promise}: {state} for {who}", world.describe(world.outcome))


@step(rf"the {QUOTED.format('promise')} promise has no opportunity for {QUOTED.format('who')}")
def no_opportunity(world: World, groups: dict[str, Any], table: Table | None) -> None:
    promise, who = groups["promise"], groups["who"]
    if world.outcomes(promise, who):
        raise Mismatch(f'{promise}: no opportunity for "{who}"', _all(world, promise, who))


@step(rf"it (?:is|was) due (?:on|at) {WHEN}")
def it_is_due(world: World, groups: dict[str, Any], table: Table | None) -> None:
    _compare_time(world, "due", _the(world).due_at, groups["when"])


@step(r"it has no due time while it is paused")
def it_has_no_due_time(world: World, groups: dict[str, Any], table: Table | None) -> None:
    if _the(world).due_at is not None:
        raise Mismatch("no due time (paused)", world.describe(_the(world)))


@step(rf"it was decided (?:on|at) {WHEN}")
def it_was_decided(world: World, groups: dict[str, Any], table: Table | None) -> None:
    _compare_time(world, "decided", _the(world).decided_at, groups["when"])


@step(rf"it is at risk from {WHEN}")
def it_is_at_risk_from(world: World, groups: dict[str, Any], table: Table | None) -> None:
    """When a deadline became (or becomes) at risk: its ``warn_at``."""
    _compare_time(world, "at risk from", _the(world).warn_at, groups["when"])


def _compare_time(world: World, what: str, actual: datetime | None, written: str) -> None:
    expected = parse_moment(written)
    if actual != expected:
        raise Mismatch(f"{what} {written}", world.describe(_the(world), expected.tzinfo))


@step(
    r"the evidence names the (?P<what>[a-z][\w' -]*?) of "
    r"(?P<day>[A-Za-z]+ \d{4}-\d{2}-\d{2})(?: (?P<time>\d{2}:\d{2}(?: \S+)?))?"
)
def the_evidence_names(world: World, groups: dict[str, Any], table: Table | None) -> None:
    """A record in the evidence is called ``what`` and was written for that day (or moment)."""
    what, day, time = groups["what"], groups["day"], groups["time"]
    evidence = [world.written[e] for e in _the(world).evidence if e in world.written]
    if time is None:
        on_day = parse_day(day)
        hits = [w for w in evidence if what in w.names and w.day == on_day]
    else:
        moment = parse_moment(f"{day} {time}")
        hits = [w for w in evidence if what in w.names and w.occurred_at == moment]
    if not hits:
        raise Mismatch(
            f"evidence: the {what} of {day}{' ' + time if time else ''}",
            "evidence: " + ", ".join(map(world.name, _the(world).evidence)),
        )


@step(r"the evidence lists (?P<count>\d+) records?")
def the_evidence_lists(world: World, groups: dict[str, Any], table: Table | None) -> None:
    evidence = _the(world).evidence
    if len(evidence) != int(groups["count"]):
        raise Mismatch(
            f"{groups['count']} evidence record(s)",
            f"{len(evidence)}: " + ", ".join(map(world.name, evidence)),
        )


def _evidence(world: World, written: str) -> set[str]:
    """Records named by id or by position (``#2``: the second record the scenario sent)."""
    named = {n.strip() for n in re.split(r",|\band\b", written) if n.strip()}
    by_position = {f"#{w.position}": w.id for w in world.written.values()}
    unknown = sorted(n for n in named if n not in world.written and n not in by_position)
    if unknown:
        raise ValueError(
            f"no record {unknown[0]!r} was sent in this scenario; records: "
            + (", ".join(f"{w.id} (#{w.position})" for w in world.written.values()) or "none")
        )
    return {by_position.get(n, n) for n in named}


@step(r"the evidence is (?P<records>.+)")
def the_evidence_is(world: World, groups: dict[str, Any], table: Table | None) -> None:
    """Exactly these records, by id or position: ``the evidence is r001 and #3``."""
    outcome = _the(world)
    if set(outcome.evidence) != _evidence(world, groups["records"]):
        raise Mismatch(
            f"evidence {groups['records']}",
            "evidence " + ", ".join(map(world.name, outcome.evidence)),
        )


# --- outcomes, as a table ------------------------------------------------------------------------

OUTCOME_COLUMNS = ("for", "state", "opened", "due", "decided", "at risk from", "evidence")
_TIME_FIELDS = {
    "opened": "opened_at",
    "due": "due_at",
    "decided": "decided_at",
    "at risk from": "warn_at",
}


def _cell(world: World, outcome: Outcome, column: str, zone: tzinfo) -> str:
    """What the engine decided, written as the table's column writes it."""
    if column == "for":
        return outcome.scope
    if column == "state":
        return words(outcome.state)
    if column == "evidence":
        return ", ".join(outcome.evidence)
    moment = getattr(outcome, _TIME_FIELDS[column])
    return "-" if moment is None else moment_text(moment, zone).removesuffix(f" {zone}")


def _matches(world: World, outcome: Outcome, row: dict[str, str], zone: str) -> bool:
    """Each non-empty cell agrees with the outcome; ``-`` means no such time."""
    for column, text in row.items():
        if text == "":
            continue
        if column == "for":
            ok = text in (outcome.scope, outcome.customer_id)
        elif column == "state":
            ok = _state(text) == outcome.state
        elif column == "evidence":
            ok = set(outcome.evidence) == (set() if text == "-" else _evidence(world, text))
        else:
            actual = getattr(outcome, _TIME_FIELDS[column])
            ok = actual is None if text == "-" else actual == parse_moment(text, zone)
        if not ok:
            return False
    return True


def _grid(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    )


@step(rf"the outcomes of {QUOTED.format('promise')} are{ZONE}:", table=True)
def the_outcomes_of(world: World, groups: dict[str, Any], table: Table | None) -> None:
    """Every opportunity of the promise, in order of opening, one row each; only the columns
    given are compared (``for state opened due decided "at risk from" evidence``); an empty
    cell is not compared, ``-`` means "none" (no due time, no evidence)."""
    rows = _rows(table, "the outcomes of ... are:")
    _columns(rows[0], OUTCOME_COLUMNS, "outcomes")
    zone = groups.get("zone") or "UTC"
    tz = parse_zone(zone)
    found = world.outcomes(groups["promise"])
    header = list(rows[0])
    agree = len(found) == len(rows) and all(
        _matches(world, o, row, zone) for o, row in zip(found, rows, strict=True)
    )
    if not agree:
        actual = [header] + [[_cell(world, o, c, tz) for c in header] for o in found]
        expected = [header] + [[row[c] for c in header] for row in rows]
        raise Mismatch(_grid(expected), _grid(actual) if found else "no opportunity at all")


@step(rf"the {QUOTED.format('promise')} outcomes for {QUOTED.format('who')} are:", table=True)
def the_outcomes_for(world: World, groups: dict[str, Any], table: Table | None) -> None:
    """A table with an ``opened`` and a ``state`` column, in order of opening."""
    rows = _rows(table, "the ... outcomes for ... are:")
    if list(rows[0])[:2] != ["opened", "state"]:
        raise ValueError("the table's columns are: | opened | state |")
    found = world.outcomes(groups["promise"], groups["who"])
    expected = [(parse_moment(r["opened"]), _state(r["state"])) for r in rows]
    if [(o.opened_at, o.state) for o in found] != expected:
        raise Mismatch(
            "\n".join(f"{r['opened']}: {r['state']}" for r in rows),
            _all(world, groups["promise"], groups["who"]),
        )


# --- alerts --------------------------------------------------------------------------------------
#
# Alerts are read from the outbox: they are written with the outcome, so no dispatcher runs.

_TIMES = {"once": 1, "twice": 2}


def _all_alerts(world: World) -> str:
    return "\n".join(map(alert_text, world.alerts())) or "no alerts"


@step(
    rf"the {QUOTED.format('team')} team is alerted (?:(?P<times>once|twice|\d+ times) )?"
    rf"that {QUOTED.format('promise')} is (?P<state>at risk|broken) for {QUOTED.format('who')}"
)
def the_team_is_alerted(world: World, groups: dict[str, Any], table: Table | None) -> None:
    """At least one such alert; exactly ``times`` of them when the step says how many."""
    team, promise, state, who = groups["team"], groups["promise"], groups["state"], groups["who"]
    world.promise(promise)
    hits = [
        a
        for a in world.alerts(team=team, promise=promise, kind="alert")
        if a.state == _state(state) and who in (a.customer_id, (a.outcome or {}).get("scope"))
    ]
    times = groups["times"]
    expected = None if times is None else _TIMES.get(times) or int(times.split()[0])
    if not hits or (expected is not None and len(hits) != expected):
        raise Mismatch(
            f"alert to {team}: {promise} is {state} for {who}" + (f" ({times})" if times else ""),
            _all_alerts(world),
        )


@step(rf"nobody is alerted about {QUOTED.format('promise')}")
def nobody_is_alerted(world: World, groups: dict[str, Any], table: Table | None) -> None:
    if world.alerts(promise=world.promise(groups["promise"])):
        raise Mismatch(f"no alert about {groups['promise']}", _all_alerts(world))


@step(r"no alert is sent")
def no_alert_is_sent(world: World, groups: dict[str, Any], table: Table | None) -> None:
    if world.alerts():
        raise Mismatch("no alerts", _all_alerts(world))


@step(rf"a correction is sent(?: to the {QUOTED.format('team')} team)?")
def a_correction_is_sent(world: World, groups: dict[str, Any], table: Table | None) -> None:
    """A correction of an earlier alert, for the outcome looked at last (if any)."""
    corrections = world.alerts(kind="correction", team=groups["team"])
    if world.outcome is not None:
        outcome = world.outcome
        corrections = [
            c
            for c in corrections
            if c.promise == outcome.promise and (c.outcome or {}).get("scope") == outcome.scope
        ]
    if not corrections or not all(c.corrects for c in corrections):
        raise Mismatch(f"a correction to {groups['team'] or 'a team'}", _all_alerts(world))


@step(r"no correction is sent")
def no_correction_is_sent(world: World, groups: dict[str, Any], table: Table | None) -> None:
    if world.alerts(kind="correction"):
        raise Mismatch("no correction", _all_alerts(world))


ALERT_COLUMNS = ("kind", "team", "promise", "state", "for")


def _alert_row(alert: Any, columns: list[str]) -> tuple[str, ...]:
    values = {
        "kind": alert.kind,
        "team": alert.team,
        "promise": alert.promise,
        "state": words(alert.state),
        "for": (alert.outcome or {}).get("scope") or alert.customer_id or "",
    }
    return tuple(values[c] for c in columns)


@step(r"these alerts are sent:", table=True)
def these_alerts_are_sent(world: World, groups: dict[str, Any], table: Table | None) -> None:
    """Exactly these alerts and corrections, in any order; only the columns given are
    compared (``kind team promise state for``; kind is ``alert`` or ``correction``; ``for``
    is the outcome's scope: the customer, or the case of a promise per case)."""
    rows = _rows(table, "these alerts are sent:")
    header = list(rows[0])
    _columns(header, ALERT_COLUMNS, "alerts")
    if any(c.startswith("attributes.") for c in header):
        raise ValueError("the alerts table has no attributes columns")
    expected = Counter(tuple(r[c] for c in header) for r in rows)
    actual = Counter(_alert_row(a, header) for a in world.alerts())
    if expected != actual:
        raise Mismatch(
            _grid([header, *map(list, sorted(expected.elements()))]),
            _grid([header, *map(list, sorted(actual.elements()))]) if actual else "no alerts",
        )
