"""Alerts reach the owning team: outbox, signed webhooks, email, retries, corrections,
silences and digests, against real local receivers and a real database."""

from __future__ import annotations

import dataclasses
import email
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from conftest import start_server, stop_server
from engine.alerting import burn, digests, notify
from engine.alerting import status as alerts
from engine.alerting.dispatch import Dispatcher
from engine.reading.reports import build, render
from engine.service import PromiseService
from engine.settings import Settings
from engine.storage.database import session_factory
from engine.storage.schema import AlertRow, DeliveryRow, OutcomeRow
from receivers import SmtpReceiver, WebhookReceiver, slack_problems, teams_problems
from rules.loader import load_catalog

ROOT = Path(__file__).resolve().parents[1]
SECRET = "test-webhook-secret"


def catalog_dir(tmp_path: Path, routes: str, extra: dict[str, list[str]] | None = None) -> Path:
    """The shipped promises with every team's alerts sent to ``routes`` (YAML flow list),
    and ``extra`` lines added to some teams."""
    target = tmp_path / "promises"
    shutil.copytree(ROOT / "promises", target, ignore=shutil.ignore_patterns("teams.yaml"))
    catalog = load_catalog(ROOT / "promises")
    lines = ["teams:"]
    for team in catalog.teams.values():
        lines += [f"  {team.id}:", f"    name: {team.name}", f"    alerts: {routes}"]
        lines += [f"    {line}" for line in (extra or {}).get(team.id, [])]
    (target / "teams.yaml").write_text("\n".join(lines) + "\n")
    return target


def webhook_to(receiver: WebhookReceiver) -> str:
    return f"[{{webhook: '{receiver.url}/hooks', secret: '${{PROMISE_TEST_HOOK_SECRET}}'}}]"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver().start()
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMISE_TEST_HOOK_SECRET", SECRET)


def settings_for(db_engine: Engine, promises: Path, **overrides: Any) -> Settings:
    return Settings(
        database_url=db_engine.url.render_as_string(hide_password=False),
        dir=promises,
        alert_backoff_seconds=0.05,
        **overrides,
    )


def record(id: str, when: str, **fields: Any) -> dict[str, Any]:
    base = {
        "id": id,
        "occurred_at": f"2024-03-01T{when}:00Z",
        "customer_id": "C-1",
        "case_id": "B-1",
        "channel": "phone",
        "direction": "inbound",
        "type": "problem_reported",
    }
    return {**base, **fields}


def at(when: str) -> datetime:
    return datetime.fromisoformat(f"2024-03-01T{when}:00+00:00")


def drain(dispatcher: Dispatcher, until: float = 10) -> None:
    """Run the dispatcher until nothing is due (retries included) or ``until`` seconds."""
    deadline = time.monotonic() + until
    while time.monotonic() < deadline:
        if not dispatcher.run_once():
            with dispatcher.sessions() as session:
                waiting = session.scalar(
                    select(DeliveryRow.id).where(DeliveryRow.status == "pending").limit(1)
                )
            if waiting is None:
                return
            time.sleep(0.02)


def statuses(service: PromiseService) -> list[tuple[str, str, str]]:
    with service.sessions() as session:
        rows = session.execute(
            select(AlertRow.kind, AlertRow.state, DeliveryRow.status)
            .join(DeliveryRow, DeliveryRow.alert_id == AlertRow.id)
            .order_by(DeliveryRow.id)
        )
        return [tuple(r) for r in rows]


def travel_problem_breaks(service: PromiseService) -> None:
    """A booking problem at 10:00 (travel guarantee: 4 h, at risk after 3 h) left unresolved."""
    service.ingest([record("p1", "10:00")])
    service.advance(at("13:30"))  # at risk
    service.advance(at("14:30"))  # broken


def test_an_at_risk_then_broken_outcome_sends_one_signed_webhook_per_state(
    db_engine: Engine, tmp_path: Path, receiver: WebhookReceiver
) -> None:
    promises = catalog_dir(tmp_path, webhook_to(receiver))
    settings = settings_for(db_engine, promises, public_url="https://promises.example.org")
    sessions = session_factory(db_engine)
    service = PromiseService(load_catalog(promises), sessions)
    travel_problem_breaks(service)
    service.advance(at("18:00"))  # still broken: no second alert
    dispatcher = Dispatcher(settings, service.catalog, sessions)
    drain(dispatcher)

    first, second = receiver.received
    assert all(d.signed_by(SECRET) for d in receiver.received)
    assert not first.signed_by("another secret")
    assert [d.json["state"] for d in receiver.received] == ["at_risk", "broken"]
    body = second.json
    assert body["id"] == second.headers["idempotency-key"] != first.headers["idempotency-key"]
    assert abs(int(second.headers["x-promise-timestamp"]) - time.time()) < 60
    assert body | {"id": None, "created_at": None, "outcome_id": None, "link": None} == body | {
        "id": None,
        "kind": "alert",
        "promise": "travel-guarantee",
        "title": "A reported booking problem is resolved within 4 hours, day or night",
        "team": "travel-support",
        "state": "broken",
        "customer_id": "C-1",
        "scope": "B-1",
        "opened_at": "2024-03-01T10:00:00+00:00",
        "due_at": "2024-03-01T14:00:00+00:00",
        "decided_at": "2024-03-01T14:00:00+00:00",
        "evidence": ["p1"],
        "corrects": None,
        "created_at": None,
        "outcome_id": None,
        "link": None,
    }
    assert body["link"] == f"https://promises.example.org/outcomes/{body['outcome_id']}"
    assert "BROKEN" in body["text"] and "customer C-1" in body["text"]
    assert body["subject"] == "Broken: travel-guarantee for C-1"
    assert statuses(service) == [
        ("alert", "at_risk", "delivered"),
        ("alert", "broken", "delivered"),
    ]


def test_webhook_secrets_are_read_when_the_catalog_loads_not_on_each_send(
    db_engine: Engine, tmp_path: Path, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    promises = catalog_dir(tmp_path, webhook_to(receiver))
    sessions = session_factory(db_engine)
    service = PromiseService(load_catalog(promises), sessions)
    dispatcher = Dispatcher(settings_for(db_engine, promises), service.catalog, sessions)
    monkeypatch.setenv("PROMISE_TEST_HOOK_SECRET", "changed after the dispatcher loaded")
    travel_problem_breaks(service)
    drain(dispatcher)
    assert len(receiver.received) == 2
    assert all(d.signed_by(SECRET) for d in receiver.received)

    dispatcher.catalog = load_catalog(promises)  # what the dispatcher does on a catalog edit
    service.advance(at("18:00"))
    service.ingest([record("p2", "18:00", customer_id="C-2", case_id="B-2")])
    service.advance(at("23:00"))
    drain(dispatcher)
    assert receiver.received[2:]
    assert all(d.signed_by("changed after the dispatcher loaded") for d in receiver.received[2:])


def test_alerts_queue_while_the_receiver_is_down_and_all_arrive_once_it_is_back(
    db_engine: Engine, tmp_path: Path, receiver: WebhookReceiver
) -> None:
    receiver.stop()  # down: connections are refused
    promises = catalog_dir(tmp_path, webhook_to(receiver))
    sessions = session_factory(db_engine)
    service = PromiseService(load_catalog(promises), sessions)
    service.ingest([record(f"p{n}", "10:00", case_id=f"B-{n}") for n in range(5)])
    service.advance(at("15:00"))  # five breaches
    dispatcher = Dispatcher(settings_for(db_engine, promises), service.catalog, sessions)
    dispatcher.run_once()
    with sessions() as session:
        failed = session.scalars(select(DeliveryRow)).all()
    assert [(d.status, d.attempts) for d in failed] == [("pending", 1)] * 5
    assert all("ConnectError" in (d.last_error or "") for d in failed)

    receiver.status = 503  # up, but failing: still retried
    receiver.start()
    time.sleep(0.1)
    dispatcher.run_once()
    receiver.status = 200
    drain(dispatcher)
    assert sorted(receiver.keys()) == sorted(f"alert-{d.alert_id}" for d in failed)
    assert len(set(receiver.keys())) == 5  # each once
    assert {s for *_, s in statuses(service)} == {"delivered"}


def test_a_delivery_is_dead_after_the_configured_attempts(
    db_engine: Engine, tmp_path: Path, receiver: WebhookReceiver
) -> None:
    receiver.status = 500
    promises = catalog_dir(tmp_path, webhook_to(receiver))
    sessions = session_factory(db_engine)
    service = PromiseService(load_catalog(promises), sessions)
    service.ingest([record("p1", "10:00")])
    service.advance(at("15:00"))
    settings = settings_for(db_engine, promises, alert_max_attempts=3)
    drain(Dispatcher(settings, service.catalog, sessions))
    with sessions() as session:
        (delivery,) = session.scalars(select(DeliveryRow)).all()
    assert (delivery.status, delivery.attempts) == ("dead", 3)
    assert "answered 500" in (delivery.last_error or "")
    # Dead alerts are listed for people to see, in the team's report and through the API.
    report = build.build_report(sessions, service.catalog, "travel-support")
    assert report.deliveries == {"dead": 1}
    (dead,) = report.dead_alerts
    assert dead.id == f"alert-{delivery.alert_id}" and dead.deliveries[0].attempts == 3
    assert f"| {dead.id} | travel-guarantee | broken | C-1 |" in render.render(report, "md")
    listed, _ = alerts.list_alerts(sessions, alerts.AlertFilter(status="dead"), None, 10)
    assert [a.id for a in listed] == [dead.id]
    # An operator retries it once the receiver is fixed.
    receiver.status = 200
    assert alerts.retry_dead(sessions, delivery.alert_id) == 1
    drain(Dispatcher(settings, service.catalog, sessions))
    assert receiver.keys() == [dead.id]


def test_slack_and_teams_routes_post_each_platforms_message_to_the_channel(
    db_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slack, teams = WebhookReceiver().start(), WebhookReceiver().start()
    monkeypatch.setenv("PROMISE_TEST_SLACK_URL", f"{slack.url}/services/T0/B0/x")
    monkeypatch.setenv("PROMISE_TEST_TEAMS_URL", f"{teams.url}/workflows/run")
    promises = catalog_dir(
        tmp_path, "[{slack: '${PROMISE_TEST_SLACK_URL}'}, {teams: '${PROMISE_TEST_TEAMS_URL}'}]"
    )
    settings = settings_for(db_engine, promises, public_url="https://promises.example.org")
    sessions = session_factory(db_engine)
    service = PromiseService(load_catalog(promises), sessions)
    try:
        travel_problem_breaks(service)
        drain(Dispatcher(settings, service.catalog, sessions))
    finally:
        slack.stop()
        teams.stop()

    assert [d.path for d in slack.received] == ["/services/T0/B0/x"] * 2
    assert [d.path for d in teams.received] == ["/workflows/run"] * 2
    subject = "Broken: travel-guarantee for C-1"
    on_slack, on_teams = slack.received[1].json, teams.received[1].json
    assert slack_problems(on_slack) == [] and teams_problems(on_teams) == []
    assert on_slack["text"] == subject == on_slack["blocks"][0]["text"]["text"]
    assert "BROKEN" in on_slack["blocks"][1]["text"]["text"]
    with sessions() as session:
        (outcome,) = session.scalars(select(OutcomeRow.id)).all()
    link = f"https://promises.example.org/ui/outcomes/{outcome}"
    assert on_slack["blocks"][2]["text"]["text"] == f"<{link}|Open the outcome>"
    card = on_teams["attachments"][0]["content"]
    assert card["body"][0]["text"] == subject
    assert any("BROKEN" in block["text"] for block in card["body"][1:])
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open the outcome", "url": link}]
    assert statuses(service) == [
        ("alert", "at_risk", "delivered"),
        ("alert", "at_risk", "delivered"),
        ("alert", "broken", "delivered"),
        ("alert", "broken", "delivered"),
    ]


def handoff(id: str, day: str) -> dict[str, Any]:
    """A handoff of case K-1 at 09:00 on ``day`` (two-handoffs: at most 2 in 30 days)."""
    fields = {"case_id": "K-1", "type": "handoff", "direction": "internal"}
    return {**record(id, "09:00", **fields), "occurred_at": f"{day}T09:00:00Z"}


READ_ONCE = [
    # email-reply-1bd (uk-office calendar, Europe/London): due Mon 4 Mar 15:30, never answered;
    # n1, a note on the case after the due time, is in the batch but decided nothing.
    record("e1", "16:00", case_id="K-1", channel="email", type="message"),
    {
        **record("n1", "16:00", case_id="K-1", type="note", direction="internal"),
        "occurred_at": "2024-03-04T16:00:00Z",
    },
    # ask-once (customer-care, no calendar: the team's Europe/Paris).
    record(
        "g1",
        "10:00",
        customer_id="C-2",
        case_id="K-2",
        type="info_provided",
        team="claims",
        attributes={"item": "policy_number"},
    ),
    {
        **record(
            "a1",
            "11:00",
            customer_id="C-2",
            case_id="K-2",
            channel="email",
            direction="outbound",
            type="info_requested",
            team="contact-centre",
            attributes={"item": "policy_number"},
        ),
        "occurred_at": "2024-03-04T11:00:00Z",
    },
    # two-handoffs (operations, Europe/Paris): the third handoff in 30 days.
    *(
        {
            **handoff(f"h{n}", f"2024-03-0{n}"),
            "customer_id": "C-3",
            "case_id": "K-3",
            "team": f"desk-{n}",
        }
        for n in (1, 2, 4)
    ),
]
"""A deadline the clock broke, a never and a limit breach, each read by its team's zone."""

READ = {
    "email-reply-1bd": (
        "C-1",
        "Mon 4 Mar 15:30 GMT",
        "email received Fri 1 Mar 16:00; no reply by the due time Mon 4 Mar 15:30, UK office hours",
    ),
    "ask-once": (
        "C-2",
        "Mon 4 Mar 12:00 CET",
        "policy_number given by phone to claims Fri 1 Mar 11:00; "
        "asked again by email by contact-centre Mon 4 Mar 12:00",
    ),
    "two-handoffs": (
        "C-3",
        "Mon 4 Mar 10:00 CET",
        "3 handoffs within 30 days (at most 2 allowed): "
        "Fri 1 Mar 10:00 by desk-1, Sat 2 Mar 10:00 by desk-2, Mon 4 Mar 10:00 by desk-4",
    ),
}
"""Per promise: customer, the decision's local time with its zone, and the plain reason."""


def test_every_route_says_when_in_the_teams_zone_what_went_wrong_and_links_the_page(
    db_engine: Engine, tmp_path: Path, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    slack, teams = WebhookReceiver().start(), WebhookReceiver().start()
    monkeypatch.setenv("PROMISE_TEST_SLACK_URL", f"{slack.url}/services/T0/B0/x")
    monkeypatch.setenv("PROMISE_TEST_TEAMS_URL", f"{teams.url}/workflows/run")
    hook = webhook_to(receiver)[1:-1]
    chats = "{slack: '${PROMISE_TEST_SLACK_URL}'}, {teams: '${PROMISE_TEST_TEAMS_URL}'}"
    paris = ["timezone: Europe/Paris"]
    promises = catalog_dir(
        tmp_path,
        f"[{hook}, {{email: leads@example.org}}, {chats}]",
        {"customer-care": paris, "operations": paris},
    )
    sessions = session_factory(db_engine)
    service = PromiseService(load_catalog(promises), sessions)
    service.ingest(READ_ONCE)
    try:
        with SmtpReceiver() as smtp:
            settings = settings_for(
                db_engine,
                promises,
                public_url="https://promises.example.org",
                smtp_host="127.0.0.1",
                smtp_port=smtp.port,
                smtp_from="pe@x.org",
            )
            drain(Dispatcher(settings, service.catalog, sessions))
            emails = [email.message_from_string(m[2], policy=policy.default) for m in smtp.messages]
    finally:
        slack.stop()
        teams.stop()
    with sessions() as session:
        ids = dict(
            session.execute(
                select(OutcomeRow.promise_id, OutcomeRow.id).where(OutcomeRow.state == "broken")
            ).all()
        )

    def broken(subjects: list[str], promise: str) -> int:
        (index,) = [i for i, s in enumerate(subjects) if s.startswith(f"Broken: {promise} ")]
        return index

    for promise, (customer, decided, reason) in READ.items():
        page = f"https://promises.example.org/ui/outcomes/{ids[promise]}"
        hooks = [d.json for d in receiver.received]
        body = hooks[broken([h["subject"] for h in hooks], promise)]
        assert body["subject"] == f"Broken: {promise} for {customer}"
        assert len(body["subject"]) <= notify.SUBJECT_LIMIT
        assert (body["explanation"], body["decided_local"]) == (reason, decided)
        assert body["dashboard_link"] == page
        assert body["link"] == f"https://promises.example.org/outcomes/{ids[promise]}"
        mail = emails[broken([str(m["Subject"]) for m in emails], promise)].get_content()
        slacks = [d.json for d in slack.received]
        on_slack = slacks[broken([m["text"] for m in slacks], promise)]["blocks"]
        cards = [d.json["attachments"][0]["content"] for d in teams.received]
        card = cards[broken([c["body"][0]["text"] for c in cards], promise)]
        card_text = "\n".join(block["text"] for block in card["body"])
        for text in (body["text"], mail, on_slack[1]["text"]["text"], card_text):
            assert f"what:     {reason}" in text and f"decided:  {decided}" in text
            assert page in text
        assert on_slack[2]["text"]["text"] == f"<{page}|Open the outcome>"
        assert card["actions"][0]["url"] == page
    deadline = next(h for h in hooks if h["subject"].startswith("Broken: email-reply-1bd"))
    assert deadline["decided_by"] == "clock" and deadline["evidence"] == ["e1"]
    assert "(the due time passed: no record decided it)" in deadline["text"]
    assert "n1" not in deadline["text"]  # the record that came with the clock is not blamed
    assert deadline["timezone"] == "Europe/London"


def test_a_chat_route_failure_names_its_variable_never_its_url(
    db_engine: Engine, tmp_path: Path, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.status = 404  # what Slack answers for a removed webhook ("no_service")
    url = f"{receiver.url}/services/T0/B0/secret-token"
    monkeypatch.setenv("PROMISE_TEST_SLACK_URL", url)
    monkeypatch.delenv("PROMISE_TEST_TEAMS_URL", raising=False)
    promises = catalog_dir(
        tmp_path, "[{slack: '${PROMISE_TEST_SLACK_URL}'}, {teams: '${PROMISE_TEST_TEAMS_URL}'}]"
    )
    sessions = session_factory(db_engine)
    service = PromiseService(load_catalog(promises), sessions)
    service.ingest([record("p1", "10:00")])
    service.advance(at("15:00"))
    settings = settings_for(db_engine, promises, alert_max_attempts=1)
    drain(Dispatcher(settings, service.catalog, sessions))
    with sessions() as session:
        errors = {d.route["chat"]: d.last_error or "" for d in session.scalars(select(DeliveryRow))}
    assert errors["slack"].startswith("slack (${PROMISE_TEST_SLACK_URL}) answered 404")
    assert "PROMISE_TEST_TEAMS_URL" in errors["teams"] and "unset" in errors["teams"]
    assert not any("secret-token" in error for error in errors.values())


def test_a_late_record_that_turns_a_breach_into_kept_sends_a_correction(
    db_engine: Engine, tmp_path: Path, receiver: WebhookReceiver
) -> None:
    promises = catalog_dir(tmp_path, webhook_to(receiver))
    sessions = session_factory(db_engine)
    service = PromiseService(load_catalog(promises), sessions)
    travel_problem_breaks(service)
    dispatcher = Dispatcher(settings_for(db_engine, promises), service.catalog, sessions)
    drain(dispatcher)
    broken = receiver.received[-1].json
    # The resolution happened at 13:45 but reaches us only now.
    service.ingest([record("r1", "13:45", type="resolved", direction="internal")])
    drain(dispatcher)
    correction = receiver.received[-1].json
    assert correction["kind"] == "correction"
    assert correction["corrects"] == broken["id"]
    assert correction["state"] == "kept"
    assert correction["evidence"] == ["p1", "r1"]
    assert correction["reason"] == "new record(s) r1"  # after the clock had broken it
    assert receiver.received[-1].path == receiver.received[-2].path  # the same route
    # Broken again by yet another revision? Not here: the outcome stays kept, no more alerts.
    service.advance(at("23:00"))
    drain(dispatcher)
    assert len(receiver.received) == 3


def test_every_excess_of_a_windowed_limit_is_alerted_even_months_later(
    db_engine: Engine, tmp_path: Path, receiver: WebhookReceiver
) -> None:
    """Issue #14, item 8: a windowed limit used to alert only a scope's first excess."""
    promises = catalog_dir(tmp_path, webhook_to(receiver))
    sessions = session_factory(db_engine)
    service = PromiseService(load_catalog(promises), sessions)
    dispatcher = Dispatcher(settings_for(db_engine, promises), service.catalog, sessions)
    service.ingest([handoff(f"h{n}", f"2024-04-0{n}") for n in (1, 2, 3)])
    drain(dispatcher)
    service.ingest([handoff(f"h{n}", f"2024-09-0{n - 3}") for n in (4, 5, 6)])
    drain(dispatcher)

    sent = [(d.json["kind"], d.json["state"], d.json["evidence"]) for d in receiver.received]
    assert sent == [
        ("alert", "broken", ["h1", "h2", "h3"]),
        ("alert", "broken", ["h4", "h5", "h6"]),
    ]
    assert len(set(receiver.keys())) == 2
    assert statuses(service) == [("alert", "broken", "delivered")] * 2


def test_a_scope_wide_outcome_of_a_windowed_limit_is_replaced_when_its_scope_is_next_judged(
    db_engine: Engine, tmp_path: Path
) -> None:
    """Outcomes stored before windowed limits were judged per record (one per scope, under
    the same version): the next record of the scope withdraws that breach and alerts each
    excess record (docs/semantics.md, "limit")."""
    promises = catalog_dir(tmp_path, "[{log: true}]")
    catalog = load_catalog(promises)
    handoffs = catalog.promises["two-handoffs"]
    before = dataclasses.replace(
        catalog, promises={"two-handoffs": dataclasses.replace(handoffs, within=None)}
    )
    sessions = session_factory(db_engine)
    PromiseService(before, sessions).ingest([handoff(f"h{n}", f"2024-04-0{n}") for n in (1, 2, 3)])
    service = PromiseService(catalog, sessions)
    assert [(o.key, o.state) for o in service.outcomes()] == [("K-1", "broken")]

    service.ingest([handoff("h4", "2024-04-04")])
    outcomes = [(o.key, o.state) for o in service.outcomes()]
    assert outcomes == [("h1", "kept"), ("h2", "kept"), ("h3", "broken"), ("h4", "broken")]
    with sessions() as session:
        rows = session.execute(
            select(AlertRow.kind, AlertRow.state, AlertRow.outcome_key).order_by(AlertRow.id)
        )
        assert [tuple(r) for r in rows] == [
            ("alert", "broken", "K-1"),
            ("alert", "broken", "h3"),
            ("alert", "broken", "h4"),
            ("correction", "withdrawn", "K-1"),
        ]


def test_email_alerts_arrive_at_a_real_smtp_server(db_engine: Engine, tmp_path: Path) -> None:
    with SmtpReceiver() as smtp:
        promises = catalog_dir(tmp_path, "[{email: travel-leads@example.org}]")
        sessions = session_factory(db_engine)
        service = PromiseService(load_catalog(promises), sessions)
        service.ingest([record("p1", "10:00")])
        service.advance(at("15:00"))
        settings = settings_for(
            db_engine, promises, smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_from="pe@x.org"
        )
        drain(Dispatcher(settings, service.catalog, sessions))
        ((sender, recipients, content),) = smtp.messages
    assert sender == "pe@x.org" and recipients == ["travel-leads@example.org"]
    assert "Subject: Broken: travel-guarantee for C-1" in content
    assert 'BROKEN: "A reported booking problem is resolved within 4 hours' in content
    assert statuses(service) == [("alert", "broken", "delivered")]


def test_a_team_template_overrides_the_message_text(
    db_engine: Engine, tmp_path: Path, receiver: WebhookReceiver
) -> None:
    promises = catalog_dir(tmp_path, webhook_to(receiver))
    (promises / "templates" / "travel-support").mkdir(parents=True)
    (promises / "templates" / "travel-support" / "alert.txt.j2").write_text(
        "Travel desk: {{ alert.customer_id }} waited since {{ alert.opened_at }}"
    )
    sessions = session_factory(db_engine)
    service = PromiseService(load_catalog(promises), sessions)
    service.ingest([record("p1", "10:00")])
    service.advance(at("15:00"))
    drain(Dispatcher(settings_for(db_engine, promises), service.catalog, sessions))
    assert (
        receiver.received[0].json["text"]
        == "Travel desk: C-1 waited since 2024-03-01T10:00:00+00:00"
    )


def test_a_silence_in_teams_yaml_mutes_its_team_and_says_why(
    db_engine: Engine, tmp_path: Path, receiver: WebhookReceiver
) -> None:
    silence = (
        "silences: [{promise: travel-guarantee, from: '2020-01-01T00:00:00Z', "
        "until: '2100-01-01T00:00:00Z', reason: booking system migration, by: ana}]"
    )
    promises = catalog_dir(tmp_path, webhook_to(receiver), {"travel-support": [silence]})
    sessions = session_factory(db_engine)
    service = PromiseService(load_catalog(promises), sessions)
    service.ingest([record("p1", "10:00")])
    service.advance(at("15:00"))
    drain(Dispatcher(settings_for(db_engine, promises), service.catalog, sessions))
    assert receiver.received == []
    with sessions() as session:
        (delivery,) = session.scalars(select(DeliveryRow)).all()
    assert delivery.status == "silenced"
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("silenced: booking system migration (by ana, until 2100")


def test_a_digest_sends_one_message_listing_the_new_breaches(
    db_engine: Engine, tmp_path: Path, receiver: WebhookReceiver
) -> None:
    promises = catalog_dir(
        tmp_path, webhook_to(receiver), {"travel-support": ["digest: {every: 1h}"]}
    )
    sessions = session_factory(db_engine)
    service = PromiseService(load_catalog(promises), sessions)
    service.ingest([record(f"p{n}", "10:00", case_id=f"B-{n}") for n in range(3)])
    service.advance(at("15:00"))
    dispatcher = Dispatcher(settings_for(db_engine, promises), service.catalog, sessions)
    drain(dispatcher)
    (digest,) = receiver.received
    body = digest.json
    assert body["kind"] == "digest" and digest.signed_by(SECRET)
    assert sorted(a["scope"] for a in body["alerts"]) == ["B-0", "B-1", "B-2"]
    assert body["text"].startswith("3 promise alert(s) for travel-support since the last digest")
    # More breaches within the hour wait for the next digest.
    service.ingest([record("p9", "16:00", case_id="B-9")])
    service.advance(at("21:00"))
    drain(dispatcher)
    assert len(receiver.received) == 1
    assert statuses(service)[-1] == ("alert", "broken", "held")


def test_a_digest_set_through_the_api_overrides_teams_yaml_until_cleared(
    db_engine: Engine, tmp_path: Path, receiver: WebhookReceiver
) -> None:
    promises = catalog_dir(tmp_path, webhook_to(receiver))  # no digest in teams.yaml
    sessions = session_factory(db_engine)
    service = PromiseService(load_catalog(promises), sessions)
    dispatcher = Dispatcher(settings_for(db_engine, promises), service.catalog, sessions)
    digests.override(sessions, "travel-support", timedelta(hours=1))
    service.ingest([record(f"p{n}", "10:00", case_id=f"B-{n}") for n in range(2)])
    service.advance(at("15:00"))
    drain(dispatcher)
    assert [d.json["kind"] for d in receiver.received] == ["digest"]
    digests.override(sessions, "travel-support", None)  # off: one message per alert again
    service.ingest([record("p7", "16:00", case_id="B-7")])
    service.advance(at("21:00"))
    drain(dispatcher)
    assert [d.json["kind"] for d in receiver.received] == ["digest", "alert"]
    digests.clear(sessions, "travel-support")
    with sessions() as session:
        assert digests.effective(session, service.catalog)["travel-support"] is None


def test_a_dispatcher_killed_in_mid_delivery_loses_nothing(
    db_engine: Engine, tmp_path: Path, receiver: WebhookReceiver
) -> None:
    """SIGKILL a real `promise dispatcher` while the receiver is still answering; the next
    one sends the same alerts again under the same keys, and every alert arrives."""
    promises = catalog_dir(tmp_path, webhook_to(receiver))
    sessions = session_factory(db_engine)
    service = PromiseService(load_catalog(promises), sessions)
    service.ingest([record(f"p{n}", "10:00", case_id=f"B-{n}") for n in range(4)])
    service.advance(at("15:00"))
    with sessions() as session:
        expected = {f"alert-{i}" for i in session.scalars(select(AlertRow.id))}
    assert len(expected) == 4
    env = {
        **os.environ,
        "PROMISE_DATABASE_URL": db_engine.url.render_as_string(hide_password=False),
        "PROMISE_DIR": str(promises),
        "PROMISE_ALERT_LEASE_SECONDS": "1",
    }
    command = [str(Path(sys.executable).parent / "promise"), "dispatcher", "--interval", "0.05"]
    receiver.delay = 3  # the first request is in flight when the kill comes
    first = subprocess.Popen(command, env=env, cwd=tmp_path)
    receiver.wait_for(0)
    time.sleep(1.5)
    first.send_signal(signal.SIGKILL)
    first.wait()
    receiver.delay = 0
    second = subprocess.Popen(command, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
            set(receiver.keys()) != expected or {s for *_, s in statuses(service)} != {"delivered"}
        ):
            time.sleep(0.1)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    assert set(receiver.keys()) == expected
    assert {s for *_, s in statuses(service)} == {"delivered"}


def test_alerts_are_written_in_the_outcomes_transaction(
    db_engine: Engine, tmp_path: Path, receiver: WebhookReceiver
) -> None:
    """A crash that undoes the evaluation undoes its alerts: no alert without its outcome."""
    promises = catalog_dir(tmp_path, webhook_to(receiver))
    sessions = session_factory(db_engine)
    service = PromiseService(load_catalog(promises), sessions)
    service.ingest([record("p1", "10:00")])

    class Crash(Exception):
        pass

    original = service._sync

    def crash_after_sync(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        raise Crash

    service._sync = crash_after_sync  # type: ignore[method-assign]
    with pytest.raises(Crash):
        service.advance(at("15:00"))
    assert statuses(service) == []
    service._sync = original  # type: ignore[method-assign]
    service.advance(at("15:00"))
    assert statuses(service) == [("alert", "broken", "pending")]


def test_through_the_service_alerts_reach_the_team_and_can_be_listed_and_silenced(
    db_engine: Engine, tmp_path: Path, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real `promise serve` (API, worker, dispatcher) over the test database."""
    monkeypatch.setenv("PROMISE_ALERT_BACKOFF_SECONDS", "0.1")
    promises = catalog_dir(tmp_path, webhook_to(receiver))
    url = db_engine.url.render_as_string(hide_password=False)
    server = start_server(url, tmp_path, "--no-live", promise_dir=promises)
    try:
        with server.client() as client:
            # B-1 opens at 10:00; a record of another case at 15:00 moves the clock past due.
            post = client.post(
                "/interactions",
                json=[record("p1", "10:00"), record("x1", "15:00", case_id="B-2", type="note")],
            )
            assert post.json()["accepted"] == 2
            (delivery,) = receiver.wait_for(1)
            assert delivery.signed_by(SECRET)
            body = delivery.json
            assert (body["promise"], body["scope"], body["state"]) == (
                "travel-guarantee",
                "B-1",
                "broken",
            )
            link = client.get(body["link"].removeprefix("http://127.0.0.1:8000"))
            assert link.status_code == 200 and link.json()["evidence"] == ["p1"]

            server.wait_for(
                lambda: client.get("/alerts", params={"status": "delivered"}).json()["items"]
            )
            (listed,) = client.get("/alerts", params={"team": "travel-support"}).json()["items"]
            assert listed["id"] == body["id"]
            assert listed["deliveries"][0]["status"] == "delivered"
            assert listed["deliveries"][0]["route"] == f"webhook {receiver.url}/hooks"

            other = server.promise(
                "keys", "create", "care", "--scopes", "read", "--team", "operations"
            )
            refused = client.post(
                "/silences",
                json={"team": "travel-support", "until": "2100-01-01T00:00:00Z", "reason": "x"},
                headers={"Authorization": f"Bearer {other.strip()}"},
            )
            assert refused.status_code == 403
            bad = client.post(
                "/silences",
                json={
                    "team": "travel-support",
                    "promise": "ask-once",
                    "until": "2100-01-01T00:00Z",
                    "reason": "migration",
                },
            )
            assert bad.status_code == 422
            assert "team 'travel-support' owns no promise 'ask-once'" in bad.json()["detail"]
            silence = client.post(
                "/silences",
                json={
                    "team": "travel-support",
                    "until": "2100-01-01T00:00:00Z",
                    "reason": "booking system migration",
                },
            )
            assert silence.status_code == 201, silence.text
            assert silence.json()["by"].startswith("admin-")
            client.post(
                "/interactions",
                json=[
                    record("p2", "16:00", case_id="B-3"),
                    record("x2", "21:00", case_id="B-4", type="note"),
                ],
            )
            server.wait_for(
                lambda: client.get("/alerts", params={"status": "silenced"}).json()["items"]
            )
            (muted,) = client.get("/alerts", params={"status": "silenced"}).json()["items"]
            assert muted["outcome"]["scope"] == "B-3"
            assert muted["deliveries"][0]["last_error"].startswith(
                "silenced: booking system migration (by admin-"
            )
            teams = {t["id"]: t for t in client.get("/teams").json()}
            assert teams["travel-support"]["routes"] == [f"webhook {receiver.url}/hooks"]
            assert teams["travel-support"]["digest_every"] is None
            digest = client.put("/teams/travel-support/digest", json={"every": "2h"}).json()
            assert (digest["digest_every"], digest["digest_source"]) == ("2h", "api")
            bad_digest = client.put("/teams/travel-support/digest", json={"every": "soon"})
            assert bad_digest.status_code == 422 and "bad duration 'soon'" in bad_digest.text
            assert client.put("/teams/nobody/digest", json={"every": "1h"}).status_code == 404
            cleared = client.delete("/teams/travel-support/digest").json()
            assert (cleared["digest_every"], cleared["digest_source"]) == (None, "teams.yaml")
            ended = client.delete(f"/silences/{silence.json()['id']}")
            assert ended.status_code == 200
            assert client.get("/silences", params={"active": True}).json() == []
            assert len(receiver.received) == 1
    finally:
        stop_server(server)


def test_a_backfilled_batch_stores_every_breach_and_alerts_only_recent_ones(
    db_engine: Engine, tmp_path: Path, receiver: WebhookReceiver
) -> None:
    """History sent with ?backfill=true through a real `promise serve`: a breach three days
    old is stored and counted in the report, and nobody is paged about it; one decided six
    hours ago, and one still open and at risk, are alerted (PROMISE_BACKFILL_ALERT_WINDOW
    is 24h)."""
    promises = catalog_dir(tmp_path, webhook_to(receiver))
    url = db_engine.url.render_as_string(hide_password=False)
    latest = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=15)

    def problem(id: str, case: str, hours_before: float, **fields: Any) -> dict[str, Any]:
        when = (latest - timedelta(hours=hours_before)).isoformat()
        return {**record(id, "00:00", case_id=case, **fields), "occurred_at": when}

    history = [
        problem("old", "B-old", 72),  # due 68 h ago: broken long ago
        problem("new", "B-new", 10),  # due 6 h ago: a recent breach
        problem("open", "B-open", 3.25),  # at risk since 15 minutes ago, still open
        problem("note", "B-note", 0, type="note"),  # the latest record: the clock
    ]
    server = start_server(url, tmp_path, "--no-live", promise_dir=promises)
    try:
        with server.client() as client:
            post = client.post("/interactions", params={"backfill": "true"}, json=history)
            assert post.json()["accepted"] == 4

            def held() -> list[dict[str, Any]]:
                return client.get("/alerts", params={"kind": "backfilled"}).json()["items"]

            server.wait_for(held)  # evaluated: the round's alerts are written with it
            backfilled = held()
            sent = receiver.wait_for(2)
            outcomes = client.get("/outcomes", params={"promise": "travel-guarantee"}).json()
            report = client.get("/reports/travel-support", params={"format": "md"}).text
    finally:
        stop_server(server)
    assert sorted((d.json["scope"], d.json["state"]) for d in sent) == [
        ("B-new", "broken"),
        ("B-open", "at_risk"),
    ]
    assert [(a["outcome"]["scope"], a["state"], a["deliveries"]) for a in backfilled] == [
        ("B-old", "broken", [])
    ]
    stored = {(o["scope"], o["state"]) for o in outcomes["items"]}
    assert stored == {("B-old", "broken"), ("B-new", "broken"), ("B-open", "at_risk")}
    assert "1 breach(es) of the period were not alerted: they were backfilled history" in report
    assert len(receiver.received) == 2


@pytest.mark.parametrize(
    ("broken", "decided", "objective", "factor"),
    [(1, 10, 0.95, 2), (3, 100, 0.99, 3), (7, 70, 0.9, 1)],
)
def test_a_rate_exactly_at_its_factor_burns(
    broken: int, decided: int, objective: float, factor: float
) -> None:
    """The alert opens at the factor "or more": a rate that is exactly the factor in decimal
    must not come out a hair under it in binary floating point."""
    found = burn.rate(broken, decided, objective)
    assert found is not None and found >= factor
    assert burn.rate(broken - 1, decided, objective) < factor  # one breach fewer: under it


ALERTING_RATES = "burn_rates: [{long: 1h, short: 10m, factor: 10}]"
SILENT_RATES = "burn_rates: [{long: 1h, short: 10m, factor: 100}]"


@pytest.mark.parametrize(
    ("promise_rates", "team_rates"),
    [
        pytest.param(ALERTING_RATES, None, id="the promise's"),
        pytest.param(None, ALERTING_RATES, id="its team's"),
        pytest.param(ALERTING_RATES, SILENT_RATES, id="the promise's over its team's"),
    ],
)
def test_a_burn_rate_alert_opens_once_and_resolves_when_the_burn_stops(
    db_engine: Engine,
    tmp_path: Path,
    receiver: WebhookReceiver,
    promise_rates: str | None,
    team_rates: str | None,
) -> None:
    """travel-guarantee (objective 98%: a 2% budget) alerts at 10x over 1 h and 10 min (its
    own rule, or its team's in teams.yaml; the defaults would not alert), on a route that
    takes only objective alerts. Ten kept by 09:45, then two breaches (10:10, 10:20): 2 of 6
    decided in the hour before 10:25 (16.7x; over a 6 h window it would be 2 of 12, 8.3x: no
    alert). It stays open while the short window burns, and resolves once it holds only kept
    outcomes."""
    route = (
        f"[{{webhook: '{receiver.url}/hooks', secret: '${{PROMISE_TEST_HOOK_SECRET}}', "
        "alerts: objective}]"
    )
    promises = catalog_dir(tmp_path, route, {"travel-support": [team_rates] if team_rates else []})
    if promise_rates is not None:
        with (promises / "travel-guarantee.yaml").open("a") as definition:
            definition.write(f"{promise_rates}\n")
    sessions = session_factory(db_engine)
    service = PromiseService(load_catalog(promises), sessions)
    dispatcher = Dispatcher(settings_for(db_engine, promises), service.catalog, sessions)

    def kept(n: int, start: str, resolved: str) -> list[dict[str, Any]]:
        case = f"K-{n}"
        return [
            record(f"k{n}", start, case_id=case),
            record(f"r{n}", resolved, case_id=case, type="resolved"),
        ]

    history = [r for n in range(10) for r in kept(n, "08:00", f"09:{5 * n:02d}")]
    history += [record("x1", "06:10", case_id="X-1"), record("x2", "06:20", case_id="X-2")]
    service.ingest(history)
    service.advance(at("10:25"))  # both breaches decided: burning
    service.advance(at("10:27"))  # the 10:20 breach is still in the short window
    drain(dispatcher)
    (opened,) = receiver.received
    report = render.render(build.build_report(sessions, service.catalog, "travel-support"), "md")
    assert "- travel-guarantee: error budget burning 16.7x over 1h" in report
    service.ingest([*kept(20, "10:00", "10:30"), *kept(21, "10:00", "10:32")])
    drain(dispatcher)
    assert not build.build_report(sessions, service.catalog, "travel-support").burning

    assert [(d.json["kind"], d.json["state"]) for d in receiver.received] == [
        ("objective", "burning"),
        ("objective", "resolved"),
    ]
    assert opened.json["promise"] == "travel-guarantee"
    assert "OBJECTIVE BURNING" in opened.json["text"]
    # Read like the other alerts: state and promise first, the link people follow on the
    # dashboard (the promise's page: the alert is on no one outcome), no outcome times.
    assert opened.json["subject"] == "Objective at risk: travel-guarantee burns its error budget"
    assert opened.json["dashboard_link"].endswith("/ui/promises/travel-guarantee")
    assert opened.json["timezone"] and opened.json["opened_local"] is None
    assert "opened:" not in opened.json["text"]
    assert opened.json["reason"].startswith(
        "error budget burning 16.7x over 1h and 50.0x over 10m at 2024-03-01T10:25:00+00:00"
    )
    assert receiver.received[1].json["corrects"] == opened.json["id"]
    with sessions() as session:  # per-opportunity alerts were kept, sent to no route
        broken = session.scalars(
            select(AlertRow.id).where(AlertRow.kind == "alert", AlertRow.state == "broken")
        ).all()
        assert len(broken) == 2
        assert not session.scalars(
            select(DeliveryRow.id).where(DeliveryRow.alert_id.in_(broken))
        ).all()
