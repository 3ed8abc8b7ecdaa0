"""A crash inside the rules core (a segfault kills the process) neither loses an accepted
record nor leaves half-evaluated outcomes: the queue is emptied only with the outcomes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from engine.service import PromiseService
from engine.storage.database import make_engine, migrate, session_factory
from rules.loader import load_catalog

ROOT = Path(__file__).resolve().parents[1]

BATCH_A = [
    {
        "id": "e1",
        "occurred_at": "2024-03-01T16:00:00Z",
        "customer_id": "C-1",
        "case_id": "K-1",
        "channel": "email",
        "direction": "inbound",
        "type": "message",
    },
]
BATCH_B = [
    {
        "id": "r1",
        "occurred_at": "2024-03-04T15:00:00Z",
        "customer_id": "C-1",
        "case_id": "K-1",
        "channel": "email",
        "direction": "outbound",
        "type": "message",
    },
    {
        "id": "e2",
        "occurred_at": "2024-03-04T15:00:00Z",
        "customer_id": "C-2",
        "case_id": "K-2",
        "channel": "email",
        "direction": "inbound",
        "type": "message",
    },
]

# Ingest batch B, but die by SIGSEGV in the middle of evaluating it, as durable-rules would.
CRASHING_INGEST = textwrap.dedent("""
    import json, os, signal, sys
    from pathlib import Path
    from engine.evaluation import rules_core
    from engine.storage.database import make_engine, session_factory
    from engine.service import PromiseService
    from rules.loader import load_catalog

    calls = 0
    real_call = rules_core.RulesCore._call

    def crash_on_fifth(self, *args):
        global calls
        calls += 1
        if calls == 5:
            os.kill(os.getpid(), signal.SIGSEGV)
        return real_call(self, *args)

    catalog = load_catalog(Path(sys.argv[1]))
    service = PromiseService(catalog, session_factory(make_engine(sys.argv[2])))
    rules_core.RulesCore._call = crash_on_fifth
    service.ingest(json.loads(sys.argv[3]))
""")


def test_a_segfault_during_evaluation_loses_nothing_and_the_next_worker_finishes(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'promise.db'}"
    engine = make_engine(url)
    migrate(engine)
    catalog = load_catalog(ROOT / "promises")
    service = PromiseService(catalog, session_factory(engine))
    service.ingest(BATCH_A)
    before = service.outcomes()

    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_INGEST, str(ROOT / "promises"), url, json.dumps(BATCH_B)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert crashed.returncode == -11, crashed.stderr  # killed by SIGSEGV

    # The batch was accepted (stored) before evaluation began; no outcome was half-written.
    assert service.record_count() == len(BATCH_A) + len(BATCH_B)
    assert service.outcomes() == before
    assert [r.status for r in service.ingest(BATCH_B)] == ["duplicate", "duplicate"]
    # A new worker takes the queued records where the dead one stopped.
    assert service.evaluate_pending() == 0  # ingest above already drained the queue
    assert {o.key: o.state for o in service.outcomes() if o.promise == "email-reply-1bd"} == {
        "K-1#1": "kept",
        "K-2#1": "pending",
    }
