"""Worker scaling: how fast 1, 2, ... workers drain one PostgreSQL queue, in the same run.

    .venv/bin/python bench/workers.py --postgres URL [--records 20000] [--workers 1,2]
                                      [--batch 2000] [--json]

For each worker count W, a fresh PostgreSQL database gets the same ``--records`` synthetic
records (bench/synthetic.py: many customers and cases, the shipped promises), accepted and
queued as the API does, with no worker running. Then W ``promise worker --no-live --once
--share K/W`` processes start together and the time until the last one exits (every queue
row evaluated, what fell due by the last record decided) is measured: evaluated/s. Every
run's outcomes are compared with the first's (W = 1): sharing must not change a verdict.

Only evaluation is measured here (the API's share of the CPU is bench/api_load.py's); the
PostgreSQL server runs on the same machine, so W workers and the server share its cores.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
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
    terminate_on_sigterm,
)
from synthetic import history  # noqa: E402


def _fill(url: str, records: list[dict[str, Any]]) -> None:
    from engine.service import PromiseService
    from engine.storage.database import make_engine, session_factory
    from rules.loader import load_catalog

    engine = make_engine(url)
    service = PromiseService(load_catalog(ROOT / "promises"), session_factory(engine))
    for start in range(0, len(records), 1_000):
        service.accept(records[start : start + 1_000])
    engine.dispose()


def _outcomes(url: str) -> list[tuple[str, ...]]:
    from engine.service import PromiseService
    from engine.storage.database import make_engine, session_factory
    from rules.loader import load_catalog

    engine = make_engine(url)
    service = PromiseService(load_catalog(ROOT / "promises"), session_factory(engine))
    found = sorted(
        (o.promise, o.scope, o.key, o.state, ",".join(o.evidence)) for o in service.outcomes()
    )
    engine.dispose()
    return found


def _drain(url: str, workers: int, batch: int, workdir: Path) -> tuple[float, list[int]]:
    """Seconds until W workers emptied the queue, and each one's evaluated records."""
    env = {**os.environ, "PROMISE_DATABASE_URL": url, "PROMISE_DIR": str(ROOT / "promises")}
    command = [
        str(Path(sys.executable).parent / "promise"),
        "worker",
        "--no-live",
        "--once",
        "--interval",
        "0.05",
        "--batch",
        str(batch),
    ]
    started = time.monotonic()
    processes = [
        subprocess.Popen(
            [*command, "--share", f"{k}/{workers}"],
            env=env,
            cwd=workdir,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(1, workers + 1)
    ]
    shares = []
    for process in processes:
        _, err = process.communicate()
        if process.returncode:
            raise SystemExit(f"a worker failed:\n{err[-3000:]}")
        shares.append(int(err.split("evaluated ")[-1].split()[0]))
    return time.monotonic() - started, shares


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", required=True, help="a PostgreSQL server URL")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--workers", default="1,2", help="worker counts, e.g. 1,2,3")
    parser.add_argument("--batch", type=int, default=2_000, help="records per round")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    terminate_on_sigterm()
    counts = [int(w) for w in args.workers.split(",")]
    records = history(args.records, seed=21)
    load_start = load_average()
    info = machine(args.postgres)
    rows: list[dict[str, Any]] = []
    first: list[tuple[str, ...]] | None = None
    for workers in counts:
        with contextlib.ExitStack() as stack:
            url = stack.enter_context(fresh_postgres(args.postgres))
            _fill(url, records)
            before = load_average()
            seconds, shares = _drain(url, workers, args.batch, Path(ROOT))
            found = _outcomes(url)
        first = found if first is None else first
        rows.append(
            {
                "workers": workers,
                "records": len(records),
                "seconds": seconds,
                "evaluated_per_s": round(len(records) / seconds),
                "speedup": 0.0,
                "per_worker": "/".join(f"{s:,}" for s in shares),
                "same_outcomes": "yes" if found == first else "NO",
                "load_avg": max(before, load_average()),
            }
        )
        print(f"  {workers} worker(s) done", file=sys.stderr)
    for row in rows:
        row["speedup"] = row["evaluated_per_s"] / rows[0]["evaluated_per_s"]
    columns = [
        ("workers", "workers", ""),
        ("records", "records", ","),
        ("seconds", "drain s", ".1f"),
        ("evaluated_per_s", "evaluated/s", ","),
        ("speedup", "x one", ".2f"),
        ("per_worker", "records taken per worker", ""),
        ("same_outcomes", "same outcomes", ""),
        ("load_avg", "load avg", ".2f"),
    ]
    goals = [
        {
            "goal": f"{row['workers']} workers give exactly the outcomes of one",
            "measured": row["same_outcomes"],
            "met": row["same_outcomes"] == "yes",
        }
        for row in rows[1:]
    ]
    report(
        "workers",
        as_json=args.json,
        info=info,
        load_start=load_start,
        rows=rows,
        columns=columns,
        goals=goals,
        note=f"{len(records):,} synthetic records queued, then W `promise worker --once "
        f"--share K/W` (batch {args.batch:,}); a record is taken by each worker whose shards "
        "its scopes fall in",
    )


if __name__ == "__main__":
    main()
