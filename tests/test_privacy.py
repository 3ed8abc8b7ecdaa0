"""Customers' data: export, erasure and retention, on SQLite and PostgreSQL.

Two customers share a case (and so a scope) throughout: whatever is done for one must
neither show nor touch the other's data, and compliance figures must not move.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, select, update

from conftest import Server
from engine.evaluation import quarantine
from engine.privacy import erasure, export, pseudonyms, retention
from engine.reading import breaches
from engine.reading.queries import Queries
from engine.records import parse_record
from engine.sandbox import backtest, preflight
from engine.service import PromiseService
from engine.storage import record_table
from engine.storage.database import session_factory
from engine.storage.schema import BacklogRow, DeliveryRow, ErasureRow, OutcomeRow, RevisionRow
from rules.models import Catalog

ROOT = Path(__file__).resolve().parents[1]
KEY = "test-erasure-secret"
X = "CUST-ERASE-7f3"  # the customer who asks to be forgotten
B = "CUST-KEEP-2b1"  # shares case K-SHARED with X
X_VALUES = ["passport-X-9981", "BK-SECRET-X1"]  # attribute values only X has


def record(id: str, when: str, customer: str, **fields: Any) -> dict[str, Any]:
    """A record; ``when`` is UTC, e.g. "2024-03-01 16:00"."""
    base = {
        "id": id,
        "occurred_at": when.replace(" ", "T") + ":00Z",
        "customer_id": customer,
        "channel": "app",
        "direction": "inbound",
        "type": "message",
    }
    return {**base, **fields}


def shared_history() -> list[dict[str, Any]]:
    case = {"case_id": "K-SHARED"}
    return [
        # travel-guarantee (4h, case scope): X's problem is resolved in time (kept); B's
        # report while it is open is ignored; B's later problem breaks (resolved late).
        record(f"{X}-r1", "2024-03-01 10:00", X, type="problem_reported",
               attributes={"booking": "BK-SECRET-X1"}, **case),
        record(f"{X}-r2", "2024-03-01 11:00", X, type="handoff", **case),
        record("b-1", "2024-03-01 11:30", B, type="problem_reported", **case),
        record(f"{X}-r3", "2024-03-01 12:00", X, type="resolved", direction="outbound", **case),
        record("b-2", "2024-03-02 10:00", B, type="problem_reported", **case),
        record("b-3", "2024-03-02 11:00", B, type="handoff", **case),
        record("b-4", "2024-03-02 16:00", B, type="note", **case),
        record("b-5", "2024-03-02 17:00", B, type="resolved", direction="outbound", **case),
        record("b-6", "2024-03-03 08:00", B, type="handoff", **case),  # third handoff: broken
        # ask-once (customer scope): X gives an item and is asked for it again (broken).
        record(f"{X}-r4", "2024-03-02 09:00", X, type="info_provided",
               attributes={"item": "passport-X-9981"}),
        record(f"{X}-r5", "2024-03-03 09:00", X, type="info_requested", direction="outbound",
               attributes={"item": "passport-X-9981"}),
        record("b-7", "2024-03-03 09:30", B, type="info_provided",
               attributes={"item": "policy_number"}),
        # detractor-follow-up (48h, customer scope): X's stays open (at risk).
        record(f"{X}-r6", "2024-03-04 10:00", X, type="survey_response", attributes={"nps": 2}),
        record("b-8", "2024-03-05 11:00", B, type="note"),
    ]  # fmt: skip


def x_record_ids() -> list[str]:
    return [r["id"] for r in shared_history() if r["customer_id"] == X]


def keyed(db_engine: Engine, catalog: Catalog) -> PromiseService:
    """A service over the shared history, with X's Ask Once breach acknowledged."""
    service = PromiseService(catalog, session_factory(db_engine), erasure_key=KEY)
    service.ingest(shared_history())
    with service.sessions() as session:
        breach = session.scalars(
            select(OutcomeRow.id).where(OutcomeRow.promise_id == "ask-once")
        ).one()
    note = f"called {X} back about {X}-r5"
    breaches.act(service.sessions, breach, "acknowledged", "ops", assignee="a-1", note=note)
    return service


def figures(service: PromiseService, until: str | None = None) -> dict[str, Any]:
    queries = Queries(service.catalog, service.sessions)
    end = datetime.fromisoformat(until) if until else None
    return {
        group: [(r.group, r.kept, r.broken) for r in queries.compliance(None, end, group)]
        for group in ("promise", "team", "channel", "week")
    }


def by_key(service: PromiseService) -> dict[tuple[str, str], OutcomeRow]:
    with service.sessions() as session:
        return {(r.promise_id, r.key): r for r in session.scalars(select(OutcomeRow))}


def by_id(service: PromiseService) -> dict[int, OutcomeRow]:
    with service.sessions() as session:
        return {r.id: r for r in session.scalars(select(OutcomeRow))}


def every_text(db_engine: Engine) -> Iterator[tuple[str, str, str]]:
    """(table, column, text) for every text or JSON value in every table erasure lists,
    which are all the database's tables (those of migrations too)."""
    tables = MetaData()
    tables.reflect(db_engine)
    assert set(tables.tables) == set(erasure.TABLES)
    with db_engine.connect() as connection:
        for table in tables.sorted_tables:
            for row in connection.execute(table.select()):
                for column, value in row._mapping.items():
                    if isinstance(value, str):
                        yield table.name, column, value
                    elif isinstance(value, dict | list):
                        yield table.name, column, json.dumps(value, ensure_ascii=False)


# --- export -------------------------------------------------------------------------------------


def test_an_export_holds_exactly_one_customers_data(db_engine: Engine, catalog: Catalog) -> None:
    service = keyed(db_engine, catalog)
    document = export.export_customer(service.sessions, catalog, X)

    assert [r["id"] for r in document["interactions"]] == x_record_ids()
    assert document["outcomes"] and all(o["customer_id"] == X for o in document["outcomes"])
    promises = {o["promise"] for o in document["outcomes"]}
    assert promises == {"travel-guarantee", "two-handoffs", "ask-once", "detractor-follow-up-48h"}
    assert document["alerts"] and all(a["customer_id"] == X for a in document["alerts"])
    text = json.dumps(document)
    assert B not in text and "policy_number" not in text
    assert not any(f'"b-{n}"' in text for n in range(1, 9))  # B's record ids: redacted
    handoffs = next(o for o in document["outcomes"] if o["promise"] == "two-handoffs")
    assert (handoffs["state"], handoffs["evidence"]) == ("kept", [f"{X}-r2"])
    [action] = document["breach_actions"]
    assert (action["status"], action["note"]) == ("acknowledged", f"called {X} back about {X}-r5")

    their_document = export.export_customer(service.sessions, catalog, B)
    third = next(o for o in their_document["outcomes"] if o["key"] == "b-6")
    assert (third["state"], third["evidence"]) == ("broken", ["redacted", "b-3", "b-6"])
    theirs = json.dumps(their_document)
    assert X not in theirs and not any(v in theirs for v in X_VALUES)

    archive = zipfile.ZipFile(io.BytesIO(export.export_zip(document)))
    assert sorted(archive.namelist()) == sorted(f"{kind}.csv" for kind in export.KINDS)
    rows = archive.read("interactions.csv").decode().splitlines()
    assert len(rows) == 1 + len(x_record_ids()) and rows[0].startswith("id,occurred_at")


# --- erasure ------------------------------------------------------------------------------------


def test_erasure_leaves_no_trace_of_the_customer_and_keeps_the_figures(
    db_engine: Engine, catalog: Catalog
) -> None:
    service = keyed(db_engine, catalog)
    before, outcomes = figures(service), by_key(service)
    theirs = export.export_customer(service.sessions, catalog, B)

    report = erasure.erase_customer(
        service.sessions, catalog, X, reason="customer request", actor="test", key=KEY
    )

    assert report.counts["interactions"] == len(x_record_ids())
    assert report.counts["tombstones"] == len(x_record_ids())
    assert report.counts["outcomes_cancelled"] == 1
    found = [
        (table, column)
        for table, column, text in every_text(db_engine)
        if any(needle in text for needle in [X, *X_VALUES])
    ]
    assert found == []
    assert figures(service) == before
    # B's data and outcomes are untouched (only X's record ids in their evidence are hashed).
    assert (
        export.export_customer(service.sessions, catalog, B)["interactions"]
        == (theirs["interactions"])
    )
    after = by_key(service)
    b_travel = after[("travel-guarantee", "K-SHARED#2")]
    assert (b_travel.customer_id, b_travel.state) == (B, "broken")
    assert b_travel.decided_at == outcomes[("travel-guarantee", "K-SHARED#2")].decided_at
    alias = pseudonyms.pseudonym(KEY, X)
    x_travel = after[("travel-guarantee", "K-SHARED#1")]
    assert x_travel.customer_id == alias and x_travel.state == "kept"
    assert x_travel.evidence == [
        pseudonyms.pseudonym(KEY, f"{X}-r1"),
        pseudonyms.pseudonym(KEY, f"{X}-r3"),
    ]
    assert ("ask-once", pseudonyms.pseudonym(KEY, f"{X}-r5")) in after
    # The erasure log says who, why and how much, never whom.
    with service.sessions() as session:
        log = session.scalars(select(ErasureRow)).one()
    assert (log.actor, log.reason, log.counts) == ("test", "customer request", report.counts)


def test_after_erasure_no_table_and_no_database_file_holds_an_erased_value(
    db_engine: Engine, catalog: Catalog
) -> None:
    service = keyed(db_engine, catalog)
    with service.sessions.begin() as session:
        theirs = select(OutcomeRow.id).where(OutcomeRow.customer_id == X)
        broken = session.scalars(theirs.where(OutcomeRow.state == "broken")).all()
        skipped = [("ask-once", X), ("detractor-follow-up-48h", X), ("two-handoffs", "K-SHARED")]
        quarantine.defer(session, skipped)
        crashed = f"its evaluation raised KeyError('{X}-r5')"
        quarantine.put(session, catalog.promises["two-handoffs"], crashed)
        echoed = f'answered 500: {{"customer_id": "{X}"}}'  # a receiver echoing the alert
        session.execute(update(DeliveryRow).values(last_error=echoed))
    note = "she spelled it out: passport number as given on the phone"
    for outcome in broken:
        breaches.act(service.sessions, outcome, "resolved", "ops", note=note)
    needles = [X, *X_VALUES, note]
    files = []
    if db_engine.dialect.name == "sqlite":
        main = Path(str(db_engine.url.database))
        files = [main, main.with_name(main.name + "-wal")]
        held = b"".join(path.read_bytes() for path in files if path.exists())
        assert all(needle.encode() in held for needle in needles)  # the test can fail

    report = erasure.erase_customer(
        service.sessions, catalog, X, reason="request", actor="t", key=KEY
    )

    assert report.counts["backlog_removed"] == 2 and report.counts["breach_notes_erased"] >= 1
    assert report.counts["quarantines_rewritten"] == 1
    assert report.counts["delivery_errors_rewritten"] >= 1
    found = [
        (table, column)
        for table, column, text in every_text(db_engine)
        if any(needle in text for needle in needles)
    ]
    assert found == []
    for path in files:
        held = path.read_bytes() if path.exists() else b""
        assert [n for n in needles if n.encode() in held] == [], path.name
    with service.sessions() as session:  # B's case is still to be evaluated
        assert session.scalars(select(BacklogRow.scope)).all() == ["K-SHARED"]


def test_erasure_cancels_open_opportunities_with_reason_erased_and_no_alert(
    db_engine: Engine, catalog: Catalog
) -> None:
    service = keyed(db_engine, catalog)
    open_key = ("detractor-follow-up-48h", f"{X}#1")
    assert by_key(service)[open_key].state == "at_risk"
    alerts = len(list(export.export_customer(service.sessions, catalog, X)["alerts"]))

    erasure.erase_customer(service.sessions, catalog, X, reason="request", actor="t", key=KEY)

    alias = pseudonyms.pseudonym(KEY, X)
    row = by_key(service)[("detractor-follow-up-48h", f"{alias}#1")]
    assert row.state == "cancelled" and row.sealed_at is not None
    with service.sessions() as session:
        revision = session.scalars(
            select(RevisionRow).where(RevisionRow.key == f"{alias}#1")
        ).all()[-1]
        assert (revision.old_state, revision.new_state, revision.reason) == (
            "at_risk",
            "cancelled",
            "erased",
        )
    assert len(export.export_customer(service.sessions, catalog, alias)["alerts"]) == alerts


def test_a_new_record_in_a_shared_case_after_erasure_revises_nothing(
    db_engine: Engine, catalog: Catalog
) -> None:
    service = keyed(db_engine, catalog)
    erasure.erase_customer(service.sessions, catalog, X, reason="request", actor="t", key=KEY)
    period = "2024-03-05T00:00:00+00:00"
    before, outcomes = figures(service, period), by_key(service)

    # B reports a new problem in the same case, resolved in time; the same case id again.
    service.ingest(
        [
            record("b-9", "2024-03-05 12:00", B, type="problem_reported", case_id="K-SHARED"),
            record("b-10", "2024-03-05 13:00", B, type="resolved", direction="outbound",
                   case_id="K-SHARED"),
        ]
    )  # fmt: skip

    after = by_key(service)
    for key, row in outcomes.items():  # every earlier outcome stands, unrevised
        assert (after[key].state, after[key].decided_at, after[key].evidence) == (
            row.state,
            row.decided_at,
            row.evidence,
        )
    new = [row for key, row in after.items() if key not in outcomes]
    assert [(r.key, r.state, r.evidence) for r in new] == [("K-SHARED#3", "kept", ["b-9", "b-10"])]
    assert figures(service, period) == before
    unchanged = by_key(service)
    service.recompute()  # a replay over everything stored revises nothing either
    assert {k: (r.state, r.evidence) for k, r in by_key(service).items()} == {
        k: (r.state, r.evidence) for k, r in unchanged.items()
    }
    travel = {g: (kept, broken) for g, kept, broken in figures(service)["promise"]}
    assert travel["travel-guarantee"] == (2, 1)  # X's kept, B's broken, B's new kept


def test_an_erased_record_id_is_never_stored_again(
    db_engine: Engine, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMISE_ERASURE_KEY", raising=False)
    service = keyed(db_engine, catalog)
    erasure.erase_customer(service.sessions, catalog, X, reason="request", actor="t", key=KEY)
    count = service.record_count()

    again = service.ingest([shared_history()[0], record("x-new", "2024-03-06 09:00", X)])

    assert [(a.id, a.status) for a in again] == [(f"{X}-r1", "duplicate"), ("x-new", "accepted")]
    assert service.record_count() == count + 1
    unkeyed = PromiseService(catalog, service.sessions)  # cannot check: refuses, says why
    [answer] = unkeyed.accept([shared_history()[1]])
    assert answer.status == "rejected" and "PROMISE_ERASURE_KEY" in answer.problems[0].reason


def test_erasure_is_refused_without_a_key_or_a_reason(db_engine: Engine, catalog: Catalog) -> None:
    service = keyed(db_engine, catalog)
    with pytest.raises(pseudonyms.NoErasureKey, match="PROMISE_ERASURE_KEY"):
        erasure.erase_customer(service.sessions, catalog, X, reason="r", actor="t", key=None)
    with pytest.raises(pseudonyms.PrivacyError, match="reason"):
        erasure.erase_customer(service.sessions, catalog, X, reason=" ", actor="t", key=KEY)
    assert service.record_count() == len(shared_history())


def test_a_customer_who_comes_back_can_be_erased_again_and_again(
    db_engine: Engine, catalog: Catalog
) -> None:
    """After an erasure the customer's new records open their scopes afresh (``X#1`` and
    ``K-X-OWN#1`` again; an un-windowed limit's outcome is keyed by its scope): erasing them
    again must neither collide with the keys of an earlier erasure nor leave a trace."""
    ever = dataclasses.replace(catalog.promises["two-handoffs"], within=None, version="ever")
    catalog = dataclasses.replace(catalog, promises={**catalog.promises, "two-handoffs": ever})
    service = keyed(db_engine, catalog)

    def visit(tag: str, day: str) -> list[dict[str, Any]]:
        """X in a case of their own (kept, one handoff), then a detractor survey left open."""
        case = {"case_id": "K-X-OWN"}
        return [
            record(f"{X}-{tag}1", f"{day} 10:00", X, type="problem_reported", **case),
            record(f"{X}-{tag}2", f"{day} 10:30", X, type="handoff", **case),
            record(f"{X}-{tag}3", f"{day} 11:00", X, type="resolved", direction="outbound",
                   **case),
            record(f"{X}-{tag}4", f"{day} 12:00", X, type="survey_response",
                   attributes={"nps": 1}),
        ]  # fmt: skip

    service.ingest(visit("a", "2024-03-06"))
    for tag, day in (("b", "2024-03-07"), ("c", "2024-03-08"), ("d", "2024-03-09")):
        before, held = figures(service), by_id(service)

        erasure.erase_customer(service.sessions, catalog, X, reason="again", actor="t", key=KEY)

        needles = [X, *X_VALUES, "K-X-OWN"]
        found = [(t, c) for t, c, text in every_text(db_engine) if any(n in text for n in needles)]
        assert found == []
        assert figures(service) == before
        after = by_id(service)
        assert after.keys() == held.keys()  # every outcome is kept, none merged
        for id, row in held.items():
            cancelled = row.customer_id == X and row.state in ("pending", "at_risk")
            state = "cancelled" if cancelled else row.state
            assert (after[id].promise_id, after[id].state) == (row.promise_id, state)
            assert cancelled or after[id].decided_at == row.decided_at
            assert row.customer_id != X or after[id].sealed_at is not None
        with service.sessions() as session:  # each cancelled outcome has a trail of its own
            erased = session.scalars(
                select(RevisionRow.key).where(RevisionRow.reason == erasure.ERASED_REASON)
            ).all()
        assert len(erased) == len(set(erased))
        service.ingest(visit(tag, day))  # the customer comes back: their scopes open anew

    now = by_key(service)
    assert now[("detractor-follow-up-48h", f"{X}#1")].state == "pending"
    assert now[("travel-guarantee", "K-X-OWN#1")].state == "kept"
    assert now[("two-handoffs", "K-X-OWN")].evidence == [f"{X}-d2"]
    follow_ups = [r.state for (p, _), r in now.items() if p == "detractor-follow-up-48h"]
    # the shared history's (broken, still unanswered at visit a's survey), those of visits b
    # and c (cancelled by the second and third erasure), and visit d's
    assert sorted(follow_ups) == ["broken", "cancelled", "cancelled", "pending"]


# --- retention ----------------------------------------------------------------------------------


def retention_history() -> list[dict[str, Any]]:
    return [
        # an old, decided case: its records go, its outcome stays with expired evidence
        record("old-1", "2024-01-10 10:00", "C-OLD", type="problem_reported", case_id="K-OLD"),
        record("old-2", "2024-01-10 11:00", "C-OLD", type="resolved", direction="outbound",
               case_id="K-OLD"),
        # an old record in a scope with an open outcome, and the open outcome's own record
        record("open-0", "2024-03-01 09:00", "C-OPEN", type="info_provided",
               attributes={"item": "email"}),
        record("open-1", "2024-03-10 12:00", "C-OPEN", type="survey_response",
               attributes={"nps": 1}),
        # recent: stays whatever happens
        record("new-1", "2024-03-11 06:00", "C-OLD", type="note", case_id="K-OLD"),
    ]  # fmt: skip


def test_retention_removes_only_records_no_open_outcome_needs(
    db_engine: Engine, catalog: Catalog
) -> None:
    service = PromiseService(catalog, session_factory(db_engine))
    service.ingest(retention_history())
    before, outcomes = figures(service), by_key(service)
    now = datetime(2024, 3, 12, tzinfo=UTC)

    dry = retention.apply_retention(service.sessions, catalog, 1, now=now, dry_run=True)
    assert (dry.records, service.record_count()) == (2, 5)

    report = retention.apply_retention(service.sessions, catalog, 1, now=now)

    assert (report.records, report.kept_for_open) == (2, 2)
    with service.sessions() as session:
        left = {r.id for r in record_table.all_records(session)}
    assert left == {"open-0", "open-1", "new-1"}
    after = by_key(service)
    assert after.keys() == outcomes.keys()
    kept = after[("travel-guarantee", "K-OLD#1")]
    assert (kept.state, kept.decided_at) == (
        "kept",
        outcomes[("travel-guarantee", "K-OLD#1")].decided_at,
    )
    assert kept.evidence == ["expired:old-1", "expired:old-2"]
    assert after[("detractor-follow-up-48h", "C-OPEN#1")].state == "pending"
    assert figures(service) == before

    # A later record in the expired case opens a new opportunity and revises nothing.
    service.ingest(
        [
            record("new-2", "2024-03-11 07:00", "C-OLD", type="problem_reported", case_id="K-OLD"),
            record("new-3", "2024-03-11 08:00", "C-OLD", type="resolved", direction="outbound",
                   case_id="K-OLD"),
        ]
    )  # fmt: skip
    final = by_key(service)
    assert final[("travel-guarantee", "K-OLD#1")].evidence == ["expired:old-1", "expired:old-2"]
    assert final[("travel-guarantee", "K-OLD#2")].evidence == ["new-2", "new-3"]
    assert figures(service, "2024-03-11T00:00:00+00:00") == before
    assert retention.apply_retention(service.sessions, catalog, 1, now=now).records == 0


# --- pre-flight and backtest judge sealed scopes as the worker does ----------------------------


def pre_flight_and_worker(service: PromiseService, raw: dict[str, Any]) -> tuple[set, set]:
    """The promises pre-flight says ``raw`` would break, then those the worker breaks anew
    when it evaluates ``raw``."""
    record = parse_record(raw)
    assert not isinstance(record, list), record
    said = {v.promise for v in preflight.would_break(service.catalog, service.sessions, record)}
    broken = {k for k, r in by_key(service).items() if r.state == "broken"}
    service.ingest([raw])
    done = {k[0] for k, r in by_key(service).items() if r.state == "broken" and k not in broken}
    return said, done


def test_pre_flight_judges_an_erased_case_from_the_records_after_its_seal(
    db_engine: Engine, catalog: Catalog
) -> None:
    """A problem reported in K-SHARED before its seal reopens nothing (docs/semantics.md,
    "After a seal"): pre-flight must not call it a breach the worker will never record."""
    service = keyed(db_engine, catalog)
    erasure.erase_customer(service.sessions, catalog, X, reason="request", actor="t", key=KEY)
    late = record("b-late", "2024-03-02 20:00", B, type="problem_reported", case_id="K-SHARED")

    assert pre_flight_and_worker(service, late) == (set(), set())


def test_pre_flight_keeps_an_expired_scopes_sealed_verdict(
    db_engine: Engine, catalog: Catalog
) -> None:
    """A sealed scope-wide ``limit`` outcome (no window) keeps its verdict even if later
    records would break it."""
    ever = dataclasses.replace(catalog.promises["two-handoffs"], within=None, version="ever")
    unwindowed = dataclasses.replace(catalog, promises={"two-handoffs": ever})
    service = PromiseService(unwindowed, session_factory(db_engine))
    service.ingest([handoff("h-0", "2024-01-10 10:00"), handoff("h-1", "2024-03-10 10:00")])
    now = datetime(2024, 3, 12, tzinfo=UTC)
    assert retention.apply_retention(service.sessions, unwindowed, 30, now=now).records == 1
    service.ingest([handoff("h-2", "2024-03-11 10:00")])
    assert by_key(service)[("two-handoffs", "K-L")].state == "kept"

    assert pre_flight_and_worker(service, handoff("h-3", "2024-03-11 12:00")) == (set(), set())


def test_pre_flight_and_the_worker_judge_each_handoff_after_an_expiry(
    db_engine: Engine, catalog: Catalog
) -> None:
    """With a window, the next handoff is an opportunity of its own, judged from the
    records that are left: both say it breaks the promise."""
    service = PromiseService(catalog, session_factory(db_engine))
    service.ingest(
        [handoff(f"h-{n}", when) for n, when in enumerate(["2024-01-10 10:00", "2024-03-10 10:00"])]
    )
    now = datetime(2024, 3, 12, tzinfo=UTC)
    assert retention.apply_retention(service.sessions, catalog, 30, now=now).records == 1
    service.ingest([handoff("h-2", "2024-03-11 10:00")])
    assert by_key(service)[("two-handoffs", "h-1")].sealed_at is not None

    said, done = pre_flight_and_worker(service, handoff("h-3", "2024-03-11 12:00"))
    assert said == done == {"two-handoffs"}
    assert by_key(service)[("two-handoffs", "h-3")].evidence == ["h-1", "h-2", "h-3"]


def handoff(id: str, when: str) -> dict[str, Any]:
    return record(id, when, "C-L", type="handoff", case_id="K-L")


def test_backtesting_the_version_in_force_after_an_erasure_changes_nothing(
    db_engine: Engine, catalog: Catalog
) -> None:
    service = keyed(db_engine, catalog)
    erasure.erase_customer(service.sessions, catalog, X, reason="request", actor="t", key=KEY)
    text = (ROOT / "promises" / "travel-guarantee.yaml").read_text()

    result = backtest.backtest(backtest.load_draft(ROOT / "promises", text), service.sessions)

    assert result.changed == []
    assert result.summary == result.current_summary == {"kept": 1, "broken": 1}


# --- HTTP and the command line ------------------------------------------------------------------


@pytest.fixture
def keyed_server(server_with: Callable[..., Server]) -> Server:
    return server_with(PROMISE_ERASURE_KEY=KEY)


def test_http_export_and_erasure_need_whole_keys_and_keep_compliance(
    keyed_server: Server, tmp_path: Path
) -> None:
    server = keyed_server
    reader = server.promise("keys", "create", "reader", "--scopes", "read").strip()
    team = server.promise("keys", "create", "care", "--scopes", "read", "--team", "customer-care")
    with server.client() as admin:
        posted = admin.post("/interactions", json=shared_history()).json()
        assert posted["accepted"] == len(shared_history())
        server.wait_for(lambda: admin.get("/readyz").json()["evaluation_lag"] == 0)
        server.wait_for(lambda: len(admin.get("/outcomes").json()["items"]) == 7)
        compliance = admin.get("/compliance", params={"group_by": "week"}).json()
        assert admin.get("/outcomes", params={"customer_id": X}).json()["items"]

    with server.client(reader) as client:
        document = client.get(f"/customers/{X}/export").json()
        assert [r["id"] for r in document["interactions"]] == x_record_ids()
        assert B not in json.dumps(document)
        answer = client.get(f"/customers/{X}/export", params={"format": "zip"})
        assert answer.headers["content-type"] == "application/zip"
        names = zipfile.ZipFile(io.BytesIO(answer.content)).namelist()
        assert "outcomes.csv" in names and "alerts.csv" in names
        refused = client.request("DELETE", f"/customers/{X}", json={"reason": "request"})
        assert refused.status_code == 403  # read is not admin
    with server.client(team.strip()) as client:
        for answer in (
            client.get(f"/customers/{X}/export"),
            client.request("DELETE", f"/customers/{X}", json={"reason": "request"}),
        ):
            assert answer.status_code == 403
            assert "team-restricted keys cannot export, erase" in answer.json()["detail"]

    with server.client() as admin:
        assert admin.request("DELETE", f"/customers/{X}").status_code == 422
        assert admin.request("DELETE", f"/customers/{X}", json={"reason": ""}).status_code == 422
        erased = admin.request("DELETE", f"/customers/{X}", json={"reason": "GDPR art. 17"})
        assert erased.status_code == 200, erased.text
        assert erased.json()["counts"]["interactions"] == len(x_record_ids())
        assert admin.get("/compliance", params={"group_by": "week"}).json() == compliance
        assert admin.get(f"/customers/{X}/export").json()["interactions"] == []
        again = admin.post("/interactions", json=shared_history()[0]).json()
        assert again["results"][0]["status"] == "duplicate"

    out = tmp_path / "b.json"
    server.promise("customer", "export", B, "--out", str(out))
    assert X not in out.read_text()
    assert "interactions 8" in server.promise("customer", "erase", B, "--reason", "request")
    assert "removed 0 records" in server.promise("retention", "apply", "--days", "3650")

    # The access log keeps no customer id: they are redacted in paths and query strings.
    # (The log alert route of teams.yaml writes alerts, customer ids included, by design.)
    logs = "".join(path.read_text() for path in tmp_path.glob("serve-*.log")).splitlines()
    access = "\n".join(line for line in logs if ' HTTP/1.1" ' in line)
    assert '"GET /customers/<redacted>/export?format=zip HTTP/1.1" 200' in access
    assert "customer_id=<redacted>" in access and "DELETE /customers/<redacted> " in access
    assert X not in access
