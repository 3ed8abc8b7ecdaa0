"""Every path that decides outcomes agrees with the reference evaluator, on random catalogs
over the whole promise language (tests/strategies.py) and random histories.

The paths: in-memory replay (``promise replay``), ``replay --db`` (``PromiseService.backfill``),
the service fed in random batches and arrival orders and evaluated as the worker does
(``evaluate_pending``, ``advance``), the backtest of each promise against what is stored, and
the pre-flight check of one more record against what evaluating it then really does. Each
runs on SQLite and, with ``PROMISE_TEST_DATABASE_URL``, on PostgreSQL.

Budgets: the hypothesis profiles in tests/conftest.py (``--hypothesis-profile=long`` runs
100 times more examples); each test takes a share of the profile's ``max_examples``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import engine_adapter
import reference
from conftest import BACKENDS, fresh_postgres
from engine.outcomes import Outcome
from engine.records import Interaction
from engine.sandbox.backtest import backtest
from engine.sandbox.preflight import would_break
from engine.service import PromiseService
from engine.storage.database import make_engine, migrate, session_factory
from engine.storage.schema import Base
from rules.models import Catalog
from strategies import Generated, catalogs, histories, load, untils

pytestmark = pytest.mark.differential

Sessions = sessionmaker[Session]


def budget(share: float) -> settings:
    """``share`` of the loaded profile's examples: the database paths cost more per example."""
    return settings(
        max_examples=max(1, round(settings.default.max_examples * share)),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- databases -----------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def fresh_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], Sessions]]:
    """Makes an empty, migrated database per example: a copy of a migrated SQLite file, or
    this module's PostgreSQL database emptied."""
    folder = tmp_path_factory.mktemp("differential")
    engines: list[Engine] = []
    if request.param == "sqlite":
        template = folder / "template.db"
        engine = make_engine(f"sqlite:///{template}")
        migrate(engine)
        engine.dispose()
        count = iter(range(1_000_000))

        def fresh() -> Sessions:
            for old in engines:
                old.dispose()
            engines.clear()
            path = folder / f"example{next(count)}.db"
            shutil.copy(template, path)
            engines.append(make_engine(f"sqlite:///{path}"))
            return session_factory(engines[0])

        yield fresh
        for old in engines:
            old.dispose()
        return
    with fresh_postgres(os.environ["PROMISE_TEST_DATABASE_URL"], "promise_differential") as url:
        engine = make_engine(url)

        def empty() -> Sessions:
            with engine.begin() as connection:
                for table in reversed(Base.metadata.sorted_tables):
                    connection.execute(table.delete())
            return session_factory(engine)

        yield empty
        engine.dispose()


# --- outcomes in one form ------------------------------------------------------------------------


def _sorted(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(outcomes, key=lambda o: (o["promise"], o["scope"], o["opened_at"], o["evidence"]))


def stored(service: PromiseService) -> list[dict[str, Any]]:
    """What the service stored, in the reference's form."""
    return _sorted([_utc(o) for o in service.outcomes()])


def _utc(outcome: Outcome) -> dict[str, Any]:
    spec = outcome.spec()
    for name in ("opened_at", "due_at", "decided_at"):
        if spec[name] is not None:
            spec[name] = spec[name].astimezone(UTC)
    return spec


def as_json(outcome: dict[str, Any]) -> dict[str, Any]:
    """A reference outcome as the API and backtests print it (SPEC §6)."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in outcome.items()}


def key_of(catalog: Catalog, outcome: dict[str, Any], opened: list[dict[str, Any]]) -> str:
    """The engine's key of a reference outcome: ``scope#n`` for the n-th deadline
    opportunity of its scope (``opened`` lists them all), the ``then`` record for never, the
    scope for limit."""
    kind = catalog.promises[outcome["promise"]].kind
    if kind == "never":
        return outcome["evidence"][-1]
    if kind == "limit":
        return outcome["scope"]
    mine = sorted(
        (o["opened_at"], o["evidence"][0])
        for o in opened
        if (o["promise"], o["scope"]) == (outcome["promise"], outcome["scope"])
    )
    return f"{outcome['scope']}#{mine.index((outcome['opened_at'], outcome['evidence'][0])) + 1}"


def broken_keys(catalog: Catalog, outcomes: list[dict[str, Any]]) -> dict[tuple[str, str], dict]:
    return {
        (o["promise"], key_of(catalog, o, outcomes)): o for o in outcomes if o["state"] == "broken"
    }


def interaction(record: dict[str, Any]) -> Interaction:
    return engine_adapter.to_interaction(record)


def sent(record: dict[str, Any]) -> dict[str, Any]:
    """A record as a service sends it: JSON, the time as ISO 8601 text."""
    return {**record, "occurred_at": record["occurred_at"].isoformat()}


# --- the paths -----------------------------------------------------------------------------------


@budget(1.0)
@given(st.data())
def test_in_memory_replay_agrees_with_the_reference(data: st.DataObject) -> None:
    generated = data.draw(catalogs(), "catalog")
    records = data.draw(histories(generated), "records")
    until = data.draw(untils(generated), "until")
    expected = reference.evaluate(generated.catalog, records, until)
    for outcome in expected:  # what was covered: --hypothesis-show-statistics
        kind = generated.catalog.promises[outcome["promise"]].kind
        event("outcome", f"{kind} {outcome['state']}")
    assert engine_adapter.evaluate(generated.catalog, records, until) == expected


@budget(0.3)
@given(st.data())
def test_replay_into_a_database_agrees_with_the_reference(
    fresh_database: Callable[[], Sessions], data: st.DataObject
) -> None:
    generated = data.draw(catalogs(), "catalog")
    records = data.draw(histories(generated), "records")
    until = data.draw(untils(generated), "until")
    service = PromiseService(generated.catalog, fresh_database())
    ordered = sorted((interaction(r) for r in records), key=lambda r: r.order)
    service.backfill(ordered, until)
    assert stored(service) == reference.evaluate(generated.catalog, records, until)


@budget(0.3)
@given(st.data())
def test_the_service_backtest_and_preflight_agree_with_the_reference(
    fresh_database: Callable[[], Sessions], data: st.DataObject
) -> None:
    """Records arrive in random batches and orders and are evaluated as the worker does,
    in random slices; then each promise is backtested against what is stored; then one more
    record is checked before it is sent, and sent."""
    generated = data.draw(catalogs(), "catalog")
    catalog = generated.catalog
    records = data.draw(histories(generated), "records")
    until = data.draw(untils(generated), "until")
    rnd = data.draw(st.randoms(use_true_random=False), "arrival")
    sessions = fresh_database()
    service = PromiseService(catalog, sessions)
    arriving = list(records)
    rnd.shuffle(arriving)
    while arriving:
        size = rnd.randint(1, 6)
        batch, arriving = arriving[:size], arriving[size:]
        assert {a.status for a in service.accept([sent(r) for r in batch])} == {"accepted"}
        if rnd.random() < 0.7 or not arriving:  # sometimes two batches queue up
            while service.evaluate_pending(limit=rnd.randint(1, 8)):
                pass
    if until is not None:
        service.advance(until)
    expected = reference.evaluate(catalog, records, until)
    assert stored(service) == expected

    for pid, promise in catalog.promises.items():
        draft = Catalog({pid: promise}, catalog.teams, catalog.calendars)
        tried = backtest(draft, sessions)
        mine = sorted(tried.outcomes, key=lambda o: (o["scope"], o["opened_at"], o["evidence"]))
        assert mine == [as_json(o) for o in expected if o["promise"] == pid], pid
        assert tried.changed == [], pid

    _check_preflight(generated, sessions, service, records, until, data)


def _check_preflight(
    generated: Generated,
    sessions: Sessions,
    service: PromiseService,
    records: list[dict[str, Any]],
    until: datetime | None,
    data: st.DataObject,
) -> None:
    """The pre-flight answer for one more record is exactly the opportunities that sending
    it breaks (the reference says which), and sending it then does that."""
    catalog = generated.catalog
    last = max((r["occurred_at"] for r in records), default=generated.anchor)
    (record,) = data.draw(histories(generated, max_size=1, after=last), "next record")
    clock = max([last, record["occurred_at"], *([until] if until else [])])
    before = broken_keys(catalog, reference.evaluate(catalog, records, clock))
    after = reference.evaluate(catalog, [*records, record], clock)
    expected = sorted(
        (pid, tuple(i for i in o["evidence"] if i != record["id"]))
        for (pid, key), o in broken_keys(catalog, after).items()
        if (pid, key) not in before
    )
    answer = would_break(catalog, sessions, interaction(record))
    assert sorted((v.promise, tuple(e.id for e in v.evidence)) for v in answer) == expected
    service.accept([sent(record)])
    while service.evaluate_pending():
        pass
    assert stored(service) == _sorted(after)


# --- found by the generator, not fixed here -------------------------------------------------------
# Each is narrowed away in KNOWN_GAPS ("mixed-types"): the rules core compares values of
# different types its own way. docs/semantics.md does not say how types compare; the
# reference takes values as JSON does (text is not a number, "1" is not 1) and matches a
# pattern against a number's text. Deciding that, and typing the facts the rules core sees,
# belongs to a fix of its own.

_MIXED = pytest.mark.xfail(
    strict=True, reason="the rules core compares values of different types its own way"
)


def _both(promise: dict[str, Any], *records: dict[str, Any]) -> tuple[list, list]:
    """(engine, reference) states and evidence of a one-promise catalog scoped by customer."""
    doc = {"id": "p", "title": "t", "owner": "ops", "scope": "customer_id", **promise}
    catalog = load({"teams.yaml": {"teams": {"ops": {"name": "Ops"}}}, "p.yaml": doc})
    assert catalog is not None
    full = [
        {"occurred_at": datetime(2024, 3, 1, 9, n, tzinfo=UTC), "customer_id": "C1", **r}
        for n, r in enumerate(records)
    ]
    return tuple(  # type: ignore[return-value]
        [(o["state"], o["evidence"]) for o in evaluate(catalog, full)]
        for evaluate in (engine_adapter.evaluate, reference.evaluate)
    )


def _counted(condition: dict[str, Any], attributes: dict[str, Any]) -> tuple[list, list]:
    return _both({"kind": "limit", "count": condition, "max": 0}, {"id": "r1", **attributes})


@_MIXED
def test_gte_to_lt_hold_only_for_numbers() -> None:
    engine, expected = _counted({"attributes.nps": {"lte": 6}}, {"attributes": {"nps": "3"}})
    assert expected == []  # "3" is text
    assert engine == expected


@_MIXED
def test_a_text_is_never_equal_to_a_number() -> None:
    engine, expected = _counted({"attributes.item": {"ne": "1"}}, {"attributes": {"item": 1}})
    assert expected == [("broken", ["r1"])]
    assert engine == expected


@_MIXED
def test_same_never_pairs_a_text_with_a_number() -> None:
    never = {"kind": "never", "first": {"type": "given"}, "then": {"type": "asked"}}
    engine, expected = _both(
        {**never, "same": ["attributes.item"]},
        {"id": "g", "type": "given", "attributes": {"item": "1"}},
        {"id": "a", "type": "asked", "attributes": {"item": 1}},
    )
    assert expected == [("kept", ["a"])]
    assert engine == expected


@_MIXED
def test_matches_tests_a_number_by_its_text() -> None:
    engine, expected = _counted({"attributes.n": {"matches": "2.5"}}, {"attributes": {"n": 2.5}})
    assert expected == [("broken", ["r1"])]
    assert engine == expected


@_MIXED
def test_an_object_attribute_is_present() -> None:
    engine, expected = _counted(
        {"attributes.meta": {"exists": True}}, {"attributes": {"meta": {"level": "low"}}}
    )
    assert expected == [("broken", ["r1"])]
    assert engine == expected
