"""Promises as code in the rule authors' own repository (issue #17): ``promise new``,
``promise test`` and ``promise check --strict`` on a catalog of its own, in a folder outside
this repository.

The commands run in this process (typer's runner over the ``promise`` app, as the shell
would call it: from the folder, without this run's ``PROMISE_*`` settings): what is tested
is what they do and print, and tests/test_cli.py runs the real ``promise`` process.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import in_process
import pytest

from engine.docs.results import load_results


def run(*args: str, cwd: Path) -> in_process.Ran:
    """``promise ARGS`` run in ``cwd``, without this run's ``PROMISE_*`` settings."""
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PROMISE_")}
    return in_process.promise(*args, cwd=cwd, env=unset)


TICKET = 'type "ticket_opened", channel "web", direction "inbound", customer_id "C-2"'
REOPENED = 'type "reopened", channel "web", direction "inbound", customer_id "C-1", case_id "K-1"'

CATALOG = {
    "teams.yaml": """
teams:
  support: {name: Support, alerts: [{log: true}]}
  privacy: {name: Privacy, alerts: [{log: true}]}
""",
    "calendars.yaml": """
calendars:
  office:
    timezone: Europe/Paris
    hours: {mon-fri: "09:00-17:00"}
    closed: [2024-05-01]
""",
    "first-reply.yaml": """
id: first-reply
title: A ticket gets a first reply within 2 business hours
owner: support
kind: deadline
scope: customer_id
start: {type: ticket_opened}
stop: {type: agent_reply, direction: outbound}
within: 2h
calendar: office
warn_at: 0.5
""",
    "ask-again.yaml": """
id: ask-again
title: Nobody asks for what the customer gave
owner: privacy
kind: never
scope: customer_id
first: {type: info_provided}
then: {type: info_requested, direction: outbound}
same: [attributes.item]
within: 90d
""",
    "reopen-limit.yaml": """
id: reopen-limit
title: A case is reopened at most once a week
owner: support
kind: limit
scope: case_id
count: {type: reopened}
max: 1
within: 7d
""",
    "features/first-reply.feature": f"""
@deadline
Feature: A ticket gets a first reply within 2 business hours

  @kept
  Scenario: A ticket opened late on Friday is answered on Monday morning
    Given these interactions, times in Europe/Paris:
      | id | at                   | type          | channel | direction | customer_id |
      | t1 | Fri 2024-03-01 16:30 | ticket_opened | web     | inbound   | C-1         |
      | a1 | Mon 2024-03-04 10:15 | agent_reply   | email   | outbound  | C-1         |
    Then the outcomes of "first-reply" are, times in Europe/Paris:
      | for | state | opened               | due                  | evidence |
      | C-1 | kept  | Fri 2024-03-01 16:30 | Mon 2024-03-04 10:30 | t1, a1   |

  @broken
  Scenario: On a closed day the two hours start the next morning
    Given an interaction on Wed 2024-05-01 09:00 Europe/Paris with {TICKET}
    When the clock reaches Thu 2024-05-02 11:01 Europe/Paris
    Then the "first-reply" promise is broken for "C-2"
    And it was due on Thu 2024-05-02 11:00 Europe/Paris
    And it is at risk from Thu 2024-05-02 10:00 Europe/Paris
    And the "support" team is alerted that "first-reply" is broken for "C-2"
""",
    "features/ask-again.feature": """
@never
Feature: Nobody asks for what the customer gave

  @broken
  Scenario: Asking again for the address breaks the promise
    Given customer "C-1" gave their "address" by phone to sales on Mon 2024-03-04 09:00
    When support asks "C-1" for "address" by email on Tue 2024-03-05 09:00
    Then the "ask-again" promise is broken for "C-1"
    And the evidence names the phone call of Mon 2024-03-04
    And these alerts are sent:
      | kind  | team    | promise   | state  | for |
      | alert | privacy | ask-again | broken | C-1 |

  Scenario Outline: Asking for something else keeps it
    Given customer "C-1" gave their "address" by phone to sales on Mon 2024-03-04 09:00
    When support asks "C-1" for "<asked>" by email on Tue 2024-03-05 09:00
    Then the "ask-again" promise is <verdict> for "C-1"

    @kept
    Examples:
      | asked | verdict |
      | email | kept    |
""",
    "features/reopen-limit.feature": f"""
@limit
Feature: A case is reopened at most once a week

  @kept
  Scenario: One reopening is allowed
    Given a record on Mon 2024-03-04 09:00 with {REOPENED}
    Then the "reopen-limit" promise is kept for "K-1"
    And no alert is sent

  @broken
  Scenario: A reopening logged late breaks the promise
    Given these interactions:
      | at                   | type     | channel | direction | customer_id | case_id |
      | Mon 2024-03-04 09:00 | reopened | web     | inbound   | C-1         | K-1     |
    And the clock reaches Fri 2024-03-08 09:00
    When a record arrives late: a record on Tue 2024-03-05 09:00 with {REOPENED}
    Then the outcomes of "reopen-limit" are:
      | for | state  | evidence |
      | K-1 | kept   | #1       |
      | K-1 | broken | #1, #2   |
""",
}


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    """A promise repository of its own: teams, a calendar, one promise of each kind, and
    features written with both readable and table steps."""
    for name, text in CATALOG.items():
        (tmp_path / "rules" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "rules" / name).write_text(text.lstrip())
    return tmp_path


def test_a_catalog_of_its_own_passes_test_and_check(catalog: Path) -> None:
    tested = run(
        "test", "rules", "--junit-xml", "out/junit.xml", "--cucumber-json", "out/c.json",
        cwd=catalog,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "PASS      One reopening is allowed  (rules/features/reopen-limit.feature:5)" in (
        tested.stdout
    )
    assert tested.stdout.strip().endswith("6 scenarios: 6 passed")
    suites = ET.parse(catalog / "out/junit.xml").getroot()
    assert [int(s.get("tests", 0)) for s in suites] == [2, 2, 2]
    assert not suites.findall(".//failure")
    results = load_results(catalog / "out/c.json")
    assert {k for k, r in results.by_scenario.items() if r.status == "passed"} == {
        ("ask-again", 5),
        ("ask-again", 14),
        ("first-reply", 5),
        ("first-reply", 15),
        ("reopen-limit", 5),
        ("reopen-limit", 11),
    }
    checked = run("check", "--strict", "rules", cwd=catalog)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_changed_expectation_names_the_scenario_the_step_and_both_answers(
    catalog: Path,
) -> None:
    feature = catalog / "rules/features/reopen-limit.feature"
    feature.write_text(feature.read_text().replace("| K-1 | broken |", "| K-1 | kept   |"))
    tested = run("test", "rules", "--junit-xml", "junit.xml", cwd=catalog)
    assert tested.returncode == 1
    out = tested.stdout
    assert "FAIL      A reopening logged late breaks the promise" in out
    assert 'rules/features/reopen-limit.feature:17: Then the outcomes of "reopen-limit" are:' in (
        out
    )
    # expected | the engine decided, row by row
    assert "| K-1 | kept  | #1, #2   |  ||  | K-1 | broken | r001, r002 |" in out
    assert "reopen-limit: broken for K-1 (opened Tue 2024-03-05 09:00 UTC" in out
    assert out.strip().endswith("6 scenarios: 5 passed, 1 failed")
    [failure] = ET.parse(catalog / "junit.xml").getroot().findall(".//failure")
    assert "reopen-limit.feature:17" in (failure.text or "")


def test_an_undefined_step_suggests_the_nearest_and_fails(catalog: Path) -> None:
    feature = catalog / "rules/features/first-reply.feature"
    feature.write_text(feature.read_text().replace("the clock reaches", "the clock reachs"))
    tested = run("test", "rules", "-k", "closed day", cwd=catalog)
    assert tested.returncode == 1
    assert "UNDEFINED On a closed day the two hours start the next morning" in tested.stdout
    assert "first-reply.feature:17: When the clock reachs Thu 2024-05-02 11:01" in tested.stdout
    assert "nearest known steps:\n          the clock reaches <when>" in tested.stdout
    assert tested.stdout.strip().endswith("1 scenarios: 0 passed, 1 undefined")


def test_a_step_it_cannot_read_names_the_problem(catalog: Path) -> None:
    feature = catalog / "rules/features/first-reply.feature"
    feature.write_text(feature.read_text().replace("| customer_id |", "| customer    |", 1))
    tested = run("test", "rules", "-k", "friday", cwd=catalog)
    assert tested.returncode == 1
    assert "first-reply.feature:6: Given these interactions, times in Europe/Paris:" in (
        tested.stdout
    )
    assert "unknown column 'customer' in the interactions table: columns are" in tested.stdout


def test_a_feature_for_an_unknown_promise_fails(catalog: Path) -> None:
    """Misnamed, its promise has no feature: check --strict fails on that; test on both."""
    features = catalog / "rules/features"
    (features / "reopen-limit.feature").rename(features / "reopen-limits.feature")
    tested = run("test", "rules", cwd=catalog)
    assert tested.returncode == 1
    assert "ERROR rules/features/reopen-limits.feature:2: no promise 'reopen-limits'" in (
        tested.stdout
    )
    checked = run("check", "--strict", "rules", cwd=catalog)
    assert checked.returncode == 1
    assert "promise 'reopen-limit' has no living documentation" in checked.stdout


def test_an_empty_features_directory_fails(catalog: Path) -> None:
    (catalog / "empty").mkdir()
    tested = run("test", "rules", "--features", "empty", cwd=catalog)
    assert tested.returncode == 1
    assert "no feature files in empty" in tested.stderr


def test_promise_new_writes_a_starting_point_that_passes(tmp_path: Path) -> None:
    for kind in ("deadline", "never", "limit"):
        made = run("new", f"my-{kind}", "--kind", kind, "rules", cwd=tmp_path)
        assert made.returncode == 0, made.stderr
    assert "owner: my-team" in (tmp_path / "rules/my-never.yaml").read_text()
    checked = run("check", "--strict", "rules", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run("test", "rules", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout
    assert tested.stdout.strip().endswith("6 scenarios: 6 passed")
    again = run("new", "my-limit", "--kind", "limit", "rules", cwd=tmp_path)
    assert again.returncode == 1
    assert "rules/my-limit.yaml exists already" in again.stderr
    stranger = run("new", "other", "--kind", "limit", "--owner", "nobody", "rules", cwd=tmp_path)
    assert stranger.returncode == 1
    assert "no team 'nobody' in rules/teams.yaml; its teams: my-team" in stranger.stderr


def test_the_shipped_features_are_the_shipped_catalogs_features() -> None:
    """The project's own features run through the same command (a few, to stay quick)."""
    root = Path(__file__).resolve().parents[1]
    tested = run("test", "promises", "-k", "arrives late", cwd=root)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    ran = [line for line in tested.stdout.splitlines() if line.startswith("  PASS")]
    assert len(ran) >= 3
    assert all("arrives late" in line for line in ran)


def test_promise_docs_shows_the_results_of_the_last_promise_test(tmp_path: Path) -> None:
    """The loop of the README's tour ends in a site that says which scenarios passed."""
    assert run("new", "reply-1h", "--kind", "deadline", "rules", cwd=tmp_path).returncode == 0
    before = run("docs", "rules", "--out", "site", "--results", "none.json", cwd=tmp_path)
    assert before.returncode == 0, before.stderr
    assert "not run yet" in (tmp_path / "site/promises/reply-1h.html").read_text()
    tested = run("test", "rules", "--cucumber-json", "results.json", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout
    built = run("docs", "rules", "--out", "site", "--results", "results.json", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    page = (tmp_path / "site/promises/reply-1h.html").read_text()
    assert "not run yet" not in page
    assert page.count("passed") >= 2, page  # the kept and the broken scenario
