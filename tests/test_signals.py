"""Stopping ``promise serve`` stops everything it started (issue #16, item 5).

The server runs in the test's own process group, so nothing here can stop its children by
signalling a group: SIGTERM to ``serve`` must stop the worker, the dispatcher and the
sandbox's children within the grace period, and after a ``kill -9`` of ``serve`` alone they
must stop by themselves; one that does not stop within the grace period is killed. Run on
their own, ``promise worker`` and ``promise dispatcher``
finish their round and exit 0 on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from conftest import ROOT, Proc, Server, live_processes, start_server
from engine.service import PromiseService
from engine.storage import record_table
from engine.storage.database import session_factory
from rules.models import Catalog

GRACE = 4.0
PLANNED = {
    "channel": "email",
    "direction": "outbound",
    "type": "info_requested",
    "team": "claims",
    "attributes": {"item": "policy_number"},
}


def _descendants(pid: int) -> list[Proc]:
    everyone = live_processes()
    found, parents = [], {pid}
    while grown := [p for p in everyone if p.ppid in parents and p not in found]:
        found += grown
        parents |= {p.pid for p in grown}
    return found


def _running(processes: list[Proc]) -> list[Proc]:
    """Those of ``processes`` still running, if reparented (an orphan's parent is PID 1)."""
    alive = {(p.pid, p.started) for p in live_processes()}
    return [p for p in processes if (p.pid, p.started) in alive]


def _command(process: Proc) -> str:
    try:
        return Path(f"/proc/{process.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "(gone)"


def _gone_by(processes: list[Proc], deadline: float) -> list[str]:
    """Waits until none of ``processes`` runs or ``deadline`` passes; what still runs."""
    while _running(processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [_command(p) for p in _running(processes)]


@pytest.fixture
def family(
    db_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Server, list[Proc]]]:
    """A server (in the test's process group) that has answered a pre-flight check, and
    every process it started: the worker, the dispatcher and the sandbox's child(ren). Its
    worker hangs once the file ``stuck`` exists in ``tmp_path`` (tests/faulty)."""
    if db_engine.dialect.name != "sqlite":
        pytest.skip("processes, not databases: SQLite is enough")
    monkeypatch.setenv("PROMISE_SHUTDOWN_GRACE_SECONDS", str(GRACE))
    faulty = str(ROOT / "tests" / "faulty")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([faulty, os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("PROMISE_TEST_STUCK_WORKER", str(tmp_path / "stuck"))
    server = start_server(db_engine.url.render_as_string(False), tmp_path, "--no-live")
    processes: list[Proc] = []
    try:
        with server.client() as client:
            assert client.post("/customers/C-1/check", json=PLANNED).status_code == 200

        def started() -> bool:
            processes[:] = _descendants(server.process.pid)
            commands = " | ".join(map(_command, processes))
            return all(name in commands for name in (" worker ", " dispatcher ", "spawn_main"))

        server.wait_for(started)
        yield server, processes
    finally:
        for process in _running(processes):  # left behind by a failure: not our problem
            os.kill(process.pid, signal.SIGKILL)
        if server.process.poll() is None:
            server.process.kill()
        server.process.wait()


def test_sigterm_stops_serve_and_everything_it_started_within_the_grace_period(
    family: tuple[Server, list[Proc]],
) -> None:
    server, processes = family
    told = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=GRACE + 10) == 0
    assert not _gone_by(processes, told + GRACE + 2)
    log = (server.tmp_path / f"serve-{server.url.rsplit(':', 1)[1]}.log").read_text()
    assert "did not stop within the grace period" not in log  # stopped, not killed


def test_a_child_still_running_at_the_end_of_the_grace_period_is_killed(
    family: tuple[Server, list[Proc]],
) -> None:
    server, processes = family
    (server.tmp_path / "stuck").touch()
    time.sleep(1)  # the worker's next round (every 0.2 s when idle) has begun, and hangs
    told = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=GRACE + 10) == 0
    assert time.monotonic() - told >= GRACE - 0.5  # the worker was given its grace period
    assert not _gone_by(processes, time.monotonic() + 2)
    log = (server.tmp_path / f"serve-{server.url.rsplit(':', 1)[1]}.log").read_text()
    assert "worker did not stop within the grace period; killing it" in log


def test_the_children_of_a_killed_serve_stop_by_themselves(
    family: tuple[Server, list[Proc]],
) -> None:
    server, processes = family
    server.process.kill()  # serve alone: its children are in the test's process group
    server.process.wait()
    assert not _gone_by(processes, time.monotonic() + GRACE + 2)


@pytest.mark.parametrize("command", ["worker", "dispatcher"])
def test_a_standalone_worker_or_dispatcher_exits_cleanly_on_sigterm(
    command: str, db_engine: Engine, catalog: Catalog, tmp_path: Path
) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from synthetic import history

    sessions = session_factory(db_engine)
    records = history(200, seed=3)
    PromiseService(catalog, sessions).accept(records)  # queued, not evaluated
    env = {
        **os.environ,
        "PROMISE_DATABASE_URL": db_engine.url.render_as_string(False),
        "PROMISE_DIR": str(ROOT / "promises"),
    }
    options = ["--no-live"] if command == "worker" else []
    log = tmp_path / f"{command}.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "promise"), command, *options, "--interval", "0.05"],
            env=env,
            cwd=tmp_path,
            stderr=stderr,
        )

    def at_work() -> bool:
        """The worker has drained the queue; the dispatcher says it has started."""
        if command == "dispatcher":
            return f"dispatcher {process.pid} started" in log.read_text()
        with sessions() as session:
            return not record_table.pending_count(session)

    try:
        deadline = time.monotonic() + 60
        while not at_work():
            assert time.monotonic() < deadline and process.poll() is None, log.read_text()
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, log.read_text()
    said = f"evaluated {len(records)} records" if command == "worker" else "attempted 0 deliveries"
    assert said in log.read_text()
