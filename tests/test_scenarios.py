"""Scenarios that pin docs/semantics.md on the sample catalog, run on both evaluators.

Every scenario runs twice: on the reference evaluator (plain Python, the oracle of the
property tests) and on the engine (durable-rules). Each case is worked out by hand
(business hours counted on the calendar, not computed by the code under test).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine_adapter
import reference
from reference import ABSENT, field_value, match_holds
from rules.loader import load_catalog
from rules.models import Catalog, Compare, Equals, Exists, LimitPromise, Match, Matches, Not, OneOf
from rules.regex import translate

CATALOG = load_catalog(Path(__file__).resolve().parent.parent / "promises")
LONDON = ZoneInfo("Europe/London")


# --- helpers -------------------------------------------------------------------------------------

_EVALUATORS = {"reference": reference.evaluate, "engine": engine_adapter.evaluate}
_current = ["reference"]


@pytest.fixture(autouse=True, params=sorted(_EVALUATORS))
def evaluator(request: pytest.FixtureRequest) -> str:
    """Runs each scenario once per evaluator."""
    _current[0] = request.param
    return request.param


def evaluate(catalog: Catalog, records: list[dict], until: datetime | None = None) -> list[dict]:
    return _EVALUATORS[_current[0]](catalog, records, until)


def at(when: str, tz: ZoneInfo | None = None) -> datetime:
    """``"2024-03-01 10:00"`` as an aware datetime (UTC unless ``tz``)."""
    return datetime.strptime(when, "%Y-%m-%d %H:%M").replace(tzinfo=tz or UTC)


def uk(when: str) -> datetime:
    return at(when, LONDON)


def rec(
    id: str,
    when: str | datetime,
    *,
    customer_id: str = "K1",
    tz: ZoneInfo | None = None,
    **fields: Any,
) -> dict:
    """An interaction record; ``when`` is UTC text, London text with ``tz``, or a datetime."""
    occurred = when if isinstance(when, datetime) else at(when, tz)
    return {"id": id, "occurred_at": occurred, "customer_id": customer_id, **fields}


def outcomes(promise: str, records: list[dict], until: datetime | None = None) -> list[dict]:
    return [o for o in evaluate(CATALOG, records, until) if o["promise"] == promise]


def only(promise: str, records: list[dict], until: datetime | None = None) -> dict:
    found = outcomes(promise, records, until)
    assert len(found) == 1, found
    return found[0]


# email-reply-1bd: scope case_id, uk-office 09:00-17:30 Mon-Fri, 8h, warn at 75%.


def email_in(id: str, when: str, case: str = "C1") -> dict:
    return rec(
        id, when, tz=LONDON, case_id=case, type="message", channel="email", direction="inbound"
    )


def reply(id: str, when: str, case: str = "C1") -> dict:
    return rec(
        id, when, tz=LONDON, case_id=case, type="message", channel="email", direction="outbound"
    )


def waiting(id: str, when: str, case: str = "C1") -> dict:
    return rec(
        id,
        when,
        tz=LONDON,
        case_id=case,
        type="status",
        attributes={"status": "waiting_on_customer"},
    )


def spam(id: str, when: str, case: str = "C1") -> dict:
    return rec(id, when, tz=LONDON, case_id=case, type="closed", attributes={"reason": "spam"})


# Fri 2024-03-01 16:00 GMT + 8 business hours: 1.5h on Friday, 6.5h on Monday.
FRIDAY_EMAIL_DUE = uk("2024-03-04 15:30")
FRIDAY_EMAIL_WARN = uk("2024-03-04 13:30")  # + 6h: 1.5h Friday, 4.5h Monday


# --- email-reply-1bd -----------------------------------------------------------------------------


def test_email_answered_within_one_business_day_across_weekend_is_kept() -> None:
    result = only(
        "email-reply-1bd", [email_in("e1", "2024-03-01 16:00"), reply("r1", "2024-03-04 15:00")]
    )
    assert result == {
        "promise": "email-reply-1bd",
        "version": CATALOG.promises["email-reply-1bd"].version,
        "scope": "C1",
        "customer_id": "K1",
        "state": "kept",
        "opened_at": uk("2024-03-01 16:00"),
        "due_at": FRIDAY_EMAIL_DUE,
        "decided_at": uk("2024-03-04 15:00"),
        "evidence": ["e1", "r1"],
    }


def test_email_answered_exactly_at_due_is_kept_because_passing_is_strict() -> None:
    result = only(
        "email-reply-1bd", [email_in("e1", "2024-03-01 16:00"), reply("r1", "2024-03-04 15:30")]
    )
    assert result["state"] == "kept"
    assert result["decided_at"] == FRIDAY_EMAIL_DUE


def test_email_answered_after_due_is_broken_late_decided_at_due_with_stop_in_evidence() -> None:
    result = only(
        "email-reply-1bd", [email_in("e1", "2024-03-01 16:00"), reply("r1", "2024-03-04 16:31")]
    )
    assert result["state"] == "broken"
    assert result["due_at"] == FRIDAY_EMAIL_DUE
    assert result["decided_at"] == FRIDAY_EMAIL_DUE
    assert result["evidence"] == ["e1", "r1"]


def test_unanswered_email_is_broken_once_final_clock_passes_due() -> None:
    result = only(
        "email-reply-1bd", [email_in("e1", "2024-03-01 16:00")], until=uk("2024-03-05 09:00")
    )
    assert result["state"] == "broken"
    assert result["decided_at"] == FRIDAY_EMAIL_DUE
    assert result["evidence"] == ["e1"]


def test_final_clock_is_latest_record_of_any_promise_when_later_than_until() -> None:
    unrelated = rec("x1", "2024-03-05 09:00", tz=LONDON, case_id="other", type="note")
    result = only(
        "email-reply-1bd",
        [email_in("e1", "2024-03-01 16:00"), unrelated],
        until=uk("2024-03-01 17:00"),
    )
    assert result["state"] == "broken"


@pytest.mark.parametrize(
    ("until", "state"),
    [
        (FRIDAY_EMAIL_WARN - timedelta(minutes=1), "pending"),
        (FRIDAY_EMAIL_WARN, "at_risk"),  # reached means clock >= warning point
        (uk("2024-03-04 14:00"), "at_risk"),
        (FRIDAY_EMAIL_DUE, "at_risk"),  # not broken until strictly after due
        (FRIDAY_EMAIL_DUE + timedelta(microseconds=1), "broken"),
    ],
)
def test_unanswered_email_state_follows_warning_point_and_due(until: datetime, state: str) -> None:
    result = only("email-reply-1bd", [email_in("e1", "2024-03-01 16:00")], until=until)
    assert result["state"] == state
    assert result["due_at"] == FRIDAY_EMAIL_DUE
    assert result["decided_at"] == (FRIDAY_EMAIL_DUE if state == "broken" else None)


def test_email_before_good_friday_and_easter_monday_is_due_tuesday_in_summer_time() -> None:
    # Thu 16:00 GMT: 1.5h Thursday; Fri 29 Mar and Mon 1 Apr are holidays; 6.5h Tuesday (BST).
    result = only("email-reply-1bd", [email_in("e1", "2024-03-28 16:00")])
    assert result["state"] == "pending"
    assert result["due_at"] == uk("2024-04-02 15:30")
    assert result["due_at"] == at("2024-04-02 14:30")


def test_waiting_on_customer_pauses_and_inbound_message_resumes_shifting_due() -> None:
    # Opened Mon 09:00, due Mon 17:00. Paused Mon 11:00 with 6h left; resumed Tue 10:00:
    # due Tue 16:00, i.e. shifted by the 7.5 business hours spent paused.
    records = [
        email_in("e1", "2024-03-04 09:00"),
        waiting("w1", "2024-03-04 11:00"),
        email_in("e2", "2024-03-05 10:00"),
    ]
    result = only("email-reply-1bd", records)
    assert result["state"] == "pending"
    assert result["due_at"] == uk("2024-03-05 16:00")
    assert result["evidence"] == ["e1"]


def test_resume_moves_warning_point_by_its_own_remaining_time() -> None:
    # Warning point Mon 15:00 (6h after 09:00); 4h of it left at the pause: Tue 14:00.
    records = [
        email_in("e1", "2024-03-04 09:00"),
        waiting("w1", "2024-03-04 11:00"),
        email_in("e2", "2024-03-05 10:00"),
    ]
    assert only("email-reply-1bd", records, until=uk("2024-03-05 13:59"))["state"] == "pending"
    assert only("email-reply-1bd", records, until=uk("2024-03-05 14:00"))["state"] == "at_risk"
    late = only("email-reply-1bd", [*records, reply("r1", "2024-03-05 16:01")])
    assert late["state"] == "broken"
    assert late["decided_at"] == uk("2024-03-05 16:00")


def test_paused_email_has_no_due_time_and_the_clock_cannot_break_it() -> None:
    records = [email_in("e1", "2024-03-04 09:00"), waiting("w1", "2024-03-04 11:00")]
    result = only("email-reply-1bd", records, until=uk("2024-03-20 12:00"))
    assert result["state"] == "pending"
    assert result["due_at"] is None
    assert result["decided_at"] is None


def test_pause_after_due_does_not_rescue_a_broken_email() -> None:
    records = [
        email_in("e1", "2024-03-04 09:00"),
        waiting("w1", "2024-03-04 17:10"),
        email_in("e2", "2024-03-05 09:00"),
    ]
    result = only("email-reply-1bd", records)
    assert result["state"] == "broken"
    assert result["due_at"] == result["decided_at"] == uk("2024-03-04 17:00")


def test_spam_closure_before_due_cancels_the_email() -> None:
    result = only(
        "email-reply-1bd", [email_in("e1", "2024-03-01 16:00"), spam("s1", "2024-03-04 10:00")]
    )
    assert result["state"] == "cancelled"
    assert result["decided_at"] == uk("2024-03-04 10:00")
    assert result["due_at"] == FRIDAY_EMAIL_DUE
    assert result["evidence"] == ["e1", "s1"]


def test_spam_closure_after_due_keeps_the_email_broken() -> None:
    result = only(
        "email-reply-1bd", [email_in("e1", "2024-03-01 16:00"), spam("s1", "2024-03-05 10:00")]
    )
    assert result["state"] == "broken"
    assert result["decided_at"] == FRIDAY_EMAIL_DUE
    assert result["evidence"] == ["e1", "s1"]


def test_second_inbound_email_while_one_is_open_opens_nothing() -> None:
    records = [
        email_in("e1", "2024-03-04 09:00"),
        email_in("e2", "2024-03-04 10:00"),
        reply("r1", "2024-03-04 12:00"),
    ]
    result = only("email-reply-1bd", records)
    assert result["state"] == "kept"
    assert result["evidence"] == ["e1", "r1"]


def test_email_after_a_reply_opens_a_second_opportunity_in_the_same_case() -> None:
    records = [
        email_in("e1", "2024-03-04 09:00"),
        reply("r1", "2024-03-04 12:00"),
        email_in("e2", "2024-03-04 13:00"),
    ]
    first, second = outcomes("email-reply-1bd", records)
    assert (first["state"], first["evidence"]) == ("kept", ["e1", "r1"])
    assert (second["state"], second["evidence"]) == ("pending", ["e2"])
    assert second["opened_at"] == uk("2024-03-04 13:00")
    assert second["due_at"] == uk("2024-03-05 12:30")


def test_new_email_is_ignored_while_a_broken_one_is_still_open() -> None:
    records = [email_in("e1", "2024-03-04 09:00"), email_in("e2", "2024-03-05 09:00")]
    result = only("email-reply-1bd", records)
    assert (result["state"], result["evidence"]) == ("broken", ["e1"])


def test_reply_in_another_case_does_not_answer_the_email() -> None:
    records = [email_in("e1", "2024-03-04 09:00", "C1"), reply("r1", "2024-03-04 10:00", "C2")]
    result = only("email-reply-1bd", records)
    assert (result["scope"], result["state"]) == ("C1", "pending")


def test_email_without_case_is_ignored_by_a_case_scoped_promise() -> None:
    orphan = email_in("e1", "2024-03-04 09:00")
    del orphan["case_id"]
    empty = email_in("e2", "2024-03-04 09:00", case="")
    assert outcomes("email-reply-1bd", [orphan, empty]) == []


def test_same_instant_records_are_taken_in_id_order() -> None:
    # a0 sorts before e1 at the same instant, so the reply comes first and answers nothing.
    records = [email_in("e1", "2024-03-04 09:00"), reply("a0", "2024-03-04 09:00")]
    assert only("email-reply-1bd", records)["state"] == "pending"
    records = [email_in("e1", "2024-03-04 09:00"), reply("z9", "2024-03-04 09:00")]
    assert only("email-reply-1bd", records)["state"] == "kept"


# --- ask-once: never, scope customer_id, same attributes.item, within 365d ------------------------


def given_info(id: str, when: str, item: str = "address", customer: str = "K1") -> dict:
    return rec(
        id,
        when,
        customer_id=customer,
        type="info_provided",
        channel="phone",
        direction="inbound",
        team="claims",
        attributes={"item": item},
    )


def asked(id: str, when: str, item: str = "address", customer: str = "K1") -> dict:
    return rec(
        id,
        when,
        customer_id=customer,
        type="info_requested",
        channel="email",
        direction="outbound",
        team="contact-centre",
        attributes={"item": item},
    )


def test_asking_again_for_information_given_to_another_team_breaks_ask_once() -> None:
    result = only(
        "ask-once", [given_info("g1", "2024-02-01 10:00"), asked("a1", "2024-05-01 10:00")]
    )
    assert result == {
        "promise": "ask-once",
        "version": CATALOG.promises["ask-once"].version,
        "scope": "K1",
        "customer_id": "K1",
        "state": "broken",
        "opened_at": at("2024-05-01 10:00"),
        "due_at": None,
        "decided_at": at("2024-05-01 10:00"),
        "evidence": ["g1", "a1"],
    }


def test_asking_for_a_different_item_keeps_ask_once() -> None:
    records = [
        given_info("g1", "2024-02-01 10:00", "address"),
        asked("a1", "2024-05-01 10:00", "iban"),
    ]
    result = only("ask-once", records)
    assert (result["state"], result["evidence"]) == ("kept", ["a1"])
    assert result["decided_at"] == result["opened_at"] == at("2024-05-01 10:00")


def test_asking_366_days_later_keeps_ask_once() -> None:
    records = [given_info("g1", "2024-02-01 10:00"), asked("a1", "2025-02-01 10:00")]
    assert at("2025-02-01 10:00") - at("2024-02-01 10:00") == timedelta(days=366)
    assert only("ask-once", records)["state"] == "kept"


def test_asking_exactly_365_days_later_still_breaks_ask_once() -> None:
    records = [given_info("g1", "2024-02-01 10:00"), asked("a1", "2025-01-31 10:00")]
    assert only("ask-once", records)["state"] == "broken"


def test_information_given_after_the_question_does_not_count_even_if_listed_first() -> None:
    records = [given_info("g1", "2024-05-02 10:00"), asked("a1", "2024-05-01 10:00")]
    result = only("ask-once", records)
    assert (result["state"], result["evidence"]) == ("kept", ["a1"])


def test_ask_once_evidence_names_the_most_recent_earlier_answer() -> None:
    records = [
        given_info("g2", "2024-03-01 10:00"),
        given_info("g1", "2024-02-01 10:00"),
        asked("a1", "2024-05-01 10:00"),
    ]
    assert only("ask-once", records)["evidence"] == ["g2", "a1"]


def test_information_given_by_another_customer_does_not_break_ask_once() -> None:
    records = [given_info("g1", "2024-02-01 10:00", customer="K2"), asked("a1", "2024-05-01 10:00")]
    assert only("ask-once", records)["state"] == "kept"


def test_every_repeated_question_is_its_own_ask_once_opportunity() -> None:
    records = [
        asked("a1", "2024-01-15 10:00"),
        given_info("g1", "2024-02-01 10:00"),
        asked("a2", "2024-05-01 10:00"),
        asked("a3", "2024-06-01 10:00"),
    ]
    assert [(o["state"], o["evidence"]) for o in outcomes("ask-once", records)] == [
        ("kept", ["a1"]),
        ("broken", ["g1", "a2"]),
        ("broken", ["g1", "a3"]),
    ]


def test_question_without_the_same_field_cannot_be_a_repeat() -> None:
    question = asked("a1", "2024-05-01 10:00")
    question["attributes"] = {}
    assert only("ask-once", [given_info("g1", "2024-02-01 10:00"), question])["state"] == "kept"


# --- two-handoffs: limit, scope case_id, max 2 within 30d ---------------------------------------


def handoff(id: str, when: str, case: str = "C1") -> dict:
    return rec(id, when, case_id=case, type="handoff", team="claims")


def verdicts(promise: str, records: list[dict], catalog: Catalog = CATALOG) -> list[tuple]:
    """(scope, state, decided_at, evidence) of each outcome, by scope and in order of
    opening (records at one moment in order of id: the last of the evidence)."""
    found = [o for o in evaluate(catalog, records) if o["promise"] == promise]
    found.sort(key=lambda o: (o["scope"], o["opened_at"], o["evidence"][-1]))
    return [(o["scope"], o["state"], o["decided_at"], o["evidence"]) for o in found]


def test_each_handoff_is_an_opportunity_and_the_third_in_30_days_breaks() -> None:
    records = [
        handoff("h1", "2024-04-01 09:00"),
        handoff("h2", "2024-04-10 09:00"),
        handoff("h3", "2024-04-20 09:00"),
        handoff("h4", "2024-04-21 09:00"),
    ]
    found = outcomes("two-handoffs", records)
    assert [(o["opened_at"], o["due_at"]) for o in found] == [
        (at("2024-04-01 09:00"), None),
        (at("2024-04-10 09:00"), None),
        (at("2024-04-20 09:00"), None),
        (at("2024-04-21 09:00"), None),
    ]
    assert verdicts("two-handoffs", records) == [
        ("C1", "kept", at("2024-04-01 09:00"), ["h1"]),
        ("C1", "kept", at("2024-04-10 09:00"), ["h2"]),
        ("C1", "broken", at("2024-04-20 09:00"), ["h1", "h2", "h3"]),
        ("C1", "broken", at("2024-04-21 09:00"), ["h2", "h3", "h4"]),  # h2 is 11 days before
    ]


def test_third_handoff_31_days_after_the_first_keeps_two_handoffs() -> None:
    records = [
        handoff("h1", "2024-04-01 09:00"),
        handoff("h2", "2024-04-20 09:00"),
        handoff("h3", "2024-05-02 09:00"),
    ]
    assert [v[1] for v in verdicts("two-handoffs", records)] == ["kept"] * 3
    assert verdicts("two-handoffs", records)[-1][2:] == (at("2024-05-02 09:00"), ["h3"])


def test_third_handoff_exactly_30_days_after_the_first_breaks_two_handoffs() -> None:
    records = [
        handoff("h1", "2024-04-01 09:00"),
        handoff("h2", "2024-04-20 09:00"),
        handoff("h3", "2024-05-01 09:00"),
    ]
    assert [v[1] for v in verdicts("two-handoffs", records)] == ["kept", "kept", "broken"]


def test_two_handoffs_window_slides_to_a_later_break() -> None:
    records = [
        handoff("h1", "2024-04-01 09:00"),
        handoff("h2", "2024-05-05 09:00"),
        handoff("h3", "2024-05-06 09:00"),  # 35 days after h1: fine
        handoff("h4", "2024-05-10 09:00"),  # 5 days after h2: broken
    ]
    assert verdicts("two-handoffs", records)[2:] == [
        ("C1", "kept", at("2024-05-06 09:00"), ["h3"]),
        ("C1", "broken", at("2024-05-10 09:00"), ["h2", "h3", "h4"]),
    ]


def test_a_second_excess_a_year_later_is_broken_again() -> None:
    """Issue #14, item 8: a windowed limit reported only a scope's first excess."""
    records = [
        handoff("h1", "2024-04-01 09:00"),
        handoff("h2", "2024-04-02 09:00"),
        handoff("h3", "2024-04-03 09:00"),
        handoff("h4", "2025-04-01 09:00"),
        handoff("h5", "2025-04-02 09:00"),
        handoff("h6", "2025-04-03 09:00"),
    ]
    assert [(v[1], v[3]) for v in verdicts("two-handoffs", records)] == [
        ("kept", ["h1"]),
        ("kept", ["h2"]),
        ("broken", ["h1", "h2", "h3"]),
        ("kept", ["h4"]),
        ("kept", ["h5"]),
        ("broken", ["h4", "h5", "h6"]),
    ]


def test_handoffs_at_the_same_moment_are_counted_in_order_of_id() -> None:
    records = [
        handoff("hb", "2024-04-02 10:00"),
        handoff("ha", "2024-04-02 10:00"),
        handoff("h1", "2024-04-01 09:00"),
    ]
    assert [(v[1], v[3]) for v in verdicts("two-handoffs", records)] == [
        ("kept", ["h1"]),
        ("kept", ["ha"]),
        ("broken", ["h1", "ha", "hb"]),
    ]


def test_handoffs_of_different_cases_are_counted_apart() -> None:
    records = [
        handoff("h1", "2024-04-01 09:00", "C1"),
        handoff("h2", "2024-04-02 09:00", "C2"),
        handoff("h3", "2024-04-03 09:00", "C1"),
        handoff("h4", "2024-04-04 09:00", "C2"),
    ]
    assert [(v[0], v[1], v[3]) for v in verdicts("two-handoffs", records)] == [
        ("C1", "kept", ["h1"]),
        ("C1", "kept", ["h3"]),
        ("C2", "kept", ["h2"]),
        ("C2", "kept", ["h4"]),
    ]


def test_a_limit_without_a_window_is_one_opportunity_per_scope_broken_for_good() -> None:
    handoffs = CATALOG.promises["two-handoffs"]
    ever = dataclasses.replace(handoffs, id="ever", within=None, version="ever")
    catalog = Catalog(promises={"ever": ever}, teams={}, calendars={})
    records = [
        handoff("h1", "2024-04-01 09:00"),
        handoff("h2", "2024-04-02 09:00"),
        handoff("h3", "2024-04-03 09:00"),
        handoff("h4", "2025-04-01 09:00"),
    ]
    assert verdicts("ever", records, catalog) == [
        ("C1", "broken", at("2024-04-03 09:00"), ["h1", "h2", "h3"])
    ]
    assert verdicts("ever", records[:2], catalog) == [
        ("C1", "kept", at("2024-04-02 09:00"), ["h1", "h2"])
    ]


# --- travel-guarantee: deadline, scope case_id, 4h 24x7, warn at 75% ---------------------------


def test_travel_problem_resolved_overnight_within_four_hours_is_kept() -> None:
    records = [
        rec("p1", "2024-06-01 22:00", case_id="B1", type="problem_reported"),
        rec("s1", "2024-06-02 01:30", case_id="B1", type="resolved"),
    ]
    result = only("travel-guarantee", records)
    assert result["state"] == "kept"
    assert result["due_at"] == at("2024-06-02 02:00")


def test_travel_problem_resolved_after_four_hours_is_broken() -> None:
    records = [
        rec("p1", "2024-06-01 22:00", case_id="B1", type="problem_reported"),
        rec("s1", "2024-06-02 02:01", case_id="B1", type="resolved"),
    ]
    result = only("travel-guarantee", records)
    assert (result["state"], result["evidence"]) == ("broken", ["p1", "s1"])
    assert result["decided_at"] == at("2024-06-02 02:00")


def test_travel_problem_is_at_risk_after_three_hours() -> None:
    records = [rec("p1", "2024-06-01 22:00", case_id="B1", type="problem_reported")]
    assert only("travel-guarantee", records, until=at("2024-06-02 01:00"))["state"] == "at_risk"
    assert only("travel-guarantee", records, until=at("2024-06-02 00:59"))["state"] == "pending"


def test_cancelled_booking_cancels_the_travel_guarantee() -> None:
    records = [
        rec("p1", "2024-06-01 22:00", case_id="B1", type="problem_reported"),
        rec("c1", "2024-06-01 23:00", case_id="B1", type="booking_cancelled"),
    ]
    result = only("travel-guarantee", records, until=at("2024-06-03 00:00"))
    assert (result["state"], result["evidence"]) == ("cancelled", ["p1", "c1"])


# --- detractor-follow-up-48h: deadline, scope customer_id, 48h 24x7 -----------------------------


def survey(id: str, when: str, nps: int) -> dict:
    return rec(id, when, type="survey_response", channel="web", attributes={"nps": nps})


def test_detractor_followed_up_by_outbound_call_within_48h_is_kept() -> None:
    records = [
        survey("n1", "2024-07-05 18:00", 6),
        rec("c1", "2024-07-07 17:00", type="call", channel="phone", direction="outbound"),
    ]
    result = only("detractor-follow-up-48h", records)
    assert (result["state"], result["evidence"]) == ("kept", ["n1", "c1"])
    assert result["due_at"] == at("2024-07-07 18:00")


def test_detractor_not_followed_up_within_48h_is_broken() -> None:
    records = [
        survey("n1", "2024-07-05 18:00", 3),
        rec("m1", "2024-07-06 09:00", type="message", channel="email", direction="inbound"),
    ]
    result = only("detractor-follow-up-48h", records, until=at("2024-07-08 09:00"))
    assert (result["state"], result["evidence"]) == ("broken", ["n1"])
    assert result["decided_at"] == at("2024-07-07 18:00")


def test_passive_score_of_seven_opens_no_detractor_follow_up() -> None:
    assert outcomes("detractor-follow-up-48h", [survey("n1", "2024-07-05 18:00", 7)]) == []


def test_survey_without_a_score_opens_no_detractor_follow_up() -> None:
    record = survey("n1", "2024-07-05 18:00", 0)
    record["attributes"] = {}
    assert outcomes("detractor-follow-up-48h", [record]) == []


# --- callback-2h: deadline, scope customer_id, callback-desk, 2h, warn at 50% ------------------


def test_callback_across_the_lunch_break_is_kept() -> None:
    # Mon 12:00 + 2h: 30 min before lunch, 90 min from 13:30: due 15:00.
    records = [
        rec("p1", "2024-03-04 12:00", tz=LONDON, type="callback_promised", channel="phone"),
        rec(
            "c1", "2024-03-04 14:45", tz=LONDON, type="call", channel="phone", direction="outbound"
        ),
    ]
    result = only("callback-2h", records)
    assert result["state"] == "kept"
    assert result["due_at"] == uk("2024-03-04 15:00")


def test_callback_promised_saturday_lunchtime_missed_on_monday_is_broken() -> None:
    # Sat 12:30 + 2h: 30 min on Saturday, 90 min from Monday 08:00: due Mon 09:30.
    records = [
        rec("p1", "2024-03-09 12:30", tz=LONDON, type="callback_promised", channel="phone"),
        rec(
            "c1", "2024-03-11 10:00", tz=LONDON, type="call", channel="email", direction="outbound"
        ),
    ]
    result = only("callback-2h", records)
    assert (result["state"], result["evidence"]) == ("broken", ["p1"])
    assert result["decided_at"] == uk("2024-03-11 09:30")


def test_cancelled_callback_is_cancelled() -> None:
    records = [
        rec("p1", "2024-03-04 12:00", tz=LONDON, type="callback_promised"),
        rec("x1", "2024-03-04 12:10", tz=LONDON, type="callback_cancelled"),
    ]
    assert only("callback-2h", records)["state"] == "cancelled"


# --- complaint-3bd: deadline, scope case_id, uk-office, 3 business days, warn at 50% -------------


def complaint(id: str, when: str, **fields: Any) -> dict:
    return rec(id, when, tz=LONDON, case_id="Q1", type="complaint", direction="inbound", **fields)


def test_complaint_is_due_at_the_close_of_the_third_business_day_whatever_its_hour() -> None:
    # Mon 08:00 and Mon 23:59 alike: Tue, Wed, Thu are the three days; due Thu 17:30.
    for hour in ("08:00", "23:59"):
        result = only("complaint-3bd", [complaint("k1", f"2024-03-04 {hour}")])
        assert (result["state"], result["due_at"]) == ("pending", uk("2024-03-07 17:30"))


def test_complaint_before_easter_is_due_in_summer_time_and_broken_after() -> None:
    # Thu 28 March: Good Friday, the weekend and Easter Monday close; Tue, Wed, Thu 4 April.
    records = [complaint("k1", "2024-03-28 09:00")]
    result = only("complaint-3bd", records, until=uk("2024-04-04 17:31"))
    assert (result["state"], result["evidence"]) == ("broken", ["k1"])
    assert result["decided_at"] == at("2024-04-04 16:30")


def test_complaint_warning_falls_half_way_through_its_business_time() -> None:
    # Sat 12:00: Mon, Tue, Wed give 3 x 8.5h = 25.5h; half is 12.75h: Tue 13:15.
    records = [complaint("k1", "2024-03-02 12:00")]
    assert only("complaint-3bd", records, until=uk("2024-03-05 13:14"))["state"] == "pending"
    assert only("complaint-3bd", records, until=uk("2024-03-05 13:15"))["state"] == "at_risk"


def test_resolved_complaint_is_kept() -> None:
    records = [
        complaint("k1", "2024-12-20 11:00"),  # 23, 27, 30 December: 24-26 are closed
        rec("k2", "2024-12-30 17:30", tz=LONDON, case_id="Q1", type="complaint_resolved"),
    ]
    result = only("complaint-3bd", records)
    assert (result["state"], result["due_at"]) == ("kept", uk("2024-12-30 17:30"))


def catalog_of(tmp_path: Path, calendar: str, within: str, pause: bool = False) -> Catalog:
    """One deadline promise, ``fix``, on ``calendar`` (YAML for calendars.yaml's entry)."""
    (tmp_path / "teams.yaml").write_text("teams: {ops: {name: Ops, alerts: [{log: true}]}}\n")
    (tmp_path / "calendars.yaml").write_text(f"calendars:\n  hours: {calendar}\n")
    roles = "pause: {type: waiting}\nresume: {type: message}\n" if pause else ""
    (tmp_path / "fix.yaml").write_text(
        "id: fix\ntitle: Fixed in time\nowner: ops\nkind: deadline\nscope: case_id\n"
        f"start: {{type: problem_reported}}\nstop: {{type: resolved}}\n{roles}"
        f"within: {within}\ncalendar: hours\n"
    )
    return load_catalog(tmp_path)


def test_hours_opening_inside_the_autumn_overlap_follow_the_wall_clock(tmp_path: Path) -> None:
    # Issue #14: hours 02:30-06:00 in Berlin, a start at 2024-10-27T00:00Z (clocks go back at
    # 01:00Z). Open 00:30-01:00Z, closed during the repeated 02:00-02:30 (01:00-01:30Z), open
    # again from 01:30Z: one business hour is due at 02:00Z, not 01:30Z.
    catalog = catalog_of(tmp_path, '{timezone: Europe/Berlin, hours: {sun: "02:30-06:00"}}', "1h")
    records = [rec("p1", "2024-10-27 00:00", case_id="B1", type="problem_reported")]
    [result] = evaluate(catalog, records, until=at("2024-10-27 01:45"))
    assert (result["state"], result["due_at"]) == ("pending", at("2024-10-27 02:00"))
    [late] = evaluate(
        catalog, [*records, rec("r1", "2024-10-27 02:01", case_id="B1", type="resolved")]
    )
    assert (late["state"], late["decided_at"]) == ("broken", at("2024-10-27 02:00"))


def test_business_days_pause_and_resume_on_business_time(tmp_path: Path) -> None:
    # Mon 10:00 + 2bd: due Wed 17:30. Paused Tue 12:00 with 5.5h (Tue) + 8.5h (Wed) = 14h
    # left; resumed Thu 09:00: 8.5h on Thu and 5.5h on Fri, due Fri 14:30.
    office = '{timezone: Europe/London, hours: {mon-fri: "09:00-17:30"}}'
    catalog = catalog_of(tmp_path, office, "2bd", pause=True)
    start = rec("p1", "2024-03-04 10:00", tz=LONDON, case_id="B1", type="problem_reported")
    [opened] = evaluate(catalog, [start])
    assert opened["due_at"] == uk("2024-03-06 17:30")
    records = [
        start,
        rec("w1", "2024-03-05 12:00", tz=LONDON, case_id="B1", type="waiting"),
        rec("m1", "2024-03-07 09:00", tz=LONDON, case_id="B1", type="message"),
    ]
    [resumed] = evaluate(catalog, records)
    assert (resumed["state"], resumed["due_at"]) == ("pending", uk("2024-03-08 14:30"))


# --- matching and record handling ---------------------------------------------------------------


def test_absent_and_null_fields_fail_every_condition_but_exists_false_and_not() -> None:
    record = rec("r1", "2024-01-01 00:00", team=None, attributes={"a": {"b": 5}})
    for name in ("team", "agent", "attributes.a.c", "attributes.a.b.c"):
        assert field_value(record, name) is ABSENT
        for condition in (
            Equals("x"),
            OneOf(("x",)),
            Compare("ne", "x"),
            Compare("gte", 0),
            Exists(True),
            Matches(".*", translate(".*")),
        ):
            assert not match_holds(Match(((name, condition),)), record)
        assert match_holds(Match(((name, Exists(False)),)), record)
        assert match_holds(Match(((name, Not(Equals("x"))),)), record)


def test_an_empty_record_field_is_absent_but_an_empty_attribute_is_a_value() -> None:
    """Records are stored with an empty ``case_id`` as none (``parse_record``); found by the
    differential tests, where the reference took it for a value."""
    conditions = (("attributes.note", Equals("")), ("case_id", Exists(False)))
    limit = LimitPromise(
        id="no-case",
        title="t",
        owner="operations",
        scope="customer_id",
        version="v1",
        source="",
        count=Match(conditions),
        max=0,
    )
    catalog = Catalog(promises={"no-case": limit}, teams={}, calendars={})
    records = [rec("e1", "2024-01-01 00:00", case_id="", attributes={"note": ""})]
    (result,) = evaluate(catalog, records)
    assert (result["state"], result["evidence"]) == ("broken", ["e1"])


def test_conditions_on_present_nested_attributes() -> None:
    record = rec("r1", "2024-01-01 00:00", agent="A-12", attributes={"a": {"b": 5, "s": "7"}})

    def holds(name: str, condition: Any) -> bool:
        return match_holds(Match(((name, condition),)), record)

    assert holds("attributes.a.b", Compare("lte", 5))
    assert not holds("attributes.a.b", Compare("lt", 5))
    assert not holds("attributes.a.s", Compare("gte", 0))  # text is not a number
    assert holds("attributes.a.s", Compare("ne", 7))
    assert holds("agent", Matches(r"A-\d+", translate(r"A-\d+")))
    assert not holds("agent", Matches(r"A-\d", translate(r"A-\d")))  # whole value only
    assert holds("agent", Matches("(?i)a-12", translate("(?i)a-12")))
    assert not holds("attributes.a.b", Matches(r"\d", translate(r"\d")))  # 5: text only
    assert holds("attributes.a.s", Matches(r"\d", translate(r"\d")))
    assert not holds("agent", Not(OneOf(("A-12", "B"))))


def test_nested_attribute_scope_groups_records_and_reports_text() -> None:
    limit = LimitPromise(
        id="one-change",
        title="t",
        owner="operations",
        scope="attributes.booking.ref",
        version="v1",
        source="",
        count=Match((("type", Equals("change")),)),
        max=1,
    )
    catalog = Catalog(promises={"one-change": limit}, teams={}, calendars={})
    records = [
        rec("x1", "2024-01-01 00:00", type="change", attributes={"booking": {"ref": 7}}),
        rec("x2", "2025-01-01 00:00", type="change", attributes={"booking": {"ref": 7}}),
        rec("x3", "2025-01-01 00:00", type="change", attributes={"booking": {}}),
    ]
    (result,) = evaluate(catalog, records)
    assert (result["scope"], result["state"], result["evidence"]) == ("7", "broken", ["x1", "x2"])


def test_exact_duplicate_records_count_once() -> None:
    records = [handoff("h1", "2024-04-01 09:00"), handoff("h2", "2024-04-02 09:00")]
    assert evaluate(CATALOG, [*records, *records]) == evaluate(CATALOG, records)


def test_conflicting_records_with_one_id_are_refused() -> None:
    with pytest.raises(ValueError, match="h1"):
        evaluate(CATALOG, [handoff("h1", "2024-04-01 09:00"), handoff("h1", "2024-04-02 09:00")])


def test_no_records_means_no_opportunities() -> None:
    assert evaluate(CATALOG, [], until=at("2024-01-01 00:00")) == []


# --- order independence ---------------------------------------------------------------------------

MIXED = [
    email_in("e1", "2024-03-04 09:00"),
    waiting("w1", "2024-03-04 11:00"),
    email_in("e2", "2024-03-05 10:00"),
    reply("r1", "2024-03-05 16:30"),
    email_in("e3", "2024-03-05 17:00"),
    email_in("e4", "2024-03-04 09:00", "C2"),
    reply("a0", "2024-03-04 09:00", "C2"),
    spam("s1", "2024-03-04 12:00", "C2"),
    given_info("g1", "2024-02-01 10:00"),
    asked("a1", "2024-03-01 10:00"),
    asked("a2", "2024-01-01 10:00"),
    handoff("h1", "2024-03-01 09:00"),
    handoff("h2", "2024-03-02 09:00"),
    handoff("h3", "2024-03-03 09:00"),
    survey("n1", "2024-03-04 09:00", 2),
    rec("p1", "2024-03-04 12:00", tz=LONDON, type="callback_promised"),
    rec("c1", "2024-03-04 14:00", tz=LONDON, type="call", channel="phone", direction="outbound"),
    rec("p2", "2024-03-05 20:00", case_id="B1", type="problem_reported"),
    rec("b2", "2024-03-05 22:00", case_id="B1", type="booking_cancelled"),
    rec("p3", "2024-03-05 22:00", case_id="B1", type="problem_reported"),
    rec("q1", "2024-03-01 19:00", case_id="Q1", type="complaint", direction="inbound"),
    rec("q2", "2024-03-05 09:00", case_id="Q1", type="complaint_resolved"),
]
MIXED_EXPECTED = reference.evaluate(CATALOG, MIXED, until=at("2024-03-06 12:00"))


def test_mixed_history_touches_every_sample_promise() -> None:
    assert {o["promise"] for o in MIXED_EXPECTED} == set(CATALOG.promises)


@settings(max_examples=50, deadline=None)
@given(st.permutations(MIXED), st.lists(st.sampled_from(MIXED), max_size=5))
def test_input_order_and_duplicates_do_not_change_outcomes(
    shuffled: list[dict], duplicates: list[dict]
) -> None:
    assert (
        evaluate(CATALOG, [*shuffled, *duplicates], until=at("2024-03-06 12:00")) == MIXED_EXPECTED
    )
