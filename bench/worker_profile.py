"""Where one worker's time goes: cProfile of draining a queue of synthetic records.

    .venv/bin/python bench/worker_profile.py --postgres URL [--records 10000] [--top 45]

A fresh PostgreSQL database (or, without ``--postgres``, a temp SQLite file) gets
``--records`` synthetic records queued as the API does; then ``evaluate_pending`` runs in
this process, under cProfile, until the queue is empty. Prints CPU and wall seconds and
the top functions by cumulative time. cProfile inflates call-heavy code (the rules core):
compare process CPU time for A/B changes, and read this for where to look.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent)]
from common import ROOT, fresh_postgres  # noqa: E402
from synthetic import history  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", help="a PostgreSQL server URL; a database is created")
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--top", type=int, default=45)
    args = parser.parse_args()

    from engine.service import PromiseService
    from engine.storage.database import make_engine, migrate, session_factory
    from rules.loader import load_catalog

    records = history(args.records, seed=21)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        url = (
            stack.enter_context(fresh_postgres(args.postgres))
            if args.postgres
            else f"sqlite:///{tmp}/worker.db"
        )
        engine = make_engine(url)
        migrate(engine)
        service = PromiseService(load_catalog(ROOT / "promises"), session_factory(engine))
        for start in range(0, len(records), 1_000):
            service.accept(records[start : start + 1_000])
        cpu, wall = time.process_time(), time.perf_counter()
        profile = cProfile.Profile()
        profile.enable()
        while service.evaluate_pending(2_000):
            pass
        profile.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        engine.dispose()
    print(f"{len(records):,} records: {cpu:.1f} s CPU, {wall:.1f} s wall (under cProfile)")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
