"""Memory benchmark: RSS of evaluation against open and closed opportunities.

    .venv/bin/python bench/memory.py [--sizes 10000,50000,100000] [--json]

Every measurement runs in a fresh process. The opportunities are callback-2h deadlines
(one per customer, all opened within minutes, so none falls due):

- ``evaluator``: the engine's in-memory Evaluator (what ``promise replay`` and the bulk
  ``recompute`` run) fed N callbacks left open, or N callbacks each followed by its call
  (closed: kept). RSS after the records minus RSS before them, per opportunity.
- ``worker``: a database (SQLite, temp file) filled with N open, or N closed,
  opportunities the bulk way (in another process); then a fresh worker process
  (PromiseService, as ``promise worker``) accepts and evaluates 1,000 new records one batch
  of 100 at a time. Its RSS, against N: the database holds the opportunities, the
  worker should not.

Goals: <= 2 KB per open opportunity, and flat (slope ~0) for closed ones.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent)]
from common import (  # noqa: E402
    ROOT,
    load_average,
    machine,
    report,
    rss_bytes,
    run_json,
    terminate_on_sigterm,
)

BASE = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday morning: the callback desk is open
GOAL_OPEN_BYTES = 2048


def _raw(n: int, closed: bool, prefix: str = "M", start: datetime = BASE) -> list[dict]:
    out = []
    for i in range(n):
        at = start + timedelta(milliseconds=2 * i)
        base = {"customer_id": f"C-{prefix}-{i:07d}", "team": "claims"}
        out.append(
            {
                **base,
                "id": f"{prefix}-{i:07d}-a",
                "occurred_at": at.isoformat(),
                "channel": "phone",
                "direction": "outbound",
                "type": "callback_promised",
            }
        )
        if closed:
            out.append(
                {
                    **base,
                    "id": f"{prefix}-{i:07d}-b",
                    "occurred_at": (at + timedelta(milliseconds=1)).isoformat(),
                    "channel": "phone",
                    "direction": "outbound",
                    "type": "call",
                }
            )
    return out


def _parsed(raw: list[dict]) -> list[Any]:
    from engine.records import parse_record

    return sorted((parse_record(r) for r in raw), key=lambda r: r.order)


def phase_evaluator(n: int, closed: bool) -> dict[str, Any]:
    from engine.evaluation.evaluator import Evaluator
    from rules.loader import load_catalog

    catalog = load_catalog(ROOT / "promises")
    records = _parsed(_raw(n, closed))
    evaluator = Evaluator(catalog, on_change=lambda outcome: None)
    evaluator.add_all(_parsed(_raw(200, True, prefix="WARM", start=BASE - timedelta(hours=1))))
    gc.collect()
    before = rss_bytes()
    evaluator.add_all(records)
    gc.collect()
    return {"rss_before": before, "rss_after": rss_bytes()}


def phase_fill(n: int, closed: bool, url: str) -> dict[str, Any]:
    from engine.service import PromiseService
    from engine.storage.database import make_engine, migrate, session_factory
    from rules.loader import load_catalog

    engine = make_engine(url)
    migrate(engine)
    service = PromiseService(load_catalog(ROOT / "promises"), session_factory(engine), alerts=False)
    records = _parsed(_raw(n, closed))
    service.backfill(records)
    return {}


def phase_worker(url: str) -> dict[str, Any]:
    from engine.service import PromiseService
    from engine.storage.database import make_engine, session_factory
    from rules.loader import load_catalog

    service = PromiseService(load_catalog(ROOT / "promises"), session_factory(make_engine(url)))
    after_last = BASE + timedelta(hours=1)  # before any callback falls due (2 business hours)
    new = _raw(1_000, False, prefix="NEW", start=after_last)
    service.accept(new[:100])
    while service.evaluate_pending():
        pass
    gc.collect()
    before = rss_bytes()
    for start in range(100, len(new), 100):
        service.accept(new[start : start + 100])
        while service.evaluate_pending():
            pass
    gc.collect()
    return {"rss_before": before, "rss_after": rss_bytes()}


def _child(*args: str) -> dict[str, Any]:
    return run_json([sys.executable, __file__, "--phase", *args])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,50000,100000")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        import json

        name, *rest = args.phase
        if name == "evaluator":
            result = phase_evaluator(int(rest[0]), rest[1] == "closed")
        elif name == "fill":
            result = phase_fill(int(rest[0]), rest[1] == "closed", rest[2])
        else:
            result = phase_worker(rest[0])
        print(json.dumps(result))
        return

    terminate_on_sigterm()
    sizes = [int(s) for s in args.sizes.split(",")]
    load_start = load_average()
    info = machine()
    rows = []
    for engine in ("evaluator", "worker"):
        for state in ("open", "closed"):
            for n in sizes:
                if engine == "evaluator":
                    result = _child("evaluator", str(n), state)
                else:
                    with tempfile.TemporaryDirectory() as tmp:
                        url = f"sqlite:///{tmp}/memory.db"
                        _child("fill", str(n), state, url)
                        result = _child("worker", url)
                grown = result["rss_after"] - result["rss_before"]
                per = round(grown / n) if engine == "evaluator" else None
                rows.append(
                    {
                        "engine": engine,
                        "state": state,
                        "opportunities": n,
                        "rss_mb": result["rss_after"] / 2**20,
                        "grown_mb": grown / 2**20,
                        "bytes_per_opportunity": per,
                    }
                )
                print(f"  {engine} {state} {n:,} done", file=sys.stderr)

    def slope(engine: str, state: str) -> float:
        mine = [r for r in rows if r["engine"] == engine and r["state"] == state]
        first, last = mine[0], mine[-1]
        spread = last["opportunities"] - first["opportunities"]
        return (last["rss_mb"] - first["rss_mb"]) * 2**20 / spread if spread else 0.0

    slopes = {
        f"{e}/{s}": round(slope(e, s)) for e in ("evaluator", "worker") for s in ("open", "closed")
    }
    for row in rows:
        row["slope_bytes"] = slopes[f"{row['engine']}/{row['state']}"]
    ev_open = slopes["evaluator/open"]
    goals = [
        {
            "goal": f"<= {GOAL_OPEN_BYTES} bytes per open opportunity (evaluator, slope)",
            "measured": f"{ev_open:,} bytes",
            "met": ev_open <= GOAL_OPEN_BYTES,
        },
        {
            "goal": "RSS flat in closed cases (evaluator slope < 100 bytes per opportunity)",
            "measured": f"{slopes['evaluator/closed']:,} bytes per closed opportunity",
            "met": abs(slopes["evaluator/closed"]) < 100,
        },
        {
            "goal": "worker RSS flat against opportunities in the database (open and closed)",
            "measured": f"open {slopes['worker/open']:,}, closed {slopes['worker/closed']:,} "
            "bytes per opportunity",
            "met": max(abs(slopes["worker/open"]), abs(slopes["worker/closed"])) < 100,
        },
    ]
    columns = [
        ("engine", "engine", ""),
        ("state", "state", ""),
        ("opportunities", "opportunities", ","),
        ("rss_mb", "RSS MB", ".1f"),
        ("grown_mb", "grown MB", ".1f"),
        ("bytes_per_opportunity", "bytes/opp", ","),
        ("slope_bytes", "slope bytes/opp", ","),
    ]
    report(
        "memory",
        as_json=args.json,
        info=info,
        load_start=load_start,
        rows=rows,
        columns=columns,
        goals=goals,
        note="evaluator: grown = RSS after N records - RSS before them; worker: RSS after "
        "evaluating 1,000 new records with N opportunities stored",
        slopes_bytes_per_opportunity=slopes,
    )


if __name__ == "__main__":
    main()
