"""Prometheus metrics: counters of this process, gauges read from the database on scrape."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from engine.reading.queries import Queries
from rules.durations import format_duration


class _DatabaseGauges(Collector):
    def __init__(self, queries: Callable[[], Queries]) -> None:
        self.current = queries  # the queries of the catalog in force (it changes on reload)

    def collect(self):  # type: ignore[override]
        queries = self.current()
        records, outcomes = queries.totals()
        yield GaugeMetricFamily(
            "promise_records_stored", "Interaction records stored.", value=records
        )
        yield GaugeMetricFamily(
            "promise_evaluation_lag_records",
            "Records accepted but not yet evaluated.",
            value=queries.lag(),
        )
        family = GaugeMetricFamily(
            "promise_outcomes", "Outcomes by promise and state.", labels=["promise", "state"]
        )
        for (promise, state), count in sorted(outcomes.items()):
            family.add_metric([promise, state], count)
        yield family
        deliveries = GaugeMetricFamily(
            "promise_alert_deliveries",
            "Alert deliveries by owning team and status (dead: gave up after every retry).",
            labels=["team", "status"],
        )
        for (team, status), count in sorted(queries.deliveries().items()):
            deliveries.add_metric([team, status], count)
        yield deliveries
        quarantined = GaugeMetricFamily(
            "promise_quarantined",
            "1 for each promise not evaluated because its evaluation crashed (see GET /promises).",
            labels=["promise", "version"],
        )
        for held in queries.quarantined().values():
            quarantined.add_metric([held.promise_id, held.version], 1)
        yield quarantined
        yield from _burns(queries)


def _burns(queries: Queries) -> Iterator[GaugeMetricFamily]:
    """Each burn-rate rule's rates over its two windows ending at the engine's clock (none
    for a window in which nothing was decided), and whether both reach its factor."""
    rates = GaugeMetricFamily(
        "promise_burn_rate",
        "Error budget burn rate (broken share / (1 - objective)) over a window ending at the "
        "engine's clock, per burn-rate rule; absent while nothing was decided in the window.",
        labels=["promise", "rule", "window"],
    )
    burning = GaugeMetricFamily(
        "promise_objective_burning",
        "1 while both windows of a burn-rate rule burn at its factor or more (what opens an "
        "objective alert), else 0.",
        labels=["promise", "rule"],
    )
    for promise, burns in sorted(queries.burn_rates().items()):
        for burn in burns:
            rule = burn.rule
            for span, rate in ((rule.long, burn.long), (rule.short, burn.short)):
                if rate is not None:
                    rates.add_metric([promise, rule.name, format_duration(span)], rate)
            burning.add_metric([promise, rule.name], int(burn.burning))
    yield rates
    yield burning


class Metrics:
    """One registry per application, so tests can run several apps in one process."""

    def __init__(self, queries: Callable[[], Queries]) -> None:
        self.registry = CollectorRegistry()
        self.ingested = Counter(
            "promise_records_ingested",
            "Records answered, by status.",
            ["status"],
            registry=self.registry,
        )
        self.registry.register(_DatabaseGauges(queries))

    def render(self) -> bytes:
        return generate_latest(self.registry)
