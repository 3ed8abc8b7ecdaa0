"""Prometheus metrics: counters of this process, gauges read from the database on scrape."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from engine.queries import Queries


class _DatabaseGauges(Collector):
    def __init__(self, queries: Queries) -> None:
        self.queries = queries

    def collect(self):  # type: ignore[override]
        records, outcomes = self.queries.totals()
        yield GaugeMetricFamily(
            "promise_records_stored", "Interaction records stored.", value=records
        )
        yield GaugeMetricFamily(
            "promise_evaluation_lag_records",
            "Records accepted but not yet evaluated.",
            value=self.queries.lag(),
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
        for (team, status), count in sorted(self.queries.deliveries().items()):
            deliveries.add_metric([team, status], count)
        yield deliveries


class Metrics:
    """One registry per application, so tests can run several apps in one process."""

    def __init__(self, queries: Queries) -> None:
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
