"""Replay benchmark: records/s and peak memory, against the raw durable-rules ceiling.

    .venv/bin/python bench/replay.py --records 1000000 [--postgres URL] [--json]

Each phase runs in a process of its own (so its peak RSS is its own) over the same
deterministic synthetic history (bench/synthetic.py) and the shipped catalog:

- ``raw``: every record asserted (and retracted when held) into every compiled ruleset,
  actions doing nothing: the ceiling that durable-rules itself allows.
- ``memory``: ``promise replay`` in memory (validation, evaluation, outcomes).
- ``sqlite`` / ``postgres``: ``promise replay --db``: store the records, evaluate, store
  outcomes and revisions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]


def _records(count: int) -> list[Any]:
    from synthetic import history

    from engine.records import parse_record

    return sorted((parse_record(r) for r in history(count)), key=lambda r: r.order)


def phase_raw(count: int) -> float:
    from engine.rules_core import RulesCore
    from engine.runner import record_fact
    from rules.compiler import compile_promise
    from rules.loader import load_catalog

    catalog = load_catalog(ROOT / "promises")
    core = RulesCore()
    compiled = [(compile_promise(p), p.scope) for p in catalog.promises.values()]
    for c, _ in compiled:
        core.register(c)
    records = _records(count)
    started = time.perf_counter()
    for seq, record in enumerate(records):
        fields = record.fields()
        for c, scope_field in compiled:
            scope = fields.get(scope_field)
            if scope is None:
                continue
            fact = record_fact(fields, record.at, seq, str(scope))
            if core.assert_fact(c.name, fact) is not None:
                core.retract_fact(c.name, fact)
    return time.perf_counter() - started


def phase_memory(count: int) -> float:
    from engine.replay import replay
    from rules.loader import load_catalog

    catalog = load_catalog(ROOT / "promises")
    records = _records(count)
    started = time.perf_counter()
    replay(catalog, records)
    return time.perf_counter() - started


def phase_database(count: int, url: str) -> float:
    from engine.database import make_engine, migrate, session_factory
    from engine.service import PromiseService
    from rules.loader import load_catalog

    catalog = load_catalog(ROOT / "promises")
    records = _records(count)
    engine = make_engine(url)
    migrate(engine)
    started = time.perf_counter()
    service = PromiseService(catalog, session_factory(engine))
    for start in range(0, len(records), 5_000):
        service.load(records[start : start + 5_000])
    service.recompute(stored=records)  # an empty database, as promise replay --db does
    return time.perf_counter() - started


def _run_phase(name: str, count: int, url: str | None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--records", str(count), "--phase", name]
    if url:
        command += ["--url", url]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def _fresh_postgres(server: str) -> str:
    from sqlalchemy import text

    from engine.database import make_engine

    name = f"promise_bench_{os.getpid()}"
    admin = make_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    return server.rpartition("/")[0] + "/" + name


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--postgres", help="a PostgreSQL server URL; a database is created")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:  # one phase, in its own process
        runners = {
            "raw": lambda: phase_raw(args.records),
            "memory": lambda: phase_memory(args.records),
            "database": lambda: phase_database(args.records, args.url),
        }
        seconds = runners[args.phase]()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"seconds": seconds, "peak_rss_mb": round(peak, 1)}))
        return

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        plan: list[tuple[str, str, str | None]] = [
            ("raw durable-rules (ceiling)", "raw", None),
            ("engine, in memory", "memory", None),
            ("engine + SQLite", "database", f"sqlite:///{tmp}/bench.db"),
        ]
        if args.postgres:
            plan.append(("engine + PostgreSQL", "database", _fresh_postgres(args.postgres)))
        for label, phase, url in plan:
            result = _run_phase(phase, args.records, url)
            rows.append(
                {
                    "phase": label,
                    "records": args.records,
                    **result,
                    "records_per_s": round(args.records / result["seconds"]),
                }
            )
    ceiling = rows[0]["records_per_s"]
    for row in rows:
        row["ratio_to_ceiling"] = round(row["records_per_s"] / ceiling, 2)
    machine = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
    if args.json:
        print(json.dumps({"machine": machine, "phases": rows}))
        return
    print(
        f"records: {args.records:,}  machine: {machine['platform']}, "
        f"{machine['cpus']} cpus, Python {machine['python']}"
    )
    print(f"{'phase':30} {'seconds':>9} {'records/s':>10} {'x ceiling':>10} {'peak RSS MB':>12}")
    for row in rows:
        print(
            f"{row['phase']:30} {row['seconds']:9.1f} {row['records_per_s']:10,} "
            f"{row['ratio_to_ceiling']:10.2f} {row['peak_rss_mb']:12.1f}"
        )


if __name__ == "__main__":
    main()
