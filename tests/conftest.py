"""Shared fixtures: a fresh database per test, on SQLite and (when configured) PostgreSQL.

``PROMISE_TEST_DATABASE_URL`` names a PostgreSQL server (any database on it); each test
run creates a database of its own there and drops it at the end. If the variable is set
and the server cannot be reached, the run fails: it never silently skips PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import in_process
import pytest
from empty_databases import empty, sqlite_copy
from hypothesis import settings
from sqlalchemy import Engine, text

from engine.keys import create_key
from engine.service import PromiseService
from engine.storage.database import make_engine, migrate, session_factory
from rules.loader import load_catalog
from rules.models import Catalog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Hypothesis budgets. Tests that fix their own max_examples keep it; the differential tests
# (tests/test_differential.py) take a share of the profile's, sized so that the module runs
# in about two and a half minutes on two cores in CI, SQLite and PostgreSQL together
# (measured on a shared, busy machine: 160 took 2m40s, 83 s on SQLite and 60 s on
# PostgreSQL; 300 took 3m37s). `pytest --hypothesis-profile=long -m differential` searches
# 100 times deeper.
CI_EXAMPLES = 160
settings.register_profile("ci", max_examples=CI_EXAMPLES, deadline=None, print_blob=True)
settings.register_profile("long", max_examples=100 * CI_EXAMPLES, deadline=None, print_blob=True)
settings.load_profile("ci")

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("PROMISE_TEST_DATABASE_URL") else [])


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(ROOT / "promises")


@contextmanager
def fresh_postgres(server: str, prefix: str) -> Iterator[str]:
    """A new, migrated database on the PostgreSQL ``server`` (a URL), dropped afterwards;
    fails the test loudly if the server cannot be reached."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = make_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # fail loudly: a configured PostgreSQL must be tested
        pytest.fail(f"PROMISE_TEST_DATABASE_URL is set but PostgreSQL is unreachable: {exc}")
    base, _, _ = server.rpartition("/")
    url = f"{base}/{name}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database created for this test run on the server in PROMISE_TEST_DATABASE_URL."""
    with fresh_postgres(os.environ["PROMISE_TEST_DATABASE_URL"], "promise_test") as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where this process keeps the migrated SQLite database that tests copy
    (tests/databases.py); each xdist worker has a temporary folder of its own."""
    return tmp_path_factory.getbasetemp() / "migrated-template.db"


@pytest.fixture(params=BACKENDS)
def db_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty, migrated database: a new SQLite file, or the run's PostgreSQL database
    emptied after each test."""
    if request.param == "sqlite":
        engine = sqlite_copy(request.getfixturevalue("sqlite_template"), tmp_path / "promise.db")
        yield engine
        engine.dispose()
        return
    engine = make_engine(request.getfixturevalue("postgres_url"))
    yield engine
    empty(engine)
    engine.dispose()


@pytest.fixture
def service(db_engine: Engine, catalog: Catalog) -> PromiseService:
    return PromiseService(catalog, session_factory(db_engine))


@pytest.fixture
def make_service(
    db_engine: Engine, catalog: Catalog, tmp_path: Path, request: pytest.FixtureRequest
):
    """A factory of services (over the sample catalog unless given another) on an emptied
    database, for property tests that need a clean database per example (hypothesis runs
    many examples in one test)."""
    counter = iter(range(1_000_000))

    def fresh(promises: Catalog = catalog) -> PromiseService:
        if db_engine.dialect.name == "sqlite":
            template = request.getfixturevalue("sqlite_template")
            engine = sqlite_copy(template, tmp_path / f"example{next(counter)}.db")
        else:
            engine = db_engine
            empty(engine)
        return PromiseService(promises, session_factory(engine))

    return fresh


@dataclass
class Server:
    """A real `promise serve` process on a free local port."""

    url: str
    process: subprocess.Popen[bytes]
    database_url: str
    tmp_path: Path
    admin_key: str
    promise_dir: Path

    def client(self, key: str | None = None) -> httpx.Client:
        """An HTTP client with ``key`` (default: an admin key) as its bearer token."""
        token = self.admin_key if key is None else key
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def invoke(self, *args: str) -> in_process.Ran:
        """The `promise` command on this server's database and promises, run in this
        process (tests/in_process.py)."""
        env = {"PROMISE_DATABASE_URL": self.database_url, "PROMISE_DIR": str(self.promise_dir)}
        return in_process.promise(*args, cwd=self.tmp_path, env=env)

    def promise(self, *args: str) -> str:
        """The stdout of :meth:`invoke`, which must succeed."""
        done = self.invoke(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError("condition not met before the timeout")


@dataclass(frozen=True)
class Proc:
    """A live process as /proc shows it; ``started`` (clock ticks after boot) tells it from
    a later process that reuses its pid."""

    pid: int
    ppid: int
    group: int
    started: int


def live_processes() -> list[Proc]:
    """Every process on this machine that is running (not a zombie waiting to be reaped)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        if fields[0] != "Z":
            found.append(Proc(int(entry.name), int(fields[1]), int(fields[2]), int(fields[19])))
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_promise(
    database_url: str, cwd: Path, *args: str, promise_dir: Path = ROOT / "promises"
) -> str:
    """The stdout of a real `promise` process, which must succeed: for what only a process
    of its own shows (a worker that must not crash-loop); other commands run in-process
    (:meth:`Server.promise`)."""
    env = {**os.environ, "PROMISE_DATABASE_URL": database_url, "PROMISE_DIR": str(promise_dir)}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "promise"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def start_server(
    database_url: str,
    tmp_path: Path,
    *extra: str,
    promise_dir: Path = ROOT / "promises",
    port: int | None = None,
    own_group: bool = False,
) -> Server:
    """``port`` (default: a free one) lets a restarted server keep its address; with
    ``own_group`` the server and its worker and dispatcher get a process group of their own
    (its id is ``server.process.pid``), so that a test can kill them all at once."""
    keys_db = make_engine(database_url)
    admin_key = create_key(session_factory(keys_db), f"admin-{uuid.uuid4().hex[:6]}", ["admin"])
    keys_db.dispose()
    port = port or _free_port()
    log = (tmp_path / f"serve-{port}.log").open("ab")  # a restart appends
    env = {**os.environ, "PROMISE_DATABASE_URL": database_url, "PROMISE_DIR": str(promise_dir)}
    # The worker and the dispatcher poll the database every 0.2 s when idle (0.5 s in
    # production): soon enough for tests that wait for them, and a server idling through a
    # test costs little CPU, with dozens started per run on two shared cores.
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "promise"),
            "serve",
            "--port",
            str(port),
            "--interval",
            "0.2",
            *extra,
        ],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=own_group,
    )
    server = Server(
        f"http://127.0.0.1:{port}", process, database_url, tmp_path, admin_key, promise_dir
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"promise serve exited: {(tmp_path / log.name).read_text()}")
        try:
            with server.client() as client:
                if client.get("/readyz", timeout=1).status_code == 200:
                    return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    if own_group:
        os.killpg(process.pid, signal.SIGKILL)
    else:
        process.kill()
    raise AssertionError("promise serve did not become ready within 60 s")


def stop_server(server: Server) -> None:
    server.process.send_signal(signal.SIGINT)
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture
def server(db_engine: Engine, tmp_path: Path) -> Iterator[Server]:
    """`promise serve --no-live` over the test database (SQLite file or PostgreSQL)."""
    running = start_server(
        db_engine.url.render_as_string(hide_password=False), tmp_path, "--no-live"
    )
    yield running
    stop_server(running)


@pytest.fixture
def server_with(
    db_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Server]]:
    """Starts `promise serve --no-live` over the test database with settings in its
    environment (``server_with(PROMISE_ERASURE_KEY="...")``); stopped after the test."""
    started: list[Server] = []

    def start(**environment: str) -> Server:
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        url = db_engine.url.render_as_string(hide_password=False)
        started.append(start_server(url, tmp_path, "--no-live"))
        return started[-1]

    yield start
    for running in started:
        stop_server(running)
