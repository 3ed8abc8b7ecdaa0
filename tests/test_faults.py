"""Fault tests (issue #8): a running service loses and doubles nothing when it is killed
outright or when its database goes away.

1. The whole `promise serve` (the API, its worker and its dispatcher) is killed with SIGKILL
   at random points of a 50,000-record ingest through the API and started again; clients
   re-send what was not answered. Every acknowledged record is stored exactly once and the
   stored outcomes are those of a clean in-memory replay of the same records.
2. A private PostgreSQL cluster is stopped and started under load: the API answers 503
   (never 500, never a dropped connection) while it is down, recovers by itself, and every
   acknowledged record is stored once and evaluated.

Set PROMISE_FAULT_SEED to repeat the kill points of a failed run (it is printed).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from conftest import ROOT, Server, fresh_postgres, live_processes, start_server, stop_server
from engine.clock import to_micros
from engine.outcomes import Outcome
from engine.records import Interaction, parse_record
from engine.sandbox.in_memory import replay
from engine.storage import outcome_table, state_table
from engine.storage.database import make_engine, migrate, session_factory
from engine.storage.schema import OutcomeRow
from rules.models import Catalog

pytestmark = pytest.mark.slow

INGEST_RECORDS = 50_000
INGEST_BATCH = 500
INGEST_CLIENTS = 4


def _history(count: int, seed: int) -> list[dict[str, Any]]:
    """Synthetic traffic touching every shipped promise (bench/synthetic.py), in event-time
    order except that each stretch of 2,000 records arrives shuffled (late records). The
    first ``count`` records (in event time) of a longer history, so that it ends while
    cases are still open: some outcomes are pending or at risk at the end."""
    sys.path.insert(0, str(ROOT / "bench"))
    from synthetic import history

    records = history(count * 13 // 10, seed=seed)[:count]
    rnd = random.Random(seed)
    for start in range(0, len(records), 2_000):
        stretch = records[start : start + 2_000]
        rnd.shuffle(stretch)
        records[start : start + 2_000] = stretch
    return records


# --- processes ---------------------------------------------------------------------------------


def _group_members(group: int) -> list[int]:
    """Live (not zombie) processes in process group ``group``."""
    return [p.pid for p in live_processes() if p.group == group]


def _kill_server(server: Server) -> list[int]:
    """SIGKILL the server's whole process group (API, worker, dispatcher) and wait until
    none of it runs; returns the pids that were killed."""
    group = server.process.pid
    members = _group_members(group)
    os.killpg(group, signal.SIGKILL)
    server.process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _group_members(group):
        assert time.monotonic() < deadline, f"still running after SIGKILL: {_group_members(group)}"
        time.sleep(0.05)
    return members


def _stop_server(server: Server) -> None:
    """Stop as the other tests do, then make sure nothing of the group is left behind."""
    if server.process.poll() is None:
        stop_server(server)
    if _group_members(server.process.pid):
        os.killpg(server.process.pid, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- clients -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One HTTP exchange: when it was sent and answered (monotonic), the status (None when
    the connection failed) and the detail of a non-200 answer."""

    sent: float
    answered: float
    status: int | None
    detail: Any = None


class Ingest:
    """Client threads POSTing batches of records; a batch whose answer is not a 200 (a
    connection error, a 503) is sent again until it is acknowledged, like a careful client.

    Acknowledged means `accepted` or `duplicate` in a 200 answer. ``stop()`` makes the
    threads take no new batch; the batches already taken are still seen through.
    """

    def __init__(
        self,
        server: Server,
        batches: list[list[dict[str, Any]]],
        threads: int,
        *,
        pause: float = 0.0,
        give_up_after: float = 300,
    ) -> None:
        self.url, self.key = server.url, server.admin_key
        self.pause = pause
        self.deadline = time.monotonic() + give_up_after
        self._todo = list(reversed(batches))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.taken: list[list[dict[str, Any]]] = []
        self.answers: list[Answer] = []
        self.acknowledged: set[str] = set()
        self.accepted: Counter[str] = Counter()  # id: how many answers said "accepted"
        self.done_batches = 0
        self.problems: list[str] = []
        self._threads = [
            threading.Thread(target=self._run, name=f"client-{n}", daemon=True)
            for n in range(threads)
        ]

    def start(self) -> Ingest:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def abort(self) -> None:
        """Give up at once, also on the batches under way (a test failed)."""
        self._stop.set()
        self.deadline = 0

    def wait_for(self, batches: int, timeout: float = 120) -> None:
        """Wait until ``batches`` batches in all are acknowledged."""
        deadline = time.monotonic() + timeout
        while self.done_batches < batches:
            assert not self.problems, self.problems[:10]
            assert time.monotonic() < deadline, f"{self.done_batches} of {batches} batches"
            time.sleep(0.01)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=max(self.deadline - time.monotonic(), 0) + 30)
        assert not any(t.is_alive() for t in self._threads), "a client thread hangs"

    def _next(self) -> list[dict[str, Any]] | None:
        with self._lock:
            if self._stop.is_set() or not self._todo:
                return None
            batch = self._todo.pop()
            self.taken.append(batch)
            return batch

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=60) as client:
            while (batch := self._next()) is not None:
                self._send(client, batch)
                time.sleep(self.pause)

    def _send(self, client: httpx.Client, batch: list[dict[str, Any]]) -> None:
        while time.monotonic() < self.deadline:
            sent = time.monotonic()
            try:
                response = client.post("/interactions", json=batch)
            except httpx.TransportError as exc:  # the server died, or is not up yet
                self._log(Answer(sent, time.monotonic(), None, repr(exc)))
                time.sleep(0.2)
                continue
            if response.status_code != 200:
                try:
                    detail = response.json()
                except ValueError:
                    detail = response.text
                self._log(Answer(sent, time.monotonic(), response.status_code, detail))
                time.sleep(0.1)
                continue
            self._log(Answer(sent, time.monotonic(), 200))
            self._acknowledge(batch, response.json())
            return
        with self._lock:
            self.problems.append(f"batch starting {batch[0]['id']} never acknowledged")

    def _log(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    def _acknowledge(self, batch: list[dict[str, Any]], body: dict[str, Any]) -> None:
        with self._lock:
            ids = [r["id"] for r in body["results"]]
            if ids != [r["id"] for r in batch]:
                self.problems.append(f"answer for batch {batch[0]['id']} names other records")
            for result in body["results"]:
                if result["status"] == "rejected":
                    self.problems.append(f"{result['id']} rejected: {result['problems']}")
                    continue
                self.acknowledged.add(result["id"])
                if result["status"] == "accepted":
                    self.accepted[result["id"]] += 1
            self.done_batches += 1


def _wait_until_drained(server: Server, timeout: float) -> float:
    """Wait until the worker has evaluated every queued record; returns the seconds waited."""
    began = time.monotonic()
    ready = None
    with server.client() as client:
        while True:
            try:
                ready = client.get("/readyz")
                if ready.status_code == 200 and ready.json()["evaluation_lag"] == 0:
                    return time.monotonic() - began
            except httpx.TransportError:
                pass
            assert time.monotonic() - began < timeout, (
                f"queue not drained in {timeout} s; /readyz: {ready and ready.text}; "
                f"the server's log ends:\n{_log_tail(server)}"
            )
            time.sleep(0.25)


def _log_tail(server: Server, last: int = 20) -> str:
    """The server's last log lines, without requests and alerts: what a failed drain needs
    to be understood (the worker's retries, restarts, tracebacks)."""
    port = server.url.rpartition(":")[2]
    lines = (server.tmp_path / f"serve-{port}.log").read_text(errors="replace").splitlines()
    noise = ('"GET ', '"POST ', "promise.alerts", "promise.dispatcher")
    return "\n".join([line for line in lines if not any(n in line for n in noise)][-last:])


# --- what the database holds -------------------------------------------------------------------


def _verdict(outcome: Outcome) -> tuple[Any, ...]:
    """What identifies an outcome and everything a user sees of it."""
    return (outcome.promise, outcome.key, outcome.scope, *outcome.verdict())


def _check_stored(database_url: str, records: list[dict[str, Any]], catalog: Catalog) -> Counter:
    """Each record is stored exactly once, none waits in the queue, and the stored outcomes
    equal those of a clean replay of ``records`` at the same clock. Returns the outcome
    counts by (promise, state)."""
    db = make_engine(database_url)
    try:
        with db.connect() as connection:
            total, distinct = connection.execute(
                text("SELECT count(*), count(DISTINCT id) FROM interactions")
            ).one()
            stored_ids = set(connection.scalars(text("SELECT id FROM interactions")))
            queued = connection.scalar(text("SELECT count(*) FROM pending_records"))
        assert (total, distinct) == (len(records), len(records))
        assert stored_ids == {r["id"] for r in records}
        assert queued == 0
        with session_factory(db)() as session:
            stored = [
                outcome_table.row_to_outcome(row) for row in session.scalars(select(OutcomeRow))
            ]
            clock = state_table.get_clock(session)
    finally:
        db.dispose()

    parsed = [parse_record(r) for r in records]
    valid = sorted((r for r in parsed if isinstance(r, Interaction)), key=lambda r: r.order)
    assert len(valid) == len(records)
    assert clock == to_micros(valid[-1].occurred_at), "the clock is not the data's event time"
    expected = replay(catalog, valid).outcomes  # its clock ends at the last record

    got, want = Counter(map(_verdict, stored)), Counter(map(_verdict, expected))
    extra, missing = got - want, want - got
    assert not extra and not missing, (
        f"{sum(extra.values())} stored outcomes differ from the replay's, "
        f"{sum(missing.values())} of the replay's are not stored; e.g. stored "
        f"{list(extra)[:3]}, replay {list(missing)[:3]}"
    )
    return Counter((o.promise, o.state) for o in stored)


# --- 1. kill -9 of the whole server during a 50,000-record ingest ------------------------------


@pytest.fixture
def one_database(tmp_path: Path) -> Iterator[str]:
    """A new, migrated database on one backend only: PostgreSQL (a database of its own on
    the PROMISE_TEST_DATABASE_URL server) when configured, else a SQLite file."""
    server = os.environ.get("PROMISE_TEST_DATABASE_URL")
    if not server:
        url = f"sqlite:///{tmp_path / 'promise.db'}"
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        yield url
        return
    with fresh_postgres(server, "promise_faults") as url:
        yield url


def test_killing_the_whole_server_mid_ingest_loses_and_doubles_nothing(
    one_database: str, tmp_path: Path, catalog: Catalog
) -> None:
    seed = int(os.environ.get("PROMISE_FAULT_SEED") or random.randrange(1_000_000))
    print(f"PROMISE_FAULT_SEED={seed}")
    rnd = random.Random(seed)
    records = _history(INGEST_RECORDS, seed=11)
    batches = [records[i : i + INGEST_BATCH] for i in range(0, len(records), INGEST_BATCH)]
    # Kill once in each half of the ingest, at a random share of acknowledged batches.
    kill_after = [
        round(rnd.uniform(0.1, 0.45) * len(batches)),
        round(rnd.uniform(0.55, 0.9) * len(batches)),
    ]

    began = time.monotonic()
    port = _free_port()
    server = start_server(one_database, tmp_path, "--no-live", port=port, own_group=True)
    clients = Ingest(server, batches, INGEST_CLIENTS)
    killed, kill_times = [], []
    try:
        clients.start()
        for after in kill_after:
            clients.wait_for(after)
            time.sleep(rnd.uniform(0, 0.3))  # not always right after an answer
            kill_times.append(time.monotonic())
            killed.append(_kill_server(server))
            server = start_server(one_database, tmp_path, "--no-live", port=port, own_group=True)
        clients.join()
        ingested = time.monotonic() - began
        drained = _wait_until_drained(server, timeout=600)
    finally:
        clients.abort()
        _stop_server(server)

    # Each kill took the API, the worker and the dispatcher (none left running on its own).
    assert [len(pids) >= 3 for pids in killed] == [True, True], killed
    assert not clients.problems, clients.problems[:10]
    assert clients.done_batches == len(batches)
    lost = [a for a in clients.answers if a.status is None]
    cut = [a for a in lost if any(a.sent < moment <= a.answered for moment in kill_times)]
    assert cut, "no request was under way at a kill"
    assert {a.status for a in clients.answers} <= {None, 200, 503}
    # Acknowledged: every record; and no record was ever answered "accepted" twice.
    assert clients.acknowledged == {r["id"] for r in records}
    assert max(clients.accepted.values()) == 1

    checked = time.monotonic()
    states = _check_stored(one_database, records, catalog)
    for promise in catalog.promises:
        assert states[(promise, "kept")] + states[(promise, "broken")] > 0, promise
    deadlines = [p for p, promise in catalog.promises.items() if promise.kind == "deadline"]
    for promise in deadlines:  # every state a deadline can be in at the clock
        open_ = states[(promise, "pending")] + states[(promise, "at_risk")]
        assert states[(promise, "kept")] and states[(promise, "broken")] and open_, states
    assert sum(n for (_, state), n in states.items() if state == "at_risk"), states
    print(
        f"ingest with {len(killed)} kills {ingested:.1f} s, then drained in {drained:.1f} s, "
        f"checked in {time.monotonic() - checked:.1f} s; {len(cut)} requests cut off, "
        f"{INGEST_RECORDS - sum(clients.accepted.values())} records first acknowledged as "
        f"duplicates; outcomes {sorted(states.items())}"
    )


# --- 2. PostgreSQL stopped and started under load ----------------------------------------------


def _postgres_bin() -> Path | None:
    found = shutil.which("pg_config")
    if found:
        bindir = subprocess.run([found, "--bindir"], capture_output=True, text=True).stdout
        if (Path(bindir.strip()) / "initdb").exists():
            return Path(bindir.strip())
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return versions[0].parent if versions else None


@dataclass
class Cluster:
    """A private PostgreSQL cluster that a test may stop and start (never the shared one)."""

    bindir: Path
    home: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, program: str, *args: str) -> None:
        # initdb and postgres refuse to run as root: run them as the postgres user then.
        command = [str(self.bindir / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, cwd=self.home, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{program} {' '.join(args)}: {done.stdout}{done.stderr}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off"
        )
        data, log = str(self.home / "data"), str(self.home / "postgres.log")
        self.run("pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "-D", str(self.home / "data"), "-m", mode, "-w", "stop")


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[Cluster]:
    bindir = _postgres_bin()
    if bindir is None:
        message = "PostgreSQL's server programs (initdb, pg_ctl) are not installed"
        if os.environ.get("PROMISE_TEST_DATABASE_URL"):
            pytest.fail(message)
        pytest.skip(message)
    home = Path(tempfile.mkdtemp(prefix="promise-pg-"))
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
    cluster = Cluster(bindir, home, _free_port())
    try:
        cluster.run(
            "initdb",
            "-D",
            str(home / "data"),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "--no-locale",
            "-E",
            "UTF8",
        )
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(AssertionError):  # not running
            cluster.stop("immediate")
        shutil.rmtree(home, ignore_errors=True)


class Reader(threading.Thread):
    """GETs a few routes that need the database, in turn, until stopped; logs every answer
    by route."""

    ROUTES = ("/readyz", "/outcomes?limit=5", "/metrics")

    def __init__(self, server: Server) -> None:
        super().__init__(name="reader", daemon=True)
        self.server = server
        self.answers: dict[str, list[Answer]] = {route: [] for route in self.ROUTES}
        self.halt = threading.Event()

    def run(self) -> None:
        with self.server.client() as client:
            while not self.halt.is_set():
                for route in self.ROUTES:
                    sent = time.monotonic()
                    try:
                        response = client.get(route)
                    except httpx.TransportError as exc:
                        self.answers[route].append(Answer(sent, time.monotonic(), None, exc))
                        continue
                    detail = response.json() if response.status_code == 503 else None
                    answer = Answer(sent, time.monotonic(), response.status_code, detail)
                    self.answers[route].append(answer)
                time.sleep(0.1)

    def all(self) -> list[Answer]:
        return [answer for answers in self.answers.values() for answer in answers]


@pytest.fixture
def private_database(private_postgres: Cluster) -> Iterator[str]:
    with fresh_postgres(private_postgres.url, "promise_faults") as url:
        yield url


def test_postgresql_stopped_and_started_under_load(
    private_postgres: Cluster, private_database: str, tmp_path: Path, catalog: Catalog
) -> None:
    url = private_database
    records = _history(40_000, seed=5)
    batches = [records[i : i + 50] for i in range(0, len(records), 50)]
    server = start_server(url, tmp_path, "--no-live", own_group=True)
    outages: list[tuple[str, float, float, float]] = []  # mode, down, restarting, up
    clients = Ingest(server, batches, threads=2, pause=0.05, give_up_after=240)
    reader = Reader(server)
    try:
        api = _group_members(server.process.pid)
        clients.start()
        reader.start()
        for mode in ("fast", "immediate"):
            clients.wait_for(clients.done_batches + 10)
            private_postgres.stop(mode)
            down = time.monotonic()
            time.sleep(4)
            restarting = time.monotonic()
            private_postgres.start()
            up = time.monotonic()
            outages.append((mode, down, restarting, up))
        # Recovered by itself: batches are acknowledged again, without restarting the API.
        clients.wait_for(clients.done_batches + 10, timeout=60)
        clients.stop()
        clients.join()
        drained = _wait_until_drained(server, timeout=240)
        reader.halt.set()
        reader.join()
        assert server.process.poll() is None, "the API process died"
        assert server.process.pid in _group_members(server.process.pid)
    finally:
        clients.abort()
        reader.halt.set()
        _stop_server(server)

    log = (tmp_path / f"serve-{server.url.rpartition(':')[2]}.log").read_text()
    assert not clients.problems, clients.problems[:10]
    dropped = [a for a in clients.answers + reader.all() if a.status is None]
    assert not dropped, f"connections dropped: {dropped[:5]}"
    failed = [a for a in clients.answers + reader.all() if a.status not in (200, 503)]
    assert not failed, f"answers other than 200 and 503: {failed[:5]}"
    slow = [a for a in clients.answers + reader.all() if a.answered - a.sent > 10]
    assert not slow, f"requests that hung waiting for the database: {slow[:5]}"
    # A 503 says why in JSON (GET /readyz answers its own document, also when degraded).
    unavailable = [a for a in clients.answers + reader.all() if a.status == 503]
    assert all(isinstance(a.detail, dict) for a in unavailable)
    ready = {id(a) for a in reader.answers["/readyz"]}
    assert all(a.detail.get("detail") for a in unavailable if id(a) not in ready)
    for mode, down, restarting, _ in outages:
        during = [a for a in clients.answers if a.sent >= down and a.answered <= restarting]
        assert during and all(a.status == 503 for a in during), (mode, during[:5])
        for route, answers in reader.answers.items():  # readyz, and routes that read
            during = [a for a in answers if a.sent >= down and a.answered <= restarting]
            assert during and all(a.status == 503 for a in during), (mode, route, during[:5])

    # Every acknowledged record is stored once and was evaluated.
    acknowledged = [r for batch in clients.taken for r in batch]
    assert clients.acknowledged == {r["id"] for r in acknowledged}
    assert max(clients.accepted.values()) == 1
    _check_stored(url, acknowledged, catalog)
    recovered = [
        min(
            (a.answered - up for a in clients.answers if a.sent >= up and a.status == 200),
            default=None,
        )
        for *_, up in outages
    ]
    print(
        f"{len(acknowledged)} records acknowledged, {len(unavailable)} answers 503; first 200 "
        f"after restart: {recovered} s; drained in {drained:.1f} s; processes {api}; "
        f"supervisor restarts: {log.count('; restarting')}, background retries: "
        f"{log.count('promise.worker database unavailable')}"
    )
