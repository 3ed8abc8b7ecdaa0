"""Replay benchmark: records/s and peak memory, against the raw durable-rules ceiling.

    .venv/bin/python bench/replay.py --records 1000000 [--postgres URL] [--json]

Each phase runs in a process of its own (so its peak RSS is its own) over the same
deterministic synthetic history (bench/synthetic.py) and the shipped catalog:

- ``raw``: every record asserted (and retracted when held) into every compiled ruleset,
  actions doing nothing: the ceiling that durable-rules itself allows.
- ``memory``: ``promise replay`` in memory (validation, evaluation, outcomes).
- ``reference``: tests/reference.py, the plain-Python oracle of the property tests. It is
  quadratic (a never-promise looks back over every earlier record), so it runs on the
  first ``--reference-records`` records only, beside the engine in memory on the same
  records for a like-for-like ratio.
- ``sqlite`` / ``postgres``: ``promise replay --db`` as the CLI does it: store the records,
  evaluate, store outcomes, revisions and alert rows (the outbox), read the outcomes back.
  PostgreSQL gets a fresh database, dropped at the end (also on Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent)]
from common import (  # noqa: E402
    ROOT,
    fresh_postgres,
    load_average,
    machine,
    report,
    run_json,
    terminate_on_sigterm,
)

GOAL_SQLITE = 10_000
GOAL_RATIO = 0.5


def _records(count: int) -> list[Any]:
    from synthetic import history

    from engine.records import parse_record

    return sorted((parse_record(r) for r in history(count)), key=lambda r: r.order)


def phase_raw(count: int) -> float:
    from engine.evaluation.rules_core import RulesCore
    from engine.evaluation.runner import record_fact
    from rules.compiler import compile_promise, typed_fields
    from rules.loader import load_catalog

    catalog = load_catalog(ROOT / "promises")
    core = RulesCore()
    compiled = [(compile_promise(p), p.scope, typed_fields(p)) for p in catalog.promises.values()]
    for c, _, _ in compiled:
        core.register(c)
    records = _records(count)
    started = time.perf_counter()
    for seq, record in enumerate(records):
        fields = record.fields()
        for c, scope_field, typed in compiled:
            scope = fields.get(scope_field)
            if scope is None:
                continue
            fact = record_fact(record, fields, seq, str(scope), typed)
            if core.assert_fact(c.name, fact) is not None:
                core.retract_fact(c.name, fact)
    return time.perf_counter() - started


def phase_memory(count: int) -> float:
    from engine.sandbox.in_memory import replay
    from rules.loader import load_catalog

    catalog = load_catalog(ROOT / "promises")
    records = _records(count)
    started = time.perf_counter()
    replay(catalog, records)
    return time.perf_counter() - started


def phase_reference(count: int) -> float:
    from datetime import datetime

    from synthetic import history

    from rules.loader import load_catalog

    sys.path.insert(0, str(ROOT / "tests"))
    import reference  # tests/reference.py

    catalog = load_catalog(ROOT / "promises")
    records = [
        {**r, "occurred_at": datetime.fromisoformat(r["occurred_at"])} for r in history(count)
    ]
    started = time.perf_counter()
    reference.evaluate(catalog, records)
    return time.perf_counter() - started


def phase_database(count: int, url: str) -> float:
    from engine.service import PromiseService
    from engine.storage.database import make_engine, migrate, session_factory
    from rules.loader import load_catalog

    catalog = load_catalog(ROOT / "promises")
    records = _records(count)
    engine = make_engine(url)
    migrate(engine)
    started = time.perf_counter()
    service = PromiseService(catalog, session_factory(engine))  # alerts on, as the CLI
    service.backfill(records)  # as promise replay --db does
    service.outcomes()  # the CLI reads them back for its summary
    return time.perf_counter() - started


def _run_phase(name: str, count: int, url: str | None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--records", str(count), "--phase", name]
    if url:
        command += ["--url", url]
    return run_json(command)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument(
        "--reference-records",
        type=int,
        default=10_000,
        help="records for the quadratic reference evaluator (0: skip it)",
    )
    parser.add_argument("--postgres", help="a PostgreSQL server URL; a database is created")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:  # one phase, in its own process
        runners = {
            "raw": lambda: phase_raw(args.records),
            "memory": lambda: phase_memory(args.records),
            "reference": lambda: phase_reference(args.records),
            "database": lambda: phase_database(args.records, args.url),
        }
        seconds = runners[args.phase]()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"seconds": seconds, "peak_rss_mb": round(peak, 1)}))
        return

    terminate_on_sigterm()
    load_start = load_average()
    info = machine(args.postgres)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        ref_n = min(args.reference_records, args.records)
        plan: list[tuple[str, str, int, str | None]] = [
            ("raw durable-rules (ceiling)", "raw", args.records, None),
            ("engine, in memory", "memory", args.records, None),
            ("engine + SQLite", "database", args.records, f"sqlite:///{tmp}/bench.db"),
        ]
        if args.postgres:
            url = stack.enter_context(fresh_postgres(args.postgres))
            plan.append(("engine + PostgreSQL", "database", args.records, url))
        if ref_n:
            plan += [
                ("reference evaluator", "reference", ref_n, None),
                ("engine, in memory, same records", "memory", ref_n, None),
            ]
        for label, phase, count, url in plan:
            before = load_average()
            result = _run_phase(phase, count, url)
            rows.append(
                {
                    "phase": label,
                    "records": count,
                    **result,
                    "records_per_s": round(count / result["seconds"]),
                    "load_avg": max(before, load_average()),
                }
            )
    ceiling = rows[0]["records_per_s"]
    for row in rows:
        row["ratio_to_ceiling"] = round(row["records_per_s"] / ceiling, 3)
    by = {r["phase"]: r for r in rows}
    if ref_n:
        ref, same = by["reference evaluator"], by["engine, in memory, same records"]
        ref["engine_speedup"] = round(same["records_per_s"] / ref["records_per_s"], 1)
    sqlite = by["engine + SQLite"]
    goals = [
        {
            "goal": f"replay with SQLite >= {GOAL_SQLITE:,} records/s",
            "measured": f"{sqlite['records_per_s']:,} records/s",
            "met": sqlite["records_per_s"] >= GOAL_SQLITE,
        },
        {
            "goal": f"replay with SQLite >= {GOAL_RATIO} x the raw durable-rules ceiling",
            "measured": f"{sqlite['ratio_to_ceiling']:.2f} x",
            "met": sqlite["ratio_to_ceiling"] >= GOAL_RATIO,
        },
    ]
    columns = [
        ("phase", "phase", ""),
        ("records", "records", ","),
        ("seconds", "seconds", ".1f"),
        ("records_per_s", "records/s", ","),
        ("ratio_to_ceiling", "x ceiling", ".3f"),
        ("engine_speedup", "engine x faster", ".1f"),
        ("peak_rss_mb", "peak RSS MB", ".1f"),
        ("load_avg", "load avg", ".2f"),
    ]
    report(
        "replay",
        as_json=args.json,
        info=info,
        load_start=load_start,
        rows=rows,
        columns=columns,
        goals=goals,
    )


if __name__ == "__main__":
    main()
