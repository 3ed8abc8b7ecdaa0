"""Several workers share one PostgreSQL database: each takes its share of the scopes, no two
judge a scope at once, and the outcomes equal a single-process evaluation."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

import reference
from engine.service import PromiseService
from engine.shards import SHARDS, Share
from engine.storage.database import session_factory
from rules.models import Catalog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from synthetic import history  # noqa: E402

_JUDGED = re.compile(r"judged \d+ scopes of shards \[([\d, ]+)\] from ([\d.]+) to ([\d.]+)")


@pytest.mark.slow
def test_three_workers_agree_with_a_single_process(
    db_engine: Engine, catalog: Catalog, tmp_path: Path
) -> None:
    if db_engine.dialect.name != "postgresql":
        pytest.skip("several workers share a PostgreSQL database (SKIP LOCKED, advisory locks)")
    rnd = random.Random(8)
    # Few customers and cases, so that concurrent batches keep hitting the same scopes.
    records = [
        {**r, "customer_id": f"C-{rnd.randrange(5)}", "case_id": f"K-{rnd.randrange(12)}"}
        for r in history(1_500, seed=5)
    ]
    rnd.shuffle(records)
    service = PromiseService(catalog, session_factory(db_engine))
    for start in range(0, len(records), 50):  # accepted and queued, not evaluated
        service.accept(records[start : start + 50])

    env = {
        **os.environ,
        "PROMISE_DATABASE_URL": db_engine.url.render_as_string(False),
        "PROMISE_DIR": str(ROOT / "promises"),
    }
    command = [
        str(Path(sys.executable).parent / "promise"),
        "worker",
        "--no-live",
        "--once",
        "--interval",
        "0.05",
        "--batch",
        "40",
    ]
    workers = [
        subprocess.Popen(
            [*command, "--share", f"{k}/3", "--log-level", "debug"],
            env=env,
            cwd=tmp_path,
            stderr=subprocess.PIPE,
        )
        for k in (1, 2, 3)
    ]
    rounds: list[tuple[int, set[int], float, float]] = []  # worker, shards, start, end
    for number, worker in enumerate(workers):
        _, err = worker.communicate(timeout=300)
        log = err.decode()
        assert worker.returncode == 0, log[-2000:]
        assert int(log.split("evaluated ")[-1].split()[0]) > 0, log[-2000:]  # all took part
        for shards, start, end in _JUDGED.findall(log):
            rounds.append((number, set(map(int, shards.split(", "))), float(start), float(end)))
    assert service.queue_empty()
    # The work really overlapped in time, and yet no shard (so no scope) had two judges.
    overlapping = [
        (a, b) for a in rounds for b in rounds if a[0] < b[0] and a[2] < b[3] and b[2] < a[3]
    ]
    assert overlapping, "the workers never ran at once: the test proves nothing"
    for a, b in overlapping:
        assert not a[1] & b[1], f"workers {a[0] + 1} and {b[0] + 1} judged shards {a[1] & b[1]}"

    stored = sorted(
        (
            {k: o.spec()[k] for k in ("promise", "scope", "state", "evidence")}
            for o in service.outcomes()
        ),
        key=lambda o: (o["promise"], o["scope"], o["evidence"]),
    )
    expected = reference.evaluate(
        catalog, [{**r, "occurred_at": datetime.fromisoformat(r["occurred_at"])} for r in records]
    )
    want = sorted(
        ({k: o[k] for k in ("promise", "scope", "state", "evidence")} for o in expected),
        key=lambda o: (o["promise"], o["scope"], o["evidence"]),
    )
    assert stored == want


def test_the_shares_of_n_workers_cover_every_shard_once() -> None:
    for count in range(1, SHARDS + 1):
        covered = [n for k in range(1, count + 1) for n in Share(k, count).shards]
        assert covered == list(range(SHARDS)), count
    assert Share.parse(" 2 / 3 ") == Share(2, 3)
    assert [Share(k, 3).leads for k in (1, 2, 3)] == [True, False, False]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("3/2", "3/2: K, this worker's place, must be 1 to N (2)"),
        ("0/2", "0/2: K, this worker's place, must be 1 to N (2)"),
        ("1/17", "1/17: N, the number of workers, must be 1 to 16"),
        ("half", "'half' is not K/N, e.g. 2/3"),
    ],
)
def test_a_share_that_cannot_be_says_why(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as raised:
        Share.parse(text)
    assert str(raised.value) == reason
