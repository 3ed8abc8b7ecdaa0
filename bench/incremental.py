"""Incremental benchmark: the cost of evaluating one new record with N records stored.

    .venv/bin/python bench/incremental.py [--sizes 10000,100000,1000000] [--samples 200]
                                          [--postgres URL] [--json]

For each N: a fresh database (SQLite in a temp file; PostgreSQL, with ``--postgres``, a
fresh database dropped at the end, also on Ctrl-C) is filled with the first N records of
the synthetic history (bench/synthetic.py) the bulk way (load + recompute, no alerts).
Then, as the worker does it, ``--samples`` single records are each accepted
(``PromiseService.accept``) and evaluated (``evaluate_pending`` until the queue is empty),
one at a time, each a second of event time after the one before: half open fresh scopes
(a new customer and case), half touch existing ones (a customer and case of the history:
replies, calls, handoffs, information asked again). p50/p99 of accept, evaluate and both,
against appending the next ``APPENDED`` records of the history as ``promise import`` does
(``backfill`` into a database that holds history), and one ``recompute()`` of everything.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
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

APPENDED = 1_000
"""Records of a daily import appended after the N stored."""
FRESH = [
    ("callback_promised", "phone", "outbound", {}),
    ("message", "email", "inbound", {}),
    ("info_provided", "web", "inbound", {"item": "address"}),
    ("survey_response", "web", "inbound", {"nps": 3}),
    ("problem_reported", "app", "inbound", {}),
]
EXISTING = [
    ("message", "email", "outbound", {}),
    ("call", "phone", "outbound", {}),
    ("info_requested", "email", "outbound", {"item": "policy_number"}),
    ("handoff", "other", "internal", {}),
    ("message", "email", "inbound", {}),
]


def _new_records(history: list[dict[str, Any]], samples: int, seed: int = 11) -> list[dict]:
    rnd = random.Random(seed)
    last = datetime.fromisoformat(history[-1]["occurred_at"])
    out = []
    for i in range(samples):
        at = last + timedelta(seconds=i + 1)
        if i % 2 == 0:
            kind, channel, direction, attributes = FRESH[(i // 2) % len(FRESH)]
            customer, case = f"C-NEW-{i:06d}", f"K-NEW-{i:06d}"
        else:
            kind, channel, direction, attributes = EXISTING[(i // 2) % len(EXISTING)]
            known = history[rnd.randrange(len(history))]
            customer, case = known["customer_id"], known["case_id"]
        out.append(
            {
                "id": f"INC-{i:06d}",
                "occurred_at": at.isoformat(),
                "customer_id": customer,
                "case_id": case,
                "channel": channel,
                "direction": direction,
                "type": kind,
                "team": "claims",
                "attributes": attributes,
                "_scope": "fresh" if i % 2 == 0 else "existing",
            }
        )
    return out


def measure(size: int, url: str, samples: int, recompute: bool) -> dict[str, Any]:
    from synthetic import history as synthetic_history

    from engine.records import parse_record
    from engine.service import PromiseService
    from engine.storage.database import make_engine, migrate, session_factory
    from rules.loader import load_catalog

    catalog = load_catalog(ROOT / "promises")
    raw = synthetic_history(size + APPENDED)
    records = sorted((parse_record(r) for r in raw), key=lambda r: r.order)
    records, appended = records[:size], records[size:]
    raw = raw[:size]
    engine = make_engine(url)
    migrate(engine)
    sessions = session_factory(engine)
    started = time.perf_counter()
    bulk = PromiseService(catalog, sessions, alerts=False)
    bulk.backfill(records)
    filled = time.perf_counter() - started
    del records, bulk

    service = PromiseService(catalog, sessions)  # as the worker: alerts queued
    news = _new_records(raw, samples + 10)
    del raw
    timings: list[dict[str, Any]] = []
    for n, record in enumerate(news):
        scope = record.pop("_scope")
        t0 = time.perf_counter()
        answers = service.accept([record])
        t1 = time.perf_counter()
        while service.evaluate_pending():
            pass
        t2 = time.perf_counter()
        assert answers[0].status == "accepted", answers
        if n >= 10:  # the first ten warm the caches and connections up
            timings.append({"scope": scope, "accept": t1 - t0, "evaluate": t2 - t1})
    t0 = time.perf_counter()
    PromiseService(catalog, sessions, alerts=False).backfill(appended)  # a day's import
    result: dict[str, Any] = {"fill_s": round(filled, 1), "append_s": time.perf_counter() - t0}
    for part in ("accept", "evaluate"):
        values = [t[part] * 1000 for t in timings]
        result[f"{part}_p50_ms"] = percentile(values, 50)
        result[f"{part}_p99_ms"] = percentile(values, 99)
    total = [(t["accept"] + t["evaluate"]) * 1000 for t in timings]
    result["total_p50_ms"] = percentile(total, 50)
    result["total_p99_ms"] = percentile(total, 99)
    for scope in ("fresh", "existing"):
        values = [(t["accept"] + t["evaluate"]) * 1000 for t in timings if t["scope"] == scope]
        result[f"{scope}_p50_ms"] = percentile(values, 50)
    if recompute:
        t0 = time.perf_counter()
        service.recompute()
        result["recompute_s"] = time.perf_counter() - t0
    engine.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000", help="stored records, N")
    parser.add_argument("--samples", type=int, default=200, help="single-record evaluations")
    parser.add_argument("--postgres", help="also on PostgreSQL: a server URL")
    parser.add_argument("--no-recompute", action="store_true", help="skip the full recompute")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    terminate_on_sigterm()
    sizes = [int(s) for s in args.sizes.split(",")]
    load_start = load_average()
    info = machine(args.postgres)
    rows = []
    backends = ["sqlite"] + (["postgresql"] if args.postgres else [])
    for backend in backends:
        for size in sizes:
            before = load_average()
            with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
                url = (
                    f"sqlite:///{tmp}/incremental.db"
                    if backend == "sqlite"
                    else stack.enter_context(fresh_postgres(args.postgres))
                )
                result = measure(size, url, args.samples, not args.no_recompute)
            row = {"backend": backend, "stored": size, **result}
            row["load_avg"] = max(before, load_average())
            if "recompute_s" in row:
                row["recompute_x_p50"] = round(row["recompute_s"] * 1000 / row["total_p50_ms"])
            rows.append(row)
            print(f"  {backend} N={size:,} done", file=sys.stderr)

    goals = []
    for backend in backends:
        mine = [r for r in rows if r["backend"] == backend]
        if len(mine) > 1:
            growth = mine[-1]["total_p50_ms"] / mine[0]["total_p50_ms"]
            growth99 = mine[-1]["total_p99_ms"] / mine[0]["total_p99_ms"]
            goals.append(
                {
                    "goal": f"{backend}: one record's cost does not grow with history "
                    f"(p50 at N={mine[-1]['stored']:,} within 2x of N={mine[0]['stored']:,})",
                    "measured": f"p50 x{growth:.2f}, p99 x{growth99:.2f}",
                    "met": growth <= 2.0,
                }
            )
    columns = [
        ("backend", "backend", ""),
        ("stored", "stored N", ","),
        ("accept_p50_ms", "accept p50", ".1f"),
        ("accept_p99_ms", "p99", ".1f"),
        ("evaluate_p50_ms", "evaluate p50", ".1f"),
        ("evaluate_p99_ms", "p99", ".1f"),
        ("total_p50_ms", "total p50 ms", ".1f"),
        ("total_p99_ms", "p99 ms", ".1f"),
        ("fresh_p50_ms", "fresh p50", ".1f"),
        ("existing_p50_ms", "existing p50", ".1f"),
        ("append_s", f"append {APPENDED:,} s", ".2f"),
        ("recompute_s", "recompute s", ".1f"),
        ("recompute_x_p50", "recompute/p50", ","),
        ("load_avg", "load avg", ".2f"),
    ]
    report(
        "incremental",
        as_json=args.json,
        info=info,
        load_start=load_start,
        rows=rows,
        columns=columns,
        goals=goals,
        note=f"{args.samples} single-record evaluations per N (accept + evaluate_pending)",
        samples=args.samples,
    )


if __name__ == "__main__":
    main()
