"""Every path that decides outcomes agrees with the reference evaluator, on random catalogs
over the whole promise language (tests/strategies.py) and random histories.

The paths (tests/engine_paths.py, run in a child process): in-memory replay (``promise
replay``), ``replay --db`` (``PromiseService.backfill``), the service fed in random batches
and arrival orders and evaluated as the worker does (``evaluate_pending``, ``advance``), the
backtest of each promise against what the service stored, and the pre-flight check of one
more record against what sending it then does. The database paths run on SQLite and, with
``PROMISE_TEST_DATABASE_URL``, on PostgreSQL.

Budgets: the hypothesis profiles in tests/conftest.py; each test takes a share of the
profile's ``max_examples`` (``pytest --hypothesis-profile=long -m differential`` runs 100
times more).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

import engine_adapter
import engine_paths
import reference
from conftest import BACKENDS, fresh_postgres
from engine.privacy import retention
from engine.service import PromiseService
from engine.storage.database import session_factory
from rules.models import Catalog, LimitPromise, NeverPromise
from strategies import catalogs, histories, load, next_records, untils

pytestmark = pytest.mark.differential


def budget(share: float) -> settings:
    """``share`` of the loaded profile's examples: the database paths cost more per example."""
    return settings(
        max_examples=max(1, round(settings.default.max_examples * share)),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@pytest.fixture(scope="module")
def paths() -> Iterator[engine_paths.Paths]:
    running = engine_paths.Paths()
    yield running
    running.close()


@pytest.fixture(scope="module", params=BACKENDS)
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Where each example gets an empty database: a folder for SQLite files, or a PostgreSQL
    database of this module's own."""
    if request.param == "sqlite":
        yield str(tmp_path_factory.mktemp("differential"))
        return
    with fresh_postgres(os.environ["PROMISE_TEST_DATABASE_URL"], "promise_differential") as url:
        yield url


# --- the reference's side ------------------------------------------------------------------------


def as_json(outcome: dict[str, Any]) -> dict[str, Any]:
    """A reference outcome as the API and backtests print it (SPEC §6)."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in outcome.items()}


def key_of(catalog: Catalog, outcome: dict[str, Any], opened: list[dict[str, Any]]) -> str:
    """The engine's key of a reference outcome (docs/semantics.md): ``scope#n`` for the n-th
    deadline opportunity of its scope (``opened`` lists them all), the ``then`` record for
    never, the counted record for a windowed limit, the scope for an un-windowed one."""
    promise = catalog.promises[outcome["promise"]]
    if isinstance(promise, NeverPromise) or (
        isinstance(promise, LimitPromise) and promise.within is not None
    ):
        return outcome["evidence"][-1]
    if isinstance(promise, LimitPromise):
        return outcome["scope"]
    mine = sorted(
        (o["opened_at"], o["evidence"][0])
        for o in opened
        if (o["promise"], o["scope"]) == (outcome["promise"], outcome["scope"])
    )
    return f"{outcome['scope']}#{mine.index((outcome['opened_at'], outcome['evidence'][0])) + 1}"


def newly_broken(
    catalog: Catalog, before: list[dict[str, Any]], after: list[dict[str, Any]], record: str
) -> list[tuple[str, tuple[str, ...]]]:
    """What the pre-flight check for ``record`` must answer: each opportunity broken in
    ``after`` but not in ``before``, as its promise and its evidence other than ``record``."""
    was = {(o["promise"], key_of(catalog, o, before)) for o in before if o["state"] == "broken"}
    return sorted(
        (o["promise"], tuple(i for i in o["evidence"] if i != record))
        for o in after
        if o["state"] == "broken" and (o["promise"], key_of(catalog, o, after)) not in was
    )


# --- the paths -----------------------------------------------------------------------------------


@budget(1.0)
@given(st.data())
def test_in_memory_replay_agrees_with_the_reference(
    paths: engine_paths.Paths, data: st.DataObject
) -> None:
    generated = data.draw(catalogs(), "catalog")
    records = data.draw(histories(generated), "records")
    until = data.draw(untils(records), "until")
    expected = reference.evaluate(generated.catalog, records, until)
    # What was covered (--hypothesis-show-statistics): the share of examples with at least one
    # outcome of each kind and state (an event's label counts once per example).
    for outcome in expected:
        event(f"{generated.catalog.promises[outcome['promise']].kind} {outcome['state']}")
    assert paths.run(engine_paths.in_memory, generated.files, records, until) == expected


@budget(0.5)
@given(st.data())
def test_continuing_from_checkpoints_agrees_with_the_reference(
    paths: engine_paths.Paths, data: st.DataObject
) -> None:
    generated = data.draw(catalogs(), "catalog")
    records = data.draw(histories(generated), "records")
    until = data.draw(untils(records), "until")
    seed = data.draw(st.integers(0, 2**32), "slices and clocks")
    found = paths.run(engine_paths.continued, generated.files, records, until, seed)
    assert found == reference.evaluate(generated.catalog, records, until)


@budget(0.3)
@given(st.data())
def test_replay_into_a_database_agrees_with_the_reference(
    paths: engine_paths.Paths, database: str, data: st.DataObject
) -> None:
    generated = data.draw(catalogs(), "catalog")
    records = data.draw(histories(generated), "records")
    until = data.draw(untils(records), "until")
    found = paths.run(engine_paths.into_database, generated.files, records, until, database)
    assert found == reference.evaluate(generated.catalog, records, until)


@budget(0.3)
@given(st.data())
def test_the_service_backtest_and_preflight_agree_with_the_reference(
    paths: engine_paths.Paths, database: str, data: st.DataObject
) -> None:
    generated = data.draw(catalogs(), "catalog")
    records = data.draw(histories(generated), "records")
    until = data.draw(untils(records), "until")
    seed = data.draw(st.integers(0, 2**32), "arrival order and batches")
    following = data.draw(next_records(generated, records), "next record")
    run = paths.run(
        engine_paths.through_service, generated.files, records, until, database, seed, following
    )
    breaking = assert_service_agrees(generated.catalog, records, until, following, run)
    event("pre-flight", "would break a promise" if breaking else "would break none")


@budget(0.3)
@given(st.data())
def test_checkpoints_give_the_verdicts_of_afresh_evaluation_around_erasure_and_retention(
    paths: engine_paths.Paths, database: str, data: st.DataObject
) -> None:
    """The reference knows nothing of seals, so here the service continuing from checkpoints
    is held to the service judging every scope afresh, through the same batches, erasures
    and expiries: the same outcomes (keys and seals too) and the same revisions."""
    generated = data.draw(catalogs(), "catalog")
    records = data.draw(histories(generated), "records")
    until = data.draw(untils(records), "until")
    seed = data.draw(st.integers(0, 2**32), "batches, erasures and expiries")
    spacing = data.draw(st.integers(1, 6), "checkpoint spacing")
    args = (generated.files, records, until, database, seed)
    continued = paths.run(engine_paths.around_seals, *args, spacing)
    afresh = paths.run(engine_paths.around_seals, *args, engine_paths.AFRESH)
    event("sealed", "some outcome sealed" if any(o[-1] for o in afresh.outcomes) else "none")
    assert continued.outcomes == afresh.outcomes
    assert continued.revisions == afresh.revisions


def assert_service_agrees(
    catalog: Catalog,
    records: list[dict[str, Any]],
    until: datetime | None,
    following: dict[str, Any],
    run: engine_paths.ServiceRun,
) -> list[tuple[str, tuple[str, ...]]]:
    """What the service stored, backtested and answered in pre-flight for ``following`` is
    what the reference decides; returns that pre-flight answer."""
    expected = reference.evaluate(catalog, records, until)
    assert run.stored == expected
    for pid in catalog.promises:
        outcomes, changed = run.backtests[pid]
        assert outcomes == [as_json(o) for o in expected if o["promise"] == pid], pid
        assert changed == [], pid

    last = max(r["occurred_at"] for r in [*records, following])
    clock = max([last, *([until] if until else [])])
    before = reference.evaluate(catalog, records, clock)
    after = reference.evaluate(catalog, [*records, following], clock)
    breaking = newly_broken(catalog, before, after, following["id"])
    assert run.preflight == breaking
    assert run.stored_after == after
    return breaking


# --- cases the generator found, kept as regression tests --------------------------------------

ANCHOR = datetime(2024, 3, 8, 9, tzinfo=UTC)
HOUR, MINUTE = timedelta(hours=1), timedelta(minutes=1)
MESSAGE = {"customer_id": "C1", "channel": "email", "direction": "inbound", "type": "message"}


def _one_promise(promise: dict[str, Any]) -> dict[str, Any]:
    """The files of a catalog of one promise ``p0`` scoped by customer."""
    doc = {"id": "p0", "title": "t", "owner": "ops", "scope": "customer_id", **promise}
    return {"teams.yaml": {"teams": {"ops": {"name": "Ops"}}}, "p0.yaml": doc}


def _messages(*minutes: int) -> list[dict[str, Any]]:
    return [
        {**MESSAGE, "id": f"r{n:02d}", "occurred_at": ANCHOR + timedelta(minutes=m)}
        for n, m in enumerate(minutes)
    ]


def test_pre_flight_warns_of_each_excess_of_a_windowed_limit(
    paths: engine_paths.Paths, database: str
) -> None:
    """Found by the first merged run: once a scope had one excess, the test's own oracle keyed
    every outcome of a windowed limit by its scope and so expected no warning for a second,
    while docs/semantics.md makes each counted record its own opportunity (keyed by its id),
    and the engine rightly warned."""
    files = _one_promise({"kind": "limit", "count": {"type": "message"}, "max": 1, "within": "1h"})
    catalog = load(files)
    assert catalog is not None
    *records, following = _messages(0, 10, 20)  # r01 already over; r02 would be over again
    run = paths.run(engine_paths.through_service, files, records, None, database, 0, following)
    assert assert_service_agrees(catalog, records, None, following, run) == [("p0", ("r01",))]


@pytest.mark.parametrize("seed", range(24))  # one, two and three workers, in several orders
def test_a_worker_decides_what_another_workers_records_made_fall_due(
    paths: engine_paths.Paths, database: str, seed: int
) -> None:
    """Shared scopes: C1's reply falls due when C3's later record moves the clock, which the
    worker owning C3's shard does; the worker owning C1's must still break it (it catches up
    with the clock when its queue is empty). The random histories seldom leave a deadline's
    scope without a later record of its own, so the generator did not find this."""
    files = _one_promise(
        {"kind": "deadline", "start": {"direction": "inbound"}, "stop": {"direction": "outbound"}}
        | {"within": "1h"}
    )
    catalog = load(files)
    assert catalog is not None
    records = [
        {**MESSAGE, "id": "r1", "occurred_at": ANCHOR},
        {**MESSAGE, "id": "r2", "occurred_at": ANCHOR + timedelta(days=2), "customer_id": "C3"},
    ]
    following = {**records[1], "id": "r3", "direction": "outbound"} | {
        "occurred_at": ANCHOR + timedelta(days=3)
    }
    run = paths.run(engine_paths.through_service, files, records, None, database, seed, following)
    assert_service_agrees(catalog, records, None, following, run)


def test_after_a_seal_a_late_record_is_judged_unless_it_comes_before_the_seal(
    db_engine: Engine,
) -> None:
    """A sealed deadline scope continues from its checkpoint (docs/PERFORMANCE.md §5,
    "Sealed scopes"): a record that arrives late but after the seal must still be judged,
    and one before the seal by nobody (docs/semantics.md, "After a seal"). The random
    histories seldom put a late record between a seal and the checkpoint after it."""
    files = _one_promise(
        {"kind": "deadline", "start": {"direction": "inbound"}, "stop": {"direction": "outbound"}}
        | {"within": "1h"}
    )
    catalog = load(files)
    assert catalog is not None
    service = PromiseService(catalog, session_factory(db_engine), checkpoint_spacing=1)
    day = timedelta(days=1)

    def send(id: str, at: datetime, direction: str) -> None:
        record = {**MESSAGE, "id": id, "occurred_at": at.isoformat(), "direction": direction}
        assert service.ingest([record])[0].status == "accepted"

    send("r1", ANCHOR, "inbound")  # kept, then expired with r2
    send("r2", ANCHOR + timedelta(minutes=10), "outbound")
    send("r3", ANCHOR + 2 * day, "inbound")  # kept, and sealed as well...
    send("r4", ANCHOR + 2 * day + 20 * MINUTE, "outbound")  # ...at the scope's latest record
    now = ANCHOR + 2 * day + 3 * HOUR
    assert retention.apply_retention(service.sessions, catalog, 1, now=now).records == 2
    send("r5", ANCHOR + 2 * day + HOUR, "inbound")  # after the seal: C1#3, kept by r6...
    send("r6", ANCHOR + 2 * day + 90 * MINUTE, "outbound")
    send("r7", ANCHOR + 2 * day + 65 * MINUTE, "outbound")  # ...or earlier, by r7, late
    send("r8", ANCHOR + 2 * day + 10 * MINUTE, "inbound")  # before the seal: judged by nobody

    outcomes = {o.key: o for o in service.outcomes()}
    assert sorted(outcomes) == ["C1#1", "C1#2", "C1#3"]
    assert (outcomes["C1#1"].sealed, outcomes["C1#2"].sealed) == (True, True)
    third = outcomes["C1#3"]
    assert (third.state, third.evidence, third.decided_at) == (
        "kept",
        ["r5", "r7"],
        ANCHOR + 2 * day + 65 * MINUTE,
    )


# --- values of different kinds: found by the generator, decided as JSON does ------------------
# The rules core alone compared values of different kinds its own way ("3" <= 6, 1 == "1", an
# object attribute absent); docs/semantics.md ("Matching") now says values compare as JSON
# values do, and the compiled rules test each attribute's kind (rules/compiler.py).


def _both(promise: dict[str, Any], *records: dict[str, Any]) -> tuple[list, list]:
    """(engine, reference) states and evidence of a one-promise catalog scoped by customer."""
    catalog = load(_one_promise(promise))
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


def test_gte_to_lt_hold_only_for_numbers() -> None:
    engine, expected = _counted({"attributes.nps": {"lte": 6}}, {"attributes": {"nps": "3"}})
    assert expected == []  # "3" is text
    assert engine == expected


def test_a_text_is_never_equal_to_a_number() -> None:
    engine, expected = _counted({"attributes.item": {"ne": "1"}}, {"attributes": {"item": 1}})
    assert expected == [("broken", ["r1"])]
    assert engine == expected


NEVER = {"kind": "never", "first": {"type": "given"}, "then": {"type": "asked"}}


def test_same_never_pairs_a_text_with_a_number() -> None:
    engine, expected = _both(
        {**NEVER, "same": ["attributes.item"]},
        {"id": "g", "type": "given", "attributes": {"item": "1"}},
        {"id": "a", "type": "asked", "attributes": {"item": 1}},
    )
    assert expected == [("kept", ["a"])]
    assert engine == expected


@pytest.mark.parametrize(("value", "verdicts"), [(2.5, []), ("2.5", [("broken", ["r1"])])])
def test_matches_tests_only_text(value: Any, verdicts: list) -> None:
    engine, expected = _counted({"attributes.n": {"matches": "2.5"}}, {"attributes": {"n": value}})
    assert expected == verdicts
    assert engine == expected


def test_an_object_attribute_is_present() -> None:
    engine, expected = _counted(
        {"attributes.meta": {"exists": True}}, {"attributes": {"meta": {"level": "low"}}}
    )
    assert expected == [("broken", ["r1"])]
    assert engine == expected


def test_same_compares_objects_and_lists_as_json() -> None:
    """Key order and 1.0 for 1 do not matter; a list's order and a scalar's kind do."""
    low = {"level": "low", "n": 1}
    engine, expected = _both(
        {**NEVER, "same": ["attributes.meta"]},
        {"id": "g1", "type": "given", "attributes": {"meta": low}},
        {"id": "g2", "type": "given", "attributes": {"meta": ["low", "high"]}},
        {"id": "a1", "type": "asked", "attributes": {"meta": {"n": 1.0, "level": "low"}}},
        {"id": "a2", "type": "asked", "attributes": {"meta": ["high", "low"]}},
        {"id": "a3", "type": "asked", "attributes": {"meta": "low"}},
        {"id": "a4", "type": "asked", "attributes": {"meta": ["low", "high"]}},
    )
    assert expected == [
        ("broken", ["g1", "a1"]),
        ("kept", ["a2"]),
        ("kept", ["a3"]),
        ("broken", ["g2", "a4"]),
    ]
    assert engine == expected
