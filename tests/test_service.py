"""The engine over a real database: ingest, revisions, the clock, versions, restarts."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

import reference
from engine.evaluation.rules_core import DuplicateFact, RulesCore
from engine.records import parse_record
from engine.sandbox import preflight
from engine.service import PromiseService
from engine.storage import outcome_table
from engine.storage.database import session_factory
from histories import histories, limit_histories, limit_promises, never_promises
from rules.models import Catalog, LimitPromise, NeverPromise, Promise


def record(id: str, when: str, **fields: Any) -> dict[str, Any]:
    """A record as a service would POST it; ``when`` is UTC, e.g. "2024-03-01 16:00"."""
    base = {
        "id": id,
        "occurred_at": when.replace(" ", "T") + ":00Z",
        "customer_id": "C-1",
        "channel": "email",
        "direction": "inbound",
        "type": "message",
    }
    return {**base, **fields}


def email(id: str, when: str, case: str = "K-1") -> dict[str, Any]:
    return record(id, when, case_id=case)


def reply(id: str, when: str, case: str = "K-1") -> dict[str, Any]:
    return record(id, when, case_id=case, direction="outbound")


def states(service: PromiseService, promise: str) -> dict[str, str]:
    return {o.key: o.state for o in service.outcomes() if o.promise == promise}


def history(service: PromiseService, promise: str) -> list[tuple[str, str | None, str | None]]:
    with service.sessions() as session:
        return [
            (r.key, r.old_state, r.new_state) for r in outcome_table.revisions(session, promise)
        ]


def test_late_reply_turns_a_broken_deadline_into_kept_with_a_revision(
    service: PromiseService,
) -> None:
    # Fri 16:00 email, due Mon 15:30 (UK office hours). A note on Tuesday moves the clock
    # past the due time; the reply, sent Monday 15:00, only arrives after that.
    service.ingest([email("e1", "2024-03-01 16:00")])
    service.ingest([record("n1", "2024-03-05 12:00", case_id="K-1", type="note")])
    assert states(service, "email-reply-1bd") == {"K-1#1": "broken"}

    service.ingest([reply("r1", "2024-03-04 15:00")])

    (outcome,) = [o for o in service.outcomes() if o.promise == "email-reply-1bd"]
    assert (outcome.state, outcome.evidence) == ("kept", ["e1", "r1"])
    assert outcome.decided_at == datetime(2024, 3, 4, 15, tzinfo=UTC)
    assert history(service, "email-reply-1bd") == [
        ("K-1#1", "pending", "broken"),
        ("K-1#1", "broken", "kept"),
    ]
    with service.sessions() as session:
        last = outcome_table.revisions(session, "email-reply-1bd")[-1]
    assert "late record r1" in last.reason


def test_a_batch_reports_every_record_and_keeps_the_good_ones(service: PromiseService) -> None:
    service.ingest([email("e1", "2024-03-01 16:00")])
    results = service.ingest(
        [
            email("e2", "2024-03-01 16:05", case="K-2"),
            {**email("bad", "2024-03-01 16:06"), "occurred_at": "2024-03-01T16:06:00"},
            email("e1", "2024-03-01 16:00"),
            email("e1", "2024-03-01 17:00"),
            email("e2", "2024-03-01 16:05", case="K-2"),
            {**email("e3", "2024-03-01 16:07"), "direction": "sideways", "attributes": [1]},
            "not a record",
        ]
    )
    assert [(r.id, r.status) for r in results] == [
        ("e2", "accepted"),
        ("bad", "rejected"),
        ("e1", "duplicate"),
        ("e1", "rejected"),
        ("e2", "duplicate"),
        ("e3", "rejected"),
        (None, "rejected"),
    ]
    assert [str(p) for p in results[1].problems] == [
        "occurred_at: needs a UTC offset or Z, e.g. 2024-03-01T10:00:00Z (naive times are "
        "ambiguous)"
    ]
    assert "already stored with different content" in str(results[3].problems[0])
    assert {p.field for p in results[5].problems} == {"direction", "attributes"}
    assert str(results[6].problems[0]) == "(record): a record is a JSON object, got text"
    assert states(service, "email-reply-1bd") == {"K-1#1": "pending", "K-2#1": "pending"}


def test_sending_the_same_batch_again_changes_nothing(service: PromiseService) -> None:
    batch = [
        email("e1", "2024-03-01 16:00"),
        reply("r1", "2024-03-04 16:00"),
        record("p1", "2024-03-01 10:00", type="info_provided", attributes={"item": "x"}),
        record(
            "q1",
            "2024-03-02 10:00",
            type="info_requested",
            direction="outbound",
            attributes={"item": "x"},
        ),
    ]
    service.ingest(batch)
    before = (service.outcomes(), history(service, "email-reply-1bd"))
    assert {r.status for r in service.ingest(batch)} == {"duplicate"}
    assert (service.outcomes(), history(service, "email-reply-1bd")) == before
    assert states(service, "ask-once") == {"q1": "broken"}


def test_advancing_the_clock_decides_deadlines_of_every_scope(service: PromiseService) -> None:
    # K-1 is due Mon 15:30, so the Monday 16:00 email of K-2 already breaks it.
    service.ingest([email("e1", "2024-03-01 16:00"), email("e2", "2024-03-04 16:00", "K-2")])
    assert states(service, "email-reply-1bd") == {"K-1#1": "broken", "K-2#1": "pending"}
    # 75% of 8 business hours from Mon 16:00 (1.5h Monday) is Tue 13:30; due Tue 15:30.
    assert service.advance(datetime(2024, 3, 5, 13, 29, tzinfo=UTC)) == 0
    assert service.advance(datetime(2024, 3, 5, 13, 30, tzinfo=UTC)) == 1
    assert states(service, "email-reply-1bd") == {"K-1#1": "broken", "K-2#1": "at_risk"}
    service.advance(datetime(2024, 3, 5, 15, 30, tzinfo=UTC))
    assert states(service, "email-reply-1bd") == {"K-1#1": "broken", "K-2#1": "at_risk"}
    service.advance(datetime(2024, 3, 5, 15, 30, 1, tzinfo=UTC))
    assert states(service, "email-reply-1bd") == {"K-1#1": "broken", "K-2#1": "broken"}


def _with(catalog: Catalog, *promises: Promise) -> Catalog:
    return dataclasses.replace(
        catalog, promises={**catalog.promises, **{p.id: p for p in promises}}
    )


def test_outcomes_decided_under_an_old_version_keep_it(db_engine: Engine, catalog: Catalog) -> None:
    """A limit without a window: its scope-wide "kept" is provisional, its "broken" final."""
    handoffs = dataclasses.replace(catalog.promises["two-handoffs"], within=None, version="ever")
    old = PromiseService(_with(catalog, handoffs), session_factory(db_engine))
    old.ingest(
        [
            record("h1", "2024-03-01 09:00", case_id="K-1", type="handoff"),
            record("h2", "2024-03-02 09:00", case_id="K-1", type="handoff"),
            record("h3", "2024-03-03 09:00", case_id="K-1", type="handoff"),
            record("g1", "2024-03-01 09:00", case_id="K-2", type="handoff"),
        ]
    )
    looser = dataclasses.replace(handoffs, max=5, version="looser")
    new = PromiseService(_with(catalog, looser), session_factory(db_engine))
    new.ingest(
        [
            record("h4", "2024-03-04 09:00", case_id="K-1", type="handoff"),
            record("g2", "2024-03-04 09:00", case_id="K-2", type="handoff"),
        ]
    )
    outcomes = {o.key: o for o in new.outcomes() if o.promise == "two-handoffs"}
    assert (outcomes["K-1"].state, outcomes["K-1"].version) == ("broken", "ever")
    assert (outcomes["K-2"].state, outcomes["K-2"].version) == ("kept", "looser")


def test_a_windowed_limits_verdicts_stand_under_a_new_version(
    db_engine: Engine, catalog: Catalog
) -> None:
    """Each counted record of a windowed limit is decided for good, as a never's question."""
    handoffs = catalog.promises["two-handoffs"]
    old = PromiseService(catalog, session_factory(db_engine))
    old.ingest(
        [record(f"h{n}", f"2024-03-0{n} 09:00", case_id="K-1", type="handoff") for n in (1, 2, 3)]
    )
    looser = dataclasses.replace(handoffs, max=5, version="looser")
    new = PromiseService(_with(catalog, looser), session_factory(db_engine))
    new.ingest([record("h4", "2024-03-04 09:00", case_id="K-1", type="handoff")])
    outcomes = {o.key: (o.state, o.version) for o in new.outcomes() if o.promise == "two-handoffs"}
    assert outcomes == {
        "h1": ("kept", handoffs.version),
        "h2": ("kept", handoffs.version),
        "h3": ("broken", handoffs.version),
        "h4": ("kept", "looser"),
    }
    assert history(new, "two-handoffs") == []  # nothing revised


def test_outcomes_and_the_clock_survive_a_restart(db_engine: Engine, catalog: Catalog) -> None:
    first = PromiseService(catalog, session_factory(db_engine))
    first.ingest([email("e1", "2024-03-01 16:00"), record("n1", "2024-03-05 12:00", type="note")])
    again = PromiseService(catalog, session_factory(db_engine))
    assert again.outcomes() == first.outcomes()
    assert states(again, "email-reply-1bd") == {"K-1#1": "broken"}
    again.ingest([reply("r1", "2024-03-04 15:00")])
    assert states(again, "email-reply-1bd") == {"K-1#1": "kept"}


def _as_dicts(service: PromiseService) -> list[dict[str, Any]]:
    found = [
        {
            "promise": o.promise,
            "version": o.version,
            "scope": o.scope,
            "customer_id": o.customer_id,
            "state": o.state,
            "opened_at": o.opened_at,
            "due_at": o.due_at,
            "decided_at": o.decided_at,
            "evidence": list(o.evidence),
        }
        for o in service.outcomes()
    ]
    return sorted(found, key=lambda o: (o["promise"], o["scope"], o["opened_at"], o["evidence"]))


ARRIVALS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
"""The budget of the tests that feed a service random arrival orders and batch splits."""


def _ingest_shuffled(
    service: PromiseService, records: list[dict[str, Any]], rnd: random.Random
) -> None:
    """``records`` in a random order, in random batches of 1 to 8."""
    shuffled = list(records)
    rnd.shuffle(shuffled)
    while shuffled:
        size = rnd.randint(1, 8)
        batch, shuffled = shuffled[:size], shuffled[size:]
        service.ingest([{**r, "occurred_at": r["occurred_at"].isoformat()} for r in batch])


@ARRIVALS
@given(histories(), st.randoms(use_true_random=False))
def test_any_arrival_order_and_batch_split_gives_the_sorted_replays_outcomes(
    make_service: Any, catalog: Catalog, records: list[dict[str, Any]], rnd: random.Random
) -> None:
    service = make_service()
    _ingest_shuffled(service, records, rnd)
    assert _as_dicts(service) == reference.evaluate(catalog, records)


@ARRIVALS
@given(limit_promises(), limit_histories(), st.randoms(use_true_random=False))
def test_random_limits_in_any_arrival_order_agree_with_the_reference(
    make_service: Any, promise: LimitPromise, records: list[dict[str, Any]], rnd: random.Random
) -> None:
    """Late records re-judge a windowed limit's later records in their window."""
    catalog = Catalog(promises={promise.id: promise}, teams={}, calendars={})
    service = make_service(catalog)
    _ingest_shuffled(service, records, rnd)
    assert _as_dicts(service) == reference.evaluate(catalog, records)


@ARRIVALS
@given(never_promises(), histories(), st.randoms(use_true_random=False))
def test_never_promises_with_any_condition_agree_with_the_reference_in_any_arrival(
    make_service: Any,
    catalog: Catalog,
    promise: NeverPromise,
    records: list[dict[str, Any]],
    rnd: random.Random,
) -> None:
    """The worker's path (stored scopes judged again) for ``first`` and ``then`` with one-of
    lists and ``not``, whose windows only in-memory replay used to honour."""
    only = dataclasses.replace(catalog, promises={promise.id: promise})
    service = make_service(only)
    _ingest_shuffled(service, records, rnd)
    assert _as_dicts(service) == reference.evaluate(only, records)


def test_a_scope_on_an_attribute_path_is_evaluated_from_the_database(
    db_engine: Engine, catalog: Catalog
) -> None:
    handoffs = catalog.promises["two-handoffs"]
    by_booking = dataclasses.replace(
        handoffs, id="booking-changes", scope="attributes.booking.ref", version="b1"
    )
    service = PromiseService(
        dataclasses.replace(catalog, promises={"booking-changes": by_booking}),
        session_factory(db_engine),
    )

    def change(id: str, when: str, ref: str) -> dict[str, Any]:
        return record(id, when, type="handoff", attributes={"booking": {"ref": ref}})

    service.ingest(
        [change("b3", "2024-03-03 09:00", "B-1"), change("x1", "2024-03-01 09:00", "B-2")]
    )
    service.ingest([change("b1", "2024-03-01 09:00", "B-1")])
    assert states(service, "booking-changes") == {"b1": "kept", "b3": "kept", "x1": "kept"}
    service.ingest([change("b2", "2024-03-02 09:00", "B-1")])  # late: b3 is the third change
    (broken,) = [o for o in service.outcomes() if o.state == "broken"]
    assert (broken.key, broken.scope, broken.evidence) == ("b3", "B-1", ["b1", "b2", "b3"])


def test_the_same_batch_sent_twice_at_once_is_stored_once(service: PromiseService) -> None:
    """A client that times out and retries while its first request still runs: both
    requests are answered (one "accepted", the other "duplicate"), never an error."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    for round_ in range(10):
        batch = [email(f"race-{round_}-{n}", "2024-03-04 10:00", f"K-{n}") for n in range(20)]
        barrier = Barrier(2)

        def send(batch: list[dict[str, Any]] = batch, barrier: Barrier = barrier) -> list[str]:
            barrier.wait()
            return [answer.status for answer in service.accept(batch)]

        with ThreadPoolExecutor(2) as pool:
            first, second = (f.result() for f in [pool.submit(send), pool.submit(send)])
        assert all({a, b} == {"accepted", "duplicate"} for a, b in zip(first, second, strict=True))
    assert service.record_count() == 200


def test_what_a_customer_already_gave_is_named_by_record_ids_inside_the_window(
    service: PromiseService, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ask Once's ``first`` records still inside its 365 days, by their own ids, even when the
    rules core needed another fact id for one (an identity-hash collision)."""
    provided = {"type": "info_provided", "channel": "phone", "team": "claims"}
    service.ingest(
        [
            record("p0", "2023-01-02 10:00", **provided, attributes={"item": "passport"}),
            record("p1", "2024-03-01 10:00", **provided, attributes={"item": "policy_number"}),
            record("n1", "2024-03-05 10:00", type="note"),
        ]
    )
    assert_fact = RulesCore.assert_fact

    def colliding(core: RulesCore, ruleset: str, fact: dict[str, Any]) -> Any:
        if fact.get("id") == "p1":
            raise DuplicateFact(ruleset)
        return assert_fact(core, ruleset, fact)

    monkeypatch.setattr(RulesCore, "assert_fact", colliding)

    found = preflight.already_given(catalog, service.sessions, "C-1")

    assert [(g.promise, g.record, g.team, g.same) for g in found] == [
        ("ask-once", "p1", "claims", {"attributes.item": "policy_number"})
    ]


def test_pre_flight_warns_of_a_second_excess_of_a_windowed_limit(service: PromiseService) -> None:
    """Issue #14, item 8: once a case had broken two-handoffs, pre-flight never warned again."""
    service.ingest(
        [
            record(id, when, case_id="K-1", type="handoff", team="claims")
            for id, when in [
                ("h1", "2024-04-01 09:00"),
                ("h2", "2024-04-02 09:00"),
                ("h3", "2024-04-03 09:00"),
                ("h4", "2024-09-02 09:00"),
                ("h5", "2024-09-03 09:00"),
            ]
        ]
    )
    raw = record("h6", "2024-09-04 09:00", case_id="K-1", type="handoff", team="claims")
    prospective = parse_record(raw)
    assert not isinstance(prospective, list), prospective

    (verdict,) = preflight.would_break(service.catalog, service.sessions, prospective)

    assert (verdict.promise, [e.id for e in verdict.evidence]) == ("two-handoffs", ["h4", "h5"])
    assert verdict.why == (
        "already: handoff by email on 2024-09-02 to claims; "
        "handoff by email on 2024-09-03 to claims"
    )
