"""The dashboard (/ui) through a real browser: Debian's headless Chromium, driven by Playwright,
against a real `promise serve` with a small history evaluated by its worker."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import Engine

from conftest import ROOT, Server, start_server, stop_server

CHROMIUM = "/usr/bin/chromium"
SCRIPT = "<script>window.__pwned=1</script>"


def record(id: str, when: str, customer: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": id,
        "occurred_at": when,
        "customer_id": customer,
        "channel": "email",
        "direction": "inbound",
        "type": "message",
        **fields,
    }


# ask-once: q1 asks C-1 again for what p1 gave (broken), q2 asks for something new (kept).
# email-reply-1bd (8 business hours, uk-office): K-1 and K-4 answered in time (kept), K-2
# never (broken once C-1's e3 moves the clock past its due time), K-3 at risk at the end.
HISTORY = [
    record(
        "p1",
        "2024-03-01T10:00:00Z",
        "C-1",
        channel="phone",
        type="info_provided",
        team="claims",
        agent="a-17",
        attributes={"item": "policy_number"},
    ),
    record("e1", "2024-03-01T16:00:00Z", "C-1", case_id="K-1", attributes={"subject": SCRIPT}),
    record(
        "r1",
        "2024-03-04T09:30:00Z",
        "C-1",
        case_id="K-1",
        direction="outbound",
        team="contact-centre",
        agent="a-3",
    ),
    record("e2", "2024-03-04T10:00:00Z", "C-2", case_id="K-2"),
    record(
        "q1",
        "2024-03-04T11:00:00Z",
        "C-1",
        channel="phone",
        direction="outbound",
        type="info_requested",
        team="contact-centre",
        attributes={"item": "policy_number"},
    ),
    record(
        "q2",
        "2024-03-04T11:05:00Z",
        "C-1",
        direction="outbound",
        type="info_requested",
        team="claims",
        attributes={"item": "address"},
    ),
    record("e3", "2024-03-05T10:00:00Z", "C-1", case_id="K-3"),
    record("e4", "2024-03-05T11:00:00Z", "C-2", case_id="K-4"),
    record("r4", "2024-03-05T12:00:00Z", "C-2", case_id="K-4", direction="outbound"),
    record("n1", "2024-03-05T16:30:00Z", "C-3", channel="web", type="note"),
]
EXPECTED = {
    ("ask-once", "C-1"): "broken",
    ("ask-once", "C-1#2"): "kept",
    ("email-reply-1bd", "K-1"): "kept",
    ("email-reply-1bd", "K-2"): "broken",
    ("email-reply-1bd", "K-3"): "at_risk",
    ("email-reply-1bd", "K-4"): "kept",
}
FEATURE = """Feature: Ask Once
  Scenario: Asking again for what the customer gave breaks the promise
    Given the customer gave their policy number by phone
  Scenario Outline: Asking for something new keeps it
    Examples:
      | item |
"""


def _states(server: Server) -> dict[tuple[str, str], str]:
    items = server.client().get("/outcomes", params={"limit": 1000}).json()["items"]
    seen: dict[tuple[str, str], str] = {}
    for o in items:  # oldest first: a second outcome in the same scope gets a suffix
        key = (o["promise"], o["scope"])
        seen[(key[0], f"{key[1]}#2") if key in seen else key] = o["state"]
    return seen


def _broken(server: Server) -> dict[str, int]:
    """The id of each promise's (one) broken outcome."""
    items = server.client().get("/breaches").json()["items"]
    return {o["promise"]: o["id"] for o in items}


def _ingest(server: Server) -> None:
    assert server.client().post("/interactions", json=HISTORY).json()["accepted"] == len(HISTORY)
    server.wait_for(lambda: _states(server) == EXPECTED)


@contextmanager
def _chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser
        finally:
            browser.close()


def _shot(page: Page, shots: Path, name: str) -> None:
    """Every page must also be safe from the untrusted attribute before it is kept."""
    assert page.evaluate("typeof window.__pwned") == "undefined"
    page.screenshot(path=shots / f"{name}.png", full_page=True)


@pytest.fixture(autouse=True)
def _features_of_this_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server (started after this) shows the scenarios the test writes."""
    monkeypatch.setenv("PROMISE_FEATURES_DIR", str(tmp_path / "features"))


def test_the_dashboard_in_a_browser(server: Server, tmp_path: Path) -> None:
    _ingest(server)
    key = server.promise("keys", "create", "viewer", "--scopes", "read").strip()
    (tmp_path / "features").mkdir()  # PROMISE_FEATURES_DIR of the server
    (tmp_path / "features" / "ask-once.feature").write_text(FEATURE)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with _chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})

        page.goto(f"{server.url}/ui")
        expect(page).to_have_url(f"{server.url}/ui/login")
        page.fill("#key", key)
        page.click("button[type=submit]")
        expect(page).to_have_url(f"{server.url}/ui")
        [cookie] = page.context.cookies()
        assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == (
            "promise_key",
            True,
            "Strict",
        )

        ask_once = page.locator("#promise-ask-once")
        expect(ask_once.locator(".attainment")).to_have_text("50.0%")
        expect(page.locator("#promise-email-reply-1bd .attainment")).to_have_text("66.7%")
        expect(page.locator("#promise-email-reply-1bd")).to_contain_text("deadline")
        expect(ask_once.locator("svg")).to_have_count(1)
        expect(page.locator("#promise-two-handoffs .attainment")).to_have_text("-")
        _shot(page, shots, "overview")
        if os.environ.get("PROMISE_UPDATE_SCREENSHOTS") == "1":
            shutil.copy(shots / "overview.png", ROOT / "docs" / "dashboard.png")

        ask_once.get_by_role("link", name="ask-once").click()
        expect(page).to_have_url(f"{server.url}/ui/promises/ask-once")
        expect(page.locator(".summary")).to_contain_text("no later record of the same customer id")
        expect(page.locator(".scenarios li")).to_have_text(
            [
                "Asking again for what the customer gave breaks the promise",
                "Asking for something new keeps it (Scenario Outline)",
            ]
        )
        expect(page.locator("table tbody tr")).to_have_count(2)
        _shot(page, shots, "promise")

        page.locator(".facts").get_by_role("link", name="customer-care").click()
        expect(page).to_have_url(f"{server.url}/ui/teams/customer-care")
        expect(page.locator("h1")).to_have_text("Customer Care")
        expect(page.locator("tr", has_text="ask-once").locator(".attainment")).to_have_text("50.0%")
        expect(page.get_by_text("No breach yet.")).to_have_count(0)
        _shot(page, shots, "team")

        page.get_by_role("link", name="C-1").first.click()
        expect(page).to_have_url(f"{server.url}/ui/customers/C-1")
        records = page.locator("ol.timeline > li")
        expect(records).to_have_count(6)
        assert [r.get_attribute("id") for r in records.all()] == [
            f"record-{i}" for i in ("p1", "e1", "r1", "q1", "q2", "e3")
        ]
        expect(page.locator("#record-q1 .marks")).to_contain_text("broke ask-once")
        expect(page.locator("#record-q1 .badge.broken")).to_have_count(1)
        expect(page.locator("#record-p1 .marks")).to_contain_text("evidence: ask-once broken")
        expect(page.locator("#record-r1 .badge.kept")).to_have_text("kept email-reply-1bd")
        expect(page.locator("#record-p1")).to_contain_text("phone")
        expect(page.locator("#record-p1")).to_contain_text("a-17")
        expect(page.locator("#record-e1 .attributes")).to_contain_text(SCRIPT)
        open_clocks = page.locator("table").first
        expect(open_clocks).to_contain_text("K-3")
        expect(open_clocks).to_contain_text("at risk")
        _shot(page, shots, "customer")

        page.goto(f"{server.url}/ui/promises/email-reply-1bd")
        expect(page.get_by_text("No living documentation yet")).to_be_visible()

        # What an alert links to: K-2's breach, decided by the clock, in the calendar's zone.
        page.locator("tr", has_text="K-2").get_by_role("link", name="broken").click()
        expect(page).to_have_url(f"{server.url}/ui/outcomes/{_broken(server)['email-reply-1bd']}")
        expect(page.locator(".explanation")).to_have_text(
            "What happened: email received Mon 4 Mar 10:00; "
            "no reply by the due time Tue 5 Mar 09:30, UK office hours"
        )
        expect(page.locator("main")).to_contain_text("times in Europe/London")
        moments = page.locator("ol.timeline > li")
        expect(moments).to_have_count(2)
        expect(moments.nth(0)).to_contain_text("Mon 4 Mar 10:00 GMT")
        expect(moments.nth(0)).to_contain_text("started the clock")
        expect(moments.nth(1)).to_have_class("moment-broken")
        expect(moments.nth(1)).to_contain_text("Tue 5 Mar 09:30 GMT")
        expect(moments.nth(1)).to_contain_text("the clock broke the promise")
        _shot(page, shots, "outcome")
        if os.environ.get("PROMISE_UPDATE_SCREENSHOTS") == "1":
            shutil.copy(shots / "outcome.png", ROOT / "docs" / "alert-outcome.png")

        page.goto(f"{server.url}/ui/teams/customer-care")
        page.get_by_role("link", name="breach report").click()
        expect(page).to_have_url(f"{server.url}/ui/reports/customer-care")
        expect(page.locator("h1")).to_contain_text("Breach report: Customer Care")
        _shot(page, shots, "report")

    # A team's key reads its own outcome pages only, as the JSON API answers.
    care = server.promise("keys", "create", "care", "--scopes", "read", "--team", "customer-care")
    broken = _broken(server)
    with httpx.Client(base_url=server.url, headers={"Origin": server.url}) as care_browser:
        assert care_browser.post("/ui/login", data={"key": care.strip()}).status_code == 303
        own = care_browser.get(f"/ui/outcomes/{broken['ask-once']}")
        assert own.status_code == 200 and "asked again by phone by contact-centre" in own.text
        other = care_browser.get(f"/ui/outcomes/{broken['email-reply-1bd']}")
        assert other.status_code == 404 and "email received" not in other.text
        assert care_browser.get("/ui/outcomes/999999").status_code == 404
    as_care = {"Authorization": f"Bearer {care.strip()}"}
    json_other = httpx.get(f"{server.url}/outcomes/{broken['email-reply-1bd']}", headers=as_care)
    assert json_other.status_code == 404


def test_the_dashboard_asks_for_a_key_and_keeps_teams_apart(server: Server) -> None:
    care = server.promise(
        "keys", "create", "care", "--scopes", "read", "--team", "customer-care"
    ).strip()
    # A browser sends its page's origin with every form it posts (the login checks it).
    with httpx.Client(base_url=server.url, headers={"Origin": server.url}) as browser:
        first = browser.get("/ui/teams/customer-care")
        assert (first.status_code, first.headers["location"]) == (303, "/ui/login")

        wrong = browser.post("/ui/login", data={"key": "pk_not-a-key"})
        assert wrong.status_code == 401
        assert "unknown or revoked" in wrong.text
        assert "promise_key" not in browser.cookies

        assert browser.post("/ui/login", data={"key": care}).status_code == 303
        overview = browser.get("/ui")
        assert overview.status_code == 200
        assert "ask-once" in overview.text
        assert "email-reply-1bd" not in overview.text
        other = browser.get("/ui/teams/contact-centre")
        assert other.status_code == 403
        assert "may only read team &#39;customer-care&#39;" in other.text
        assert browser.get("/ui/promises/email-reply-1bd").status_code == 403
        assert browser.get("/ui/teams/nobody").status_code == 404
        assert browser.get("/ui", params={"from": "yesterday"}).status_code == 422
        assert browser.get("/ui", params={"from": "2024-03-01", "to": ""}).status_code == 200
        # The cookie opens /ui only (the JSON API takes bearer keys): the team's report is here.
        assert browser.get("/promises").status_code == 401
        assert browser.get("/ui/reports/customer-care").status_code == 200
        assert browser.get("/ui/reports/contact-centre").status_code == 403

        assert browser.post("/ui/logout").status_code == 303
        assert browser.get("/ui").headers["location"] == "/ui/login"


def test_every_page_has_navigation_and_shows_times_in_the_viewers_zone(server: Server) -> None:
    assert server.client().post("/interactions", json=HISTORY[:2]).json()["accepted"] == 2

    def k1() -> list[dict[str, Any]]:  # e1 opened email-reply-1bd's clock on case K-1
        return server.client().get("/outcomes", params={"case_id": "K-1"}).json()["items"]

    server.wait_for(k1)
    outcome = f"/ui/outcomes/{k1()[0]['id']}"
    key = server.promise("keys", "create", "viewer", "--scopes", "read").strip()
    with httpx.Client(base_url=server.url, headers={"Origin": server.url}) as browser:
        assert browser.post("/ui/login", data={"key": key}).status_code == 303
        for path in (
            "/ui",
            "/ui/teams/customer-care",
            "/ui/promises/ask-once",
            "/ui/customers/C-1",
            outcome,
            "/ui/reports/customer-care",
            "/ui/docs",
            "/ui/docs/promises/ask-once",
            "/ui/docs/teams/customer-care",
            "/ui/teams/nobody",  # an error page too
        ):
            page = browser.get(path).text
            assert 'action="/ui/logout"' in page and 'href="/ui/docs"' in page, path
            assert 'action="/ui/zone"' in page, path

        # The calendar's zone by default: 10:00Z on 1 March is 10:00 in London (GMT).
        journey = browser.get("/ui/customers/C-1").text
        assert "2024-03-01 10:00 GMT" in journey and "(Europe/London)" in journey
        chosen = browser.post(
            "/ui/zone", data={"zone": "America/New_York", "back": "/ui/customers/C-1"}
        )
        assert (chosen.status_code, chosen.headers["location"]) == (303, "/ui/customers/C-1")
        journey = browser.get("/ui/customers/C-1").text
        assert "2024-03-01 05:00 EST" in journey and "10:00 GMT" not in journey
        opened = browser.get(outcome).text  # the page alerts link to follows the picker too
        assert "times in America/New_York" in opened and "Fri 1 Mar 11:00 EST" in opened

        unknown = browser.post("/ui/zone", data={"zone": "Mars/Olympus", "back": "/ui"})
        assert unknown.status_code == 422 and "not a time zone" in unknown.text
        away = browser.post("/ui/zone", data={"zone": "UTC", "back": "//evil.example/ui"})
        assert away.headers["location"] == "/ui"  # back to this dashboard only
        assert "2024-03-01 10:00 UTC" in browser.get("/ui/customers/C-1").text


def test_the_overview_shows_burn_rates_and_marks_an_open_objective_alert(
    db_engine: Engine, tmp_path: Path
) -> None:
    """Every team's log route takes objective alerts too. ask-once (objective 99%, default
    rules) decides q1 and q2 broken and q3 kept; at the clock (11:00) it burns 50x over 1 h
    but 0x over 5 min, and 66.7x over 6 h and 50x over 30 min: only 6h/30m alerts."""
    promises = tmp_path / "promises"
    shutil.copytree(ROOT / "promises", promises)
    teams = promises / "teams.yaml"
    teams.write_text(teams.read_text().replace("- log: true", "- {log: true, alerts: all}"))
    asked = {"direction": "outbound", "type": "info_requested", "channel": "phone"}
    history = [
        record("p1", "2024-03-04T08:00:00Z", "C-1", type="info_provided", attributes={"item": "n"}),
        *(
            record(f"q{n}", f"2024-03-04T{when}:00Z", "C-1", **asked, attributes={"item": item})
            for n, when, item in ((1, "09:00", "n"), (2, "10:40", "n"), (3, "10:58", "address"))
        ),
        record("e1", "2024-03-04T11:00:00Z", "C-2", case_id="K-1"),  # the clock: 11:00
    ]
    url = db_engine.url.render_as_string(hide_password=False)
    server = start_server(url, tmp_path, "--no-live", promise_dir=promises)
    try:
        client = server.client()
        assert client.post("/interactions", json=history).json()["accepted"] == len(history)

        def alerted() -> list[dict[str, Any]]:
            return client.get("/alerts", params={"kind": "objective"}).json()["items"]

        server.wait_for(lambda: [a["state"] for a in alerted()][-1:] == ["burning"])
        key = server.promise("keys", "create", "viewer", "--scopes", "read").strip()
        centre = server.promise(
            "keys", "create", "centre", "--scopes", "read", "--team", "contact-centre"
        ).strip()
        with _chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{server.url}/ui/login")
            page.fill("#key", key)
            page.click("button[type=submit]")
            expect(page).to_have_url(f"{server.url}/ui")
            burns = page.locator("#promise-ask-once .burn")
            expect(burns).to_have_count(2)
            fast, slow = burns.nth(0), burns.nth(1)
            expect(fast).to_have_attribute("data-rule", "1h/5m")
            expect(fast).to_contain_text("alert at 14.4x: 1h 50.0x · 5m 0.0x")
            expect(fast.locator(".badge")).to_have_count(0)
            expect(slow).to_contain_text("alert at 6x: 6h 66.7x · 30m 50.0x")
            expect(slow.locator(".badge")).to_have_text("burning")
            expect(slow.locator(".bad")).to_have_count(2)  # both past the factor
            # Nothing of email-reply-1bd was decided yet: no rate, no alert.
            expect(page.locator("#promise-email-reply-1bd .burn").first).to_contain_text(
                "1h - · 5m -"
            )
            expect(page.locator("#promise-email-reply-1bd .badge")).to_have_count(0)
            _shot(page, tmp_path, "burning")

            page.goto(f"{server.url}/ui/promises/ask-once")  # where the alert links to
            expect(page.locator(".facts .burn .badge")).to_have_text("burning")
            page.goto(f"{server.url}/ui/teams/customer-care")
            expect(page.locator("tr", has_text="ask-once").locator(".burn .badge")).to_have_text(
                "burning"
            )
        # A team's key sees its own promises' burn rates only, as everything else.
        with httpx.Client(base_url=server.url, headers={"Origin": server.url}) as browser_:
            assert browser_.post("/ui/login", data={"key": centre}).status_code == 303
            overview = browser_.get("/ui").text
            assert 'id="promise-email-reply-1bd"' in overview and "ask-once" not in overview
            assert "burning</span>" not in overview
    finally:
        stop_server(server)
