"""The promise language: the shipped catalog loads, and every mistake is named at its line."""

from __future__ import annotations

import dataclasses
import shutil
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from rules.durations import BusinessDays, format_duration, parse_duration
from rules.errors import DefinitionError
from rules.loader import check_directory, load_catalog
from rules.models import (
    BurnRate,
    Compare,
    DeadlinePromise,
    Equals,
    Exists,
    LimitPromise,
    Matches,
    NeverPromise,
    Not,
    OneOf,
)
from rules.version import canonical

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "tests" / "fixtures" / "bad_catalog"

# (file, line, words the message must contain) for every mistake in the bad catalog.
EXPECTED_BAD = [
    ("bad-duration.yaml", 8, "bad duration '8 hours'"),
    ("bad-fields.yaml", 5, "'customer' is not a record field (did you mean 'customer_id'?)"),
    ("bad-fields.yaml", 8, "'item' is not a record field (did you mean 'attributes.item'?)"),
    ("bad-kind.yaml", 4, "unknown kind 'deadlin' (did you mean 'deadline'?)"),
    ("bad-regex.yaml", 6, "invalid regex 'policy_(number'"),
    ("bad-shares.yaml", 9, "warn_at must be a share in (0, 1]"),
    ("bad-shares.yaml", 10, "objective must be a share in (0, 1]"),
    ("calendars.yaml", 3, "unknown time zone 'Europe/Londn'"),
    ("calendars.yaml", 4, "unknown day 'fry' (did you mean 'fri'?)"),
    ("calendars.yaml", 7, "hours '18:00-09:00' end before they start"),
    ("calendars.yaml", 8, "no public holidays known for country 'XX'"),
    ("duplicate-b.yaml", 1, "duplicate promise id 'same-id': also defined at"),
    ("empty-match.yaml", 6, "empty match"),
    ("pause-no-resume.yaml", 8, "'pause' needs a 'resume' match"),
    ("syntax-error.yaml", 4, "YAML syntax error"),
    ("teams.yaml", 6, "secrets come only from the environment"),
    ("teams.yaml", 7, "found 'emial' (did you mean 'email'?)"),
    ("teams.yaml", 8, "a Slack incoming-webhook URL is a secret"),
    ("teams.yaml", 11, "unknown key 'colour'"),
    ("teams.yaml", 14, "unknown time zone 'Europe/Pariss'"),
    ("unknown-key.yaml", 1, "missing required key 'within'"),
    ("unknown-key.yaml", 8, "unknown key 'withn' (did you mean 'within'?)"),
    ("unknown-refs.yaml", 3, "unknown team 'suport' (did you mean 'support'?)"),
    ("unknown-refs.yaml", 9, "unknown calendar 'uk-ofice'"),
    ("wrong-types.yaml", 2, "'title': input should be a valid string"),
    ("wrong-types.yaml", 7, "'max': input should be a valid integer, got 'two'"),
]


def write_catalog(tmp_path: Path, files: dict[str, str]) -> Path:
    """A catalog directory holding the sample teams and calendars plus ``files``."""
    for name in ("teams.yaml", "calendars.yaml"):
        shutil.copy(ROOT / "promises" / name, tmp_path / name)
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    return tmp_path


def problems_of(directory: Path) -> list[str]:
    return [f"{p.file.name}:{p.line}: {p.message}" for p in check_directory(directory).errors]


def test_shipped_catalog_loads_without_problems() -> None:
    result = check_directory(ROOT / "promises")
    assert result.problems == []
    catalog = result.catalog
    assert set(catalog.promises) == {
        "ask-once",
        "complaint-3bd",
        "email-reply-1bd",
        "callback-2h",
        "detractor-follow-up-48h",
        "two-handoffs",
        "travel-guarantee",
    }
    assert {p.kind for p in catalog.promises.values()} == {"deadline", "never", "limit"}
    for promise in catalog.promises.values():
        assert promise.owner in catalog.teams


def test_every_mistake_is_reported_at_its_file_and_line() -> None:
    result = check_directory(BAD)
    assert result.catalog is None
    got = [(p.file.name, p.line, p.message) for p in result.errors]
    for file, line, words in EXPECTED_BAD:
        assert any(f == file and ln == line and words in m for f, ln, m in got), (
            f"expected {file}:{line}: ...{words}...; got:\n" + "\n".join(map(str, got))
        )
    assert len(got) == len(EXPECTED_BAD), "unexpected extra problems:\n" + "\n".join(map(str, got))


def test_load_catalog_raises_with_every_problem() -> None:
    with pytest.raises(DefinitionError) as caught:
        load_catalog(BAD)
    assert len(caught.value.problems) == len(EXPECTED_BAD)
    assert "bad-regex.yaml:6:" in str(caught.value)


def test_missing_directory_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    result = check_directory(tmp_path / "nowhere")
    assert result.catalog is None
    assert "no such directory" in result.errors[0].message


def test_match_conditions_parse_into_typed_conditions(tmp_path: Path) -> None:
    write_catalog(
        tmp_path,
        {
            "all-ops.yaml": """\
        id: all-ops
        title: Every condition form
        owner: operations
        kind: limit
        scope: case_id
        count:
          type: handoff
          channel: [phone, email]
          attributes.score: {gte: 3}
          attributes.reason: {ne: spam}
          agent: {exists: true}
          attributes.ref: {matches: "K-\\\\d+"}
          team: {not: claims}
        max: 1
        """
        },
    )
    promise = load_catalog(tmp_path).promises["all-ops"]
    assert isinstance(promise, LimitPromise)
    assert dict(promise.count.conditions) == {
        "type": Equals("handoff"),
        "channel": OneOf(("phone", "email")),
        "attributes.score": Compare("gte", 3),
        "attributes.reason": Compare("ne", "spam"),
        "agent": Exists(True),
        "attributes.ref": Matches("K-\\d+", core=None),
        "team": Not(Equals("claims")),
    }


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("{not: {matches: 'a.*'}}", "'not' around 'matches' cannot be expressed"),
        ("{between: 3}", "unknown operator 'between'"),
        ("{gte: three}", "gte compares numbers, got 'three'"),
        ("{exists: maybe}", "exists takes true or false"),
        ("{matches: 'a(?=b)'}", "not supported by the rules core"),
        ("[]", "empty list"),
        ("2024-03-01", "was read as a date"),
        ("{gte: 1, lte: 5}", "exactly one operator"),
    ],
)
def test_bad_conditions_are_named_at_their_line(
    tmp_path: Path, condition: str, message: str
) -> None:
    write_catalog(
        tmp_path,
        {
            "bad.yaml": f"""\
        id: bad
        title: One bad condition
        owner: operations
        kind: limit
        scope: case_id
        count:
          type: handoff
          attributes.x: {condition}
        max: 1
        """
        },
    )
    assert problems_of(tmp_path) == [f"bad.yaml:8: {problems_of_message(tmp_path, message)}"]


def problems_of_message(directory: Path, words: str) -> str:
    (problem,) = check_directory(directory).errors
    assert words in problem.message
    return problem.message


def test_unknown_direction_is_an_error_and_unknown_channel_a_warning(tmp_path: Path) -> None:
    write_catalog(
        tmp_path,
        {
            "dir.yaml": """\
        id: dir
        title: Odd values
        owner: operations
        kind: limit
        scope: case_id
        count: {type: handoff, channel: fax, direction: inbond}
        max: 1
        """
        },
    )
    result = check_directory(tmp_path)
    assert sorted(str(p).split("/")[-1] for p in result.problems) == [
        "dir.yaml:6: unknown direction 'inbond' (did you mean 'inbound'?); "
        "known: inbound, outbound, internal",
        "dir.yaml:6: warning: channel 'fax' is not a standard channel; "
        "known: phone, email, chat, web, sms, social, video, branch, app, other",
    ]


def test_numbers_tested_against_a_record_field_are_a_warning(tmp_path: Path) -> None:
    """Record fields are text, and text never equals a number (docs/semantics.md)."""
    write_catalog(
        tmp_path,
        {
            "num.yaml": """\
        id: num
        title: Numbers on text
        owner: operations
        kind: limit
        scope: case_id
        count: {type: [handoff, 7], team: {not: {gte: 2}}}
        max: 1
        """
        },
    )
    result = check_directory(tmp_path)
    assert not result.errors
    assert sorted(str(p).split("/")[-1] for p in result.warnings) == [
        "num.yaml:6: warning: 'team' is text: 'gte' compares numbers",
        "num.yaml:6: warning: 'type' is text, never equal to 7 (not text): "
        "write '\"7\"' in quotes if the text is meant",
    ]


def test_version_ignores_formatting_and_changes_with_meaning(tmp_path: Path) -> None:
    base = """\
        id: reply
        title: Replies within a day
        owner: operations
        kind: deadline
        scope: case_id
        start: {type: message, direction: inbound}
        stop: {type: message, direction: outbound}
        within: WITHIN
        """

    def version(text: str, sub: Path) -> str:
        sub.mkdir()
        write_catalog(sub, {"reply.yaml": text})
        return load_catalog(sub).promises["reply"].version

    one_day = version(base.replace("WITHIN", "1d"), tmp_path / "a")
    reordered = base.replace("WITHIN", "24h").replace(
        "start: {type: message, direction: inbound}", "start: {direction: inbound, type: message}"
    )
    assert version(reordered, tmp_path / "b") == one_day
    assert version(base.replace("WITHIN", "2d"), tmp_path / "c") != one_day
    with_calendar = base.replace("WITHIN", "1d") + "calendar: uk-office\n"
    assert version(with_calendar, tmp_path / "d") != one_day


def test_changing_a_calendar_changes_the_version_of_promises_using_it(tmp_path: Path) -> None:
    first = load_catalog(ROOT / "promises").promises["email-reply-1bd"].version
    shutil.copytree(ROOT / "promises", tmp_path / "p")
    calendars = tmp_path / "p" / "calendars.yaml"
    calendars.write_text(calendars.read_text().replace("09:00-17:30", "09:00-17:00"))
    catalog = load_catalog(tmp_path / "p")
    assert catalog.promises["email-reply-1bd"].version != first
    untouched = load_catalog(ROOT / "promises").promises["travel-guarantee"].version
    assert catalog.promises["travel-guarantee"].version == untouched


def test_sample_promises_have_the_expected_shapes() -> None:
    catalog = load_catalog(ROOT / "promises")
    email = catalog.promises["email-reply-1bd"]
    assert isinstance(email, DeadlinePromise)
    assert (email.within, email.calendar, email.warn_at) == (timedelta(hours=8), "uk-office", 0.75)
    assert email.pause is not None and email.resume is not None
    ask = catalog.promises["ask-once"]
    assert isinstance(ask, NeverPromise)
    assert ask.same == ("attributes.item",) and ask.within == timedelta(days=365)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("8h", 28_800), ("5d", 432_000), ("1d12h", 129_600)],
)
def test_durations_parse_and_format_round_trip(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert parse_duration(format_duration(timedelta(seconds=seconds))) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (8, "has no unit"),
        ("8 hours", "bad duration"),
        ("0h", "longer than zero"),
        ("-1h", "bad duration"),
        (None, "must be text"),
    ],
)
def test_bad_durations_explain_themselves(value: object, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_duration(value)


ROLES = {
    "deadline": "start: {type: problem_reported}\nstop: {type: resolved}",
    "never": "first: {type: problem_reported}\nthen: {type: resolved}",
    "limit": "count: {type: problem_reported}\nmax: 1",
}


def resolution(tmp_path: Path, within: str, calendar: str | None, kind: str = "deadline") -> Path:
    """A catalog whose one promise has ``within`` on line 8."""
    text = (
        "id: resolve\ntitle: Problems are resolved in time\nowner: operations\n"
        f"kind: {kind}\nscope: case_id\n{ROLES[kind]}\nwithin: {within}\n"
        + (f"calendar: {calendar}\n" if calendar else "")
    )
    tmp_path.mkdir(exist_ok=True)
    return write_catalog(tmp_path, {"resolve.yaml": text})


def test_business_days_with_a_calendar_load_as_business_days(tmp_path: Path) -> None:
    result = check_directory(resolution(tmp_path, "3bd", "uk-office"))
    assert result.problems == []
    promise = result.catalog.promises["resolve"]
    assert isinstance(promise, DeadlinePromise) and promise.within == BusinessDays(3)
    three_days = load_catalog(resolution(tmp_path / "d", "3d", "uk-office")).promises["resolve"]
    assert three_days.version != promise.version


@pytest.mark.parametrize(
    ("within", "calendar", "kind", "message"),
    [
        (
            "5bd",
            None,
            "deadline",
            "'5bd' counts business days, which need a business calendar: add 'calendar:' "
            "naming one from calendars.yaml, or write '5d' for 5 x 24 hours around the clock",
        ),
        (
            "5bd",
            None,
            "never",
            "'5bd': business days are only for a deadline with a calendar; a never window is "
            "elapsed time, e.g. '5d'",
        ),
        (
            "5bd",
            None,
            "limit",
            "'5bd': business days are only for a deadline with a calendar; a limit window is "
            "elapsed time, e.g. '5d'",
        ),
        (
            "1bd4h",
            "uk-office",
            "deadline",
            "bad duration '1bd4h': business days stand alone, e.g. '5bd' (not mixed with d, h, "
            "m or s)",
        ),
        ("0bd", "uk-office", "deadline", "'0bd': business days run from 1bd to 10000bd"),
        ("10001bd", "uk-office", "deadline", "'10001bd': business days run from 1bd to 10000bd"),
    ],
)
def test_business_days_are_refused_where_they_mean_nothing(
    tmp_path: Path, within: str, calendar: str | None, kind: str, message: str
) -> None:
    assert problems_of(resolution(tmp_path, within, calendar, kind)) == [
        f"resolve.yaml:8: {message}"
    ]


@pytest.mark.parametrize(
    ("within", "hours", "days"),
    [
        ("5d", "120h", "5 business days"),
        ("1d", "24h", "1 business day"),
        ("1d30m", "24h30m", "1 business day"),
    ],
)
def test_plain_days_with_a_calendar_are_a_warning_at_the_within_line(
    tmp_path: Path, within: str, hours: str, days: str
) -> None:
    result = check_directory(resolution(tmp_path, within, "uk-office"))
    assert result.catalog is not None and result.errors == []
    assert [f"{p.file.name}:{p.line}: {p.message}" for p in result.warnings] == [
        f"resolve.yaml:8: '{within}' with calendar 'uk-office' is {hours.split('h')[0]} hours "
        "of business time (a 'd' is 24 hours of opening hours), not "
        f"{days}: write '{days.split()[0]}bd' for business days, or '{hours}' for business hours"
    ]


@pytest.mark.parametrize(("within", "calendar"), [("5d", None), ("40h", "uk-office")])
def test_days_around_the_clock_and_hours_on_a_calendar_need_no_warning(
    tmp_path: Path, within: str, calendar: str | None
) -> None:
    assert check_directory(resolution(tmp_path, within, calendar)).problems == []


def test_a_character_yaml_forbids_is_a_problem_with_its_line(tmp_path: Path) -> None:
    write_catalog(tmp_path, {"odd.yaml": "id: odd\ntitle: bad \x0f char\n"})
    assert problems_of(tmp_path) == [
        "odd.yaml:2: YAML syntax error: special characters are not allowed (U+000F)"
    ]


# One definition per kind using every condition form, and for each part of it an edit that
# changes what the promise means (issue #14: a changed pattern kept its version).
DEFINITIONS = {
    "deadline": """\
        id: reply
        title: Replies within a day
        description: Inbound messages get an answer.
        owner: operations
        kind: deadline
        scope: case_id
        start: {type: message, direction: inbound, attributes.prio: {gte: 2}}
        stop: {type: message, direction: [outbound, internal], agent: {matches: "A.*"}}
        pause: {type: status, attributes.waiting: {exists: true}}
        resume: {type: message, attributes.code: {ne: hold}}
        cancel: {type: closed, attributes.reason: {not: spam}}
        within: 1d
        calendar: uk-office
        warn_at: 0.5
        objective: 0.9
        """,
    "never": """\
        id: reply
        title: Ask once
        owner: operations
        kind: never
        scope: customer_id
        first: {type: info_provided}
        then: {type: info_requested, direction: outbound}
        same: [attributes.item]
        within: 365d
        """,
    "limit": """\
        id: reply
        title: Two handoffs
        owner: operations
        kind: limit
        scope: case_id
        count: {type: handoff}
        max: 2
        within: 30d
        """,
}
EDITS = [
    ("deadline", "title: Replies within a day", "title: Replies within one day"),
    ("deadline", "description: Inbound", "description: All inbound"),
    ("deadline", "owner: operations", "owner: customer-care"),
    ("deadline", "scope: case_id", "scope: customer_id"),
    ("deadline", "start: {type: message", "start: {type: note"),
    ("deadline", "attributes.prio", "attributes.level"),
    ("deadline", "{gte: 2}", "{gt: 2}"),
    ("deadline", "{gte: 2}", "{gte: 3}"),
    ("deadline", "[outbound, internal]", "[outbound]"),
    ("deadline", '{matches: "A.*"}', '{matches: "B.*"}'),
    ("deadline", "{exists: true}", "{exists: false}"),
    ("deadline", "{ne: hold}", "{ne: wait}"),
    ("deadline", "{not: spam}", "{not: junk}"),
    ("deadline", "{not: spam}", "{not: [spam]}"),
    ("deadline", "within: 1d", "within: 2d"),
    ("deadline", "calendar: uk-office", "calendar: callback-desk"),
    ("deadline", "warn_at: 0.5", "warn_at: 0.6"),
    ("deadline", "objective: 0.9", "objective: 0.95"),
    ("never", "first: {type: info_provided}", "first: {type: info_given}"),
    ("never", "direction: outbound", "direction: inbound"),
    ("never", "same: [attributes.item]", "same: [attributes.item, channel]"),
    ("never", "within: 365d", "within: 366d"),
    ("never", "within: 365d", ""),
    ("limit", "count: {type: handoff}", "count: {type: transfer}"),
    ("limit", "max: 2", "max: 3"),
    ("limit", "within: 30d", "within: 31d"),
]


def _version_of(tmp_path: Path, text: str) -> str:
    folder = tmp_path / f"v{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    write_catalog(folder, {"reply.yaml": text})
    return load_catalog(folder).promises["reply"].version


@pytest.mark.parametrize(("kind", "old", "new"), EDITS)
def test_every_part_of_a_definition_changes_its_version(
    tmp_path: Path, kind: str, old: str, new: str
) -> None:
    text = textwrap.dedent(DEFINITIONS[kind])
    assert text.count(old) == 1
    assert _version_of(tmp_path, text.replace(old, new)) != _version_of(tmp_path, text)


@pytest.mark.parametrize("kind", DEFINITIONS)
def test_the_normalised_definition_holds_every_part(tmp_path: Path, kind: str) -> None:
    """What is hashed is what GET /promises/{id} shows: every field but the derived ones."""
    write_catalog(tmp_path, {"reply.yaml": DEFINITIONS[kind]})
    promise = load_catalog(tmp_path).promises["reply"]
    shown = canonical(promise)
    wanted = {f.name for f in dataclasses.fields(promise) if f.compare} - {"version"}
    assert set(shown) - {"@"} == wanted
    if kind == "deadline":
        assert shown["stop"]["conditions"][0] == ["agent", {"@": "Matches", "source": "A.*"}]


def test_the_same_meaning_keeps_the_version(tmp_path: Path) -> None:
    text = textwrap.dedent(DEFINITIONS["deadline"])
    same = text.replace("within: 1d", "within: 24h").replace('{matches: "A.*"}', "{matches: 'A.*'}")
    assert _version_of(tmp_path, same) == _version_of(tmp_path, text)


def test_burn_rates_default_with_an_objective_and_are_checked_where_written(
    tmp_path: Path,
) -> None:
    catalog = load_catalog(ROOT / "promises")
    travel = catalog.promises["travel-guarantee"]  # objective 0.98, no burn_rates written
    assert [(r.name, r.factor) for r in travel.burn_rates] == [("1h/5m", 14.4), ("6h/30m", 6.0)]
    deadline = """\
        id: burny
        title: t
        owner: customer-care
        kind: deadline
        scope: case_id
        start: {type: a}
        stop: {type: b}
        within: 1h
        objective: %s
        burn_rates:
          - {long: 1h, short: 1h, factor: 14.4}
          - {long: 2x, short: 5m, factor: 0}
        """
    bad = write_catalog(tmp_path, {"burny.yaml": deadline % "0.9"})
    assert problems_of(bad) == [
        "burny.yaml:11: the short window must be shorter than the long one (it says the burn "
        "is still going on), e.g. {long: 1h, short: 5m, factor: 14.4}",
        "burny.yaml:12: 'burn_rates.1.factor': input should be greater than 0, got 0",
        "burny.yaml:12: bad duration '2x': write a number and a unit (s, m, h, d), e.g. '8h' "
        "or '1d12h'",
    ]
    valid_rates = deadline.replace("1h, short: 1h", "1h, short: 5m").replace("2x", "2h")
    (tmp_path / "burny.yaml").write_text(textwrap.dedent(valid_rates % "1").replace(": 0}", ": 1}"))
    [unburnable] = problems_of(tmp_path)
    assert unburnable.startswith("burny.yaml:11: burn_rates need an error budget to burn")


def test_a_teams_burn_rates_serve_its_promises_that_name_none(tmp_path: Path) -> None:
    """teams.yaml may give a team's burn rates: its promises with an objective and no
    ``burn_rates`` take them, a promise's own win, other teams' promises keep the defaults."""
    promise = """\
        id: %s
        title: t
        owner: %s
        kind: limit
        scope: case_id
        count: {type: handoff}
        max: 2
        objective: 0.9
        """
    write_catalog(
        tmp_path,
        {
            "team-rates.yaml": promise % ("team-rates", "operations"),
            "own-rates.yaml": promise % ("own-rates", "operations")
            + "burn_rates: [{long: 2h, short: 10m, factor: 5}]\n",
            "no-rates.yaml": promise % ("no-rates", "operations") + "burn_rates: []\n",
            "other-team.yaml": promise % ("other-team", "customer-care"),
        },
    )
    teams = (tmp_path / "teams.yaml").read_text()
    operations = "  operations:\n    name: Operations\n"
    assert operations in teams
    rates = "    burn_rates: [{long: 3d, short: 6h, factor: 1}]\n"
    (tmp_path / "teams.yaml").write_text(teams.replace(operations, operations + rates))
    catalog = load_catalog(tmp_path)
    assert catalog.teams["operations"].burn_rates == (
        BurnRate(timedelta(days=3), timedelta(hours=6), 1.0),
    )
    named = {pid: [(r.name, r.factor) for r in p.burn_rates] for pid, p in catalog.promises.items()}
    assert named["team-rates"] == [("3d/6h", 1.0)]
    assert named["own-rates"] == [("2h/10m", 5.0)]
    assert named["no-rates"] == []
    assert named["other-team"] == [("1h/5m", 14.4), ("6h/30m", 6.0)]

    bad = (
        "    burn_rates:\n      - {long: 1h, short: 2h, factor: 2}\n      - {long: 1h, short: 5m}\n"
    )
    (tmp_path / "teams.yaml").write_text(teams.replace(operations, operations + bad))
    line = teams.splitlines().index(operations.splitlines()[1]) + 3
    assert problems_of(tmp_path) == [
        f"teams.yaml:{line}: the short window must be shorter than the long one (it says the "
        "burn is still going on), e.g. {long: 1h, short: 5m, factor: 14.4}",
        f"teams.yaml:{line + 1}: missing required key 'factor'",
    ]
