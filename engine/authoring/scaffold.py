"""``promise new``: a commented promise file and its feature, one template per kind, that
pass ``promise check --strict`` and ``promise test`` as written: a starting point to edit.

The features use the generic table steps, which work for whatever records the author's
promise reads; the record types in the templates (``request``, ``reply``, ...) are
placeholders to rename in both files together.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rules.documents import PROMISE_ID
from rules.loader import TEAMS_FILE

Kind = Literal["deadline", "never", "limit"]

_HEAD = """\
# The promise {id}: {kind} kind. Written by `promise new` as a starting point; edit it and
# its feature ({feature}) together, then run `promise check --strict` and `promise test`.
id: {id}
title: {title}
description: >
  {description}
owner: {owner}                # a team of {teams}: who is alerted, who answers for it
"""

_BODIES: dict[str, str] = {
    "deadline": """\
kind: deadline
scope: customer_id           # one opportunity per customer (or case_id: per case)
start: {type: request, direction: inbound}    # the record that opens an opportunity ...
stop:  {type: reply, direction: outbound}     # ... and the one that keeps it
within: 4h                   # 4h, 30m, 2d, or business days: 3bd (with a calendar)
# calendar: office           # count only opening hours (a calendar of calendars.yaml)
# cancel: {type: closed, attributes.reason: spam}
warn_at: 0.5                 # at risk (and an alert) once half the time has gone
objective: 0.95              # the share kept that counts as good, for reports
""",
    "never": """\
kind: never
scope: customer_id
first: {type: info_provided}                        # once the customer gave something ...
then:  {type: info_requested, direction: outbound}  # ... asking for it again breaks it
same:  [attributes.item]     # "it": the fields both records must share
within: 365d                 # how long the first record counts
objective: 0.99
""",
    "limit": """\
kind: limit
scope: case_id               # counted per case
count: {type: handoff}       # the records counted
max: 2                       # more than this many ...
within: 30d                  # ... in any 30 days breaks the promise
objective: 0.9
""",
}

_FEATURE_HEAD = """\
@{tag} @{kind}
Feature: {title}
  {description}
  Written by `promise new`: replace these examples with your own (steps: the README of
  the promise engine, "Step vocabulary"). Keep at least one @kept and one @broken scenario.
"""

_SCENARIOS: dict[str, str] = {  # tables are lined up when written (_aligned)
    "deadline": """
  @kept
  Scenario: A request answered within 4 hours keeps the promise
    Given these interactions:
      | id | at                   | type    | channel | direction | customer_id |
      | q1 | Mon 2024-03-04 09:00 | request | email   | inbound   | C-1         |
      | a1 | Mon 2024-03-04 12:30 | reply   | email   | outbound  | C-1         |
    Then the outcomes of "{id}" are:
      | for | state | opened               | due                  | evidence |
      | C-1 | kept  | Mon 2024-03-04 09:00 | Mon 2024-03-04 13:00 | q1, a1   |

  @broken
  Scenario: A request nobody answers within 4 hours breaks the promise
    Given these interactions:
      | id | at                   | type    | channel | direction | customer_id |
      | q1 | Mon 2024-03-04 09:00 | request | email   | inbound   | C-1         |
    When the clock reaches Mon 2024-03-04 11:30
    Then the "{id}" promise is at risk for "C-1"
    When the clock reaches Mon 2024-03-04 14:00
    Then the outcomes of "{id}" are:
      | for | state  | decided              | evidence |
      | C-1 | broken | Mon 2024-03-04 13:00 | q1       |
    And these alerts are sent:
      | team    | promise | state   | for |
      | {owner} | {id}    | at risk | C-1 |
      | {owner} | {id}    | broken  | C-1 |
""",
    "never": """
  @kept
  Scenario: Asking for something the customer has not given keeps the promise
    Given these interactions:
      | id | at | type | channel | direction | customer_id | attributes.item |
      | g1 | Mon 2024-03-04 09:00 | info_provided | phone | inbound | C-1 | address |
      | q1 | Tue 2024-03-05 09:00 | info_requested | email | outbound | C-1 | phone_number |
    Then the outcomes of "{id}" are:
      | for | state |
      | C-1 | kept  |
    And no alert is sent

  @broken
  Scenario: Asking again for what the customer already gave breaks the promise
    Given these interactions:
      | id | at | type | channel | direction | customer_id | attributes.item |
      | g1 | Mon 2024-03-04 09:00 | info_provided | phone | inbound | C-1 | address |
      | q1 | Tue 2024-03-05 09:00 | info_requested | email | outbound | C-1 | address |
    Then the outcomes of "{id}" are:
      | for | state  | decided              | evidence |
      | C-1 | broken | Tue 2024-03-05 09:00 | g1, q1   |
    And these alerts are sent:
      | team    | promise | state  | for |
      | {owner} | {id}    | broken | C-1 |
""",
    "limit": """
  @kept
  Scenario: Two handoffs in 30 days keep the promise
    Given these interactions:
      | at                   | type    | channel | direction | customer_id | case_id |
      | Mon 2024-03-04 09:00 | handoff | other   | internal  | C-1         | K-1     |
      | Wed 2024-03-06 09:00 | handoff | other   | internal  | C-1         | K-1     |
    Then the outcomes of "{id}" are:
      | for | state |
      | K-1 | kept  |
      | K-1 | kept  |
    And no alert is sent

  @broken
  Scenario: The third handoff within 30 days breaks the promise
    Given these interactions:
      | at                   | type    | channel | direction | customer_id | case_id |
      | Mon 2024-03-04 09:00 | handoff | other   | internal  | C-1         | K-1     |
      | Wed 2024-03-06 09:00 | handoff | other   | internal  | C-1         | K-1     |
      | Fri 2024-03-08 09:00 | handoff | other   | internal  | C-1         | K-1     |
    Then the outcomes of "{id}" are:
      | for | state  | evidence     |
      | K-1 | kept   |              |
      | K-1 | kept   |              |
      | K-1 | broken | #1, #2, #3   |
    And these alerts are sent:
      | team    | promise | state  | for |
      | {owner} | {id}    | broken | K-1 |
""",
}

_TEAMS = """\
# The teams that own promises, and where their alerts go (`log: true`: the server's log;
# also `webhook: URL` with a secret from the environment, or `email: address`).
teams:
  {owner}:
    name: {owner}
    alerts:
      - log: true
"""


@dataclass(frozen=True)
class Scaffold:
    """The files to write, path -> text (``teams.yaml`` only when the catalog has none)."""

    files: dict[Path, str]


def scaffold(
    promise_id: str, kind: Kind, catalog_dir: Path, features_dir: Path, owner: str
) -> Scaffold:
    """The files of a new promise; ``ValueError`` for a bad id or a file that exists."""
    if not PROMISE_ID.fullmatch(promise_id):
        raise ValueError(
            f"{promise_id!r} is not a promise id: lower-case letters, digits and hyphens, "
            "e.g. first-reply-4h"
        )
    promise_file = catalog_dir / f"{promise_id}.yaml"
    feature_file = features_dir / f"{promise_id}.feature"
    title = f"{promise_id.replace('-', ' ').capitalize()} (say what is promised, in a line)"
    description = "Say in a few sentences what the customer is promised, for the people who own it."
    values = {
        "id": promise_id,
        "kind": kind,
        "title": title,
        "description": description,
        "owner": owner,
        "feature": feature_file,
        "teams": TEAMS_FILE,
        "tag": promise_id.replace("-", "_"),
    }
    files = {
        promise_file: _HEAD.format(**values) + _BODIES[kind],
        feature_file: _aligned(_FEATURE_HEAD.format(**values) + _SCENARIOS[kind].format(**values)),
    }
    teams_file = catalog_dir / TEAMS_FILE
    if not teams_file.exists():
        files[teams_file] = _TEAMS.format(owner=owner)
    existing = [str(p) for p in files if p.exists()]
    if existing:
        raise ValueError(f"{existing[0]} exists already: choose another id, or edit it")
    return Scaffold(files)


def _aligned(text: str) -> str:
    """Gherkin tables with their columns lined up, as an author would write them."""
    lines, block = [], []
    for line in [*text.splitlines(), ""]:
        if line.lstrip().startswith("|"):
            block.append(line)
            continue
        if block:
            indent = block[0][: len(block[0]) - len(block[0].lstrip())]
            rows = [[c.strip() for c in b.strip().strip("|").split("|")] for b in block]
            widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
            for row in rows:
                cells = " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
                lines.append(f"{indent}| {cells} |")
            block = []
        lines.append(line)
    return "\n".join(lines[:-1]) + "\n"
