"""Killing the evaluation worker mid-stream loses no record and doubles no outcome."""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import datetime
from typing import Any

import pytest

import reference
from conftest import Server
from rules.models import Catalog


def _worker_pid(server: Server) -> int | None:
    found = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(server.process.pid)], capture_output=True, text=True
    ).stdout.split()
    return int(found[0]) if found else None


def _stream(count: int) -> list[dict[str, Any]]:
    """Deterministic traffic touching every sample promise, in shuffled arrival order."""
    import random
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from synthetic import history

    records = history(count, seed=11)
    random.Random(3).shuffle(records)
    return records


@pytest.mark.slow
def test_killing_the_worker_mid_stream_loses_and_doubles_nothing(
    server: Server, catalog: Catalog
) -> None:
    records = _stream(1_200)
    client = server.client()
    killed: list[int | None] = []
    for start in range(0, len(records), 100):
        answer = client.post("/interactions", json=records[start : start + 100]).json()
        assert answer["accepted"] == len(records[start : start + 100])
        if start % 300 == 0:
            server.wait_for(lambda: _worker_pid(server) not in (None, *killed))
            pid = _worker_pid(server)
            os.kill(pid, signal.SIGKILL)  # the supervisor starts a new one
            killed.append(pid)
    assert len(killed) >= 3
    server.wait_for(lambda: client.get("/readyz").json()["evaluation_lag"] == 0, timeout=180)

    stored, cursor = [], None
    while True:
        page = client.get(
            "/outcomes", params={"limit": 1000, **({"cursor": cursor} if cursor else {})}
        ).json()
        stored += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    keys = [(o["promise"], o["scope"], o["opened_at"], tuple(o["evidence"])) for o in stored]
    assert len(keys) == len(set(keys)), "an outcome was stored twice"

    as_records = [{**r, "occurred_at": datetime.fromisoformat(r["occurred_at"])} for r in records]
    expected = reference.evaluate(catalog, as_records)
    got = sorted(
        ({k: o[k] for k in ("promise", "scope", "state", "evidence")} for o in stored),
        key=lambda o: (o["promise"], o["scope"], o["evidence"]),
    )
    want = sorted(
        ({k: o[k] for k in ("promise", "scope", "state", "evidence")} for o in expected),
        key=lambda o: (o["promise"], o["scope"], o["evidence"]),
    )
    assert got == want
