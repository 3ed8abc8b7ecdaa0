"""Prometheus metrics: counters of this process, gauges read from the database on scrape."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from engine.reading.queries import Queries


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
