"""Properties of the engine on random histories: it agrees with the reference evaluator on
every outcome, and neither input order nor duplicates change anything."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

import engine_adapter
import reference
from histories import (
    START,
    excess_episodes,
    histories,
    limit_histories,
    limit_promises,
    never_promises,
)
from rules.loader import load_catalog
from rules.models import Catalog, LimitPromise, NeverPromise

CATALOG = load_catalog(Path(__file__).resolve().parents[1] / "promises")
_UNTIL = st.one_of(
    st.none(),
    st.integers(min_value=0, max_value=60).map(lambda days: START + timedelta(days=days, hours=3)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), _UNTIL)
def test_engine_agrees_with_the_reference_on_every_outcome(
    records: list[dict[str, Any]], until: datetime | None
) -> None:
    assert engine_adapter.evaluate(CATALOG, records, until) == reference.evaluate(
        CATALOG, records, until
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(never_promises(), histories())
def test_never_promises_with_any_condition_agree_with_the_reference(
    promise: NeverPromise, records: list[dict[str, Any]]
) -> None:
    """``first`` and ``then`` with one-of lists (of one value too) and ``not``: ``same``, the
    order and the window hold whatever the conditions compile to."""
    catalog = dataclasses.replace(CATALOG, promises={promise.id: promise})
    assert engine_adapter.evaluate(catalog, records) == reference.evaluate(catalog, records)


@settings(max_examples=100, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_input_order_and_repeats_do_not_change_the_engines_outcomes(
    records: list[dict[str, Any]], random: Any
) -> None:
    shuffled = list(records)
    random.shuffle(shuffled)
    repeated = shuffled + random.sample(records, k=min(3, len(records)))
    assert engine_adapter.evaluate(CATALOG, repeated) == engine_adapter.evaluate(CATALOG, records)


def _alone(promise: LimitPromise) -> Catalog:
    return Catalog(promises={promise.id: promise}, teams={}, calendars={})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(limit_promises(), limit_histories(), _UNTIL)
def test_engine_agrees_with_the_reference_on_random_limits(
    promise: LimitPromise, records: list[dict[str, Any]], until: datetime | None
) -> None:
    catalog = _alone(promise)
    assert engine_adapter.evaluate(catalog, records, until) == reference.evaluate(
        catalog, records, until
    )


def test_random_limits_reach_scopes_that_go_over_their_window_again_and_again() -> None:
    """The generator makes windowed limits with several excess episodes in one scope (so the
    test above compares them), not only single breaches."""

    def several(case: tuple[LimitPromise, list[dict[str, Any]]]) -> bool:
        promise, records = case
        return excess_episodes(reference.evaluate(_alone(promise), records)) >= 3

    promise, records = find(
        st.tuples(limit_promises(), limit_histories()),
        several,
        settings=settings(
            max_examples=500, database=None, derandomize=True, phases=[Phase.generate]
        ),
    )
    assert promise.within is not None
    assert excess_episodes(engine_adapter.evaluate(_alone(promise), records)) >= 3
