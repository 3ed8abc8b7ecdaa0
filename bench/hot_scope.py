"""Hot-scope benchmark: one new record's cost when its scope already holds a long history.

    .venv/bin/python bench/hot_scope.py [--sizes 1000,4000,16000,64000] [--samples 20]
                                        [--sealed] [--postgres URL] [--json]

A customer-scoped promise (Ask Once: ``scope: customer_id``, a 365-day window) meets long
histories in any real deployment: a business customer, a household, a shared or anonymous
customer id. For each N, a fresh database (SQLite in a temp file; PostgreSQL with
``--postgres``) is filled the bulk way (no alerts) with N records of ONE customer, a minute
apart: inbound and outbound email messages in turn, every 7th record the customer giving
an item (``info_provided``), every 50th a new case. Then ``--samples`` single records of
that customer are each accepted and evaluated as the worker does (``accept``, then
``evaluate_pending`` until the queue is empty), in three modes:

- ``in order``: a second after everything stored;
- ``late 1h``: an hour before the latest stored record (its scope must be re-decided);
- ``late 30d``: a month before it.

``--sealed``: the customer is also promised a callback every 10th record, called back
5 minutes later (``callback-2h``, a customer-scoped deadline), and before the single
records come, retention removes the older half of the history: the customer's callback
outcomes are sealed, and its scope is judged from after the seal (docs/semantics.md).

Issue #15's goal: p50 at the largest N within 2x of p50 at the smallest, for each mode.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent)]
from common import (  # noqa: E402
    ROOT,
    fresh_postgres,
    load_average,
    machine,
    percentile,
    report,
    terminate_on_sigterm,
)

CUSTOMER = "C-HOT"
START = datetime(2024, 1, 1, tzinfo=UTC)
ITEMS = ["policy_number", "address", "iban", "date_of_birth"]
MODES = {"in order": None, "late 1h": timedelta(hours=1), "late 30d": timedelta(days=30)}


def _record(n: int, at: datetime, prefix: str = "H", callbacks: bool = False) -> dict[str, Any]:
    """The n-th record of the hot customer's history (with ``callbacks``: every 10th
    record promises one, and the 5th after it is the call)."""
    record: dict[str, Any] = {
        "id": f"{prefix}-{n:07d}",
        "occurred_at": at.isoformat(),
        "customer_id": CUSTOMER,
        "case_id": f"K-HOT-{n // 50:05d}",
        "channel": "email",
        "direction": "inbound" if n % 2 == 0 else "outbound",
        "type": "message",
        "team": "contact-centre",
    }
    if n % 7 == 6:
        record.update(
            type="info_provided", channel="web", direction="inbound", team="customer-care"
        )
        record["attributes"] = {"item": ITEMS[(n // 7) % len(ITEMS)]}
    elif callbacks and n % 10 == 3:
        record.update(type="callback_promised", channel="phone", direction="outbound")
    elif callbacks and n % 10 == 8:
        record.update(type="call", channel="phone", direction="outbound")
    return record


def measure(size: int, url: str, samples: int, sealed: bool) -> list[dict[str, Any]]:
    from engine.privacy.retention import apply_retention
    from engine.records import parse_record
    from engine.service import PromiseService
    from engine.storage.database import make_engine, migrate, session_factory
    from rules.loader import load_catalog

    catalog = load_catalog(ROOT / "promises")
    engine = make_engine(url)
    migrate(engine)
    sessions = session_factory(engine)
    history = [_record(n, START + timedelta(minutes=n), callbacks=sealed) for n in range(size)]
    started = time.perf_counter()
    PromiseService(catalog, sessions, alerts=False).backfill(
        sorted((parse_record(r) for r in history), key=lambda r: r.order)
    )
    if sealed:  # the older half of the history expires
        middle = START + timedelta(minutes=size // 2)
        report = apply_retention(sessions, catalog, 1, now=middle + timedelta(days=1))
        print(f"  {report.summary()}", file=sys.stderr)
    filled = time.perf_counter() - started

    service = PromiseService(catalog, sessions)  # as the worker: alerts queued
    latest = START + timedelta(minutes=size - 1)
    rows = []
    for m, (mode, late) in enumerate(MODES.items()):
        timings = []
        for i in range(samples + 3):  # the first three warm caches and connections up
            at = latest + timedelta(seconds=i + 1) if late is None else latest - late
            moment = at + timedelta(milliseconds=i)
            record = _record(size + i, moment, prefix=f"N{m}", callbacks=sealed)
            t0 = time.perf_counter()
            answers = service.accept([record])
            while service.evaluate_pending():
                pass
            assert answers[0].status == "accepted", answers
            if i >= 3:
                timings.append((time.perf_counter() - t0) * 1000)
            if late is None:
                latest = max(latest, at)
        rows.append(
            {
                "mode": f"{mode}, sealed" if sealed else mode,
                "stored": size,
                "fill_s": filled,
                "p50_ms": percentile(timings, 50),
                "p99_ms": percentile(timings, 99),
                "max_ms": max(timings),
            }
        )
    engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,4000,16000,64000", help="the scope's records")
    parser.add_argument("--samples", type=int, default=20, help="single records per mode")
    parser.add_argument(
        "--sealed", action="store_true", help="with callbacks, the older half expired"
    )
    parser.add_argument("--postgres", help="on PostgreSQL instead: a server URL")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    terminate_on_sigterm()
    sizes = [int(s) for s in args.sizes.split(",")]
    load_start = load_average()
    info = machine(args.postgres)
    backend = "postgresql" if args.postgres else "sqlite"
    rows = []
    for size in sizes:
        before = load_average()
        with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
            url = (
                stack.enter_context(fresh_postgres(args.postgres))
                if args.postgres
                else f"sqlite:///{tmp}/hot.db"
            )
            found = measure(size, url, args.samples, args.sealed)
        for row in found:
            rows.append({"backend": backend, **row, "load_avg": max(before, load_average())})
        print(f"  {backend} N={size:,} done", file=sys.stderr)

    goals = []
    for mode in MODES:
        mine = [r for r in rows if r["mode"].startswith(mode)]
        if len(mine) > 1:
            growth = mine[-1]["p50_ms"] / mine[0]["p50_ms"]
            goals.append(
                {
                    "goal": f"{mode}: p50 at N={mine[-1]['stored']:,} within 2x of "
                    f"N={mine[0]['stored']:,}",
                    "measured": f"x{growth:.2f}",
                    "met": growth <= 2.0,
                }
            )
    columns = [
        ("backend", "backend", ""),
        ("mode", "new record", ""),
        ("stored", "scope's records", ","),
        ("fill_s", "fill s", ".1f"),
        ("p50_ms", "p50 ms", ".1f"),
        ("p99_ms", "p99 ms", ".1f"),
        ("max_ms", "max ms", ".1f"),
        ("load_avg", "load avg", ".2f"),
    ]
    report(
        "hot_scope",
        as_json=args.json,
        info=info,
        load_start=load_start,
        rows=rows,
        columns=columns,
        goals=goals,
        note=f"{args.samples} single records per mode, each accepted and evaluated as the "
        "worker does, into one customer's scope",
        samples=args.samples,
    )


if __name__ == "__main__":
    main()
