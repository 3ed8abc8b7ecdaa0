"""What every benchmark shares: the machine, the load average, fresh databases, tables.

Every benchmark prints the machine it ran on and the load average at its start and end:
this machine is shared, and a number taken while the 1-minute load average is above ~1.5
(2 cores) is noisy. Compare ratios within one run rather than absolute numbers across runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (str(ROOT), str(ROOT / "bench")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

NOISY_LOAD = 1.5
"""A 1-minute load average above this (on 2 cores) makes a timing noisy."""


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _ram_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def postgres_version(url: str) -> str | None:
    from sqlalchemy import text

    from engine.storage.database import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SHOW server_version")).scalar())
    except Exception as exc:  # the version is a description, not a requirement
        return f"unreachable ({type(exc).__name__})"
    finally:
        engine.dispose()


def machine(postgres: str | None = None) -> dict[str, Any]:
    """The machine, as every benchmark reports it."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version(postgres) if postgres else None,
    }


def describe(info: dict[str, Any], load_start: float, load_end: float) -> str:
    noisy = max(load_start, load_end) > NOISY_LOAD
    return (
        f"machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM, "
        f"{info['os']}\n"
        f"Python {info['python']}, SQLite {info['sqlite']}, "
        f"PostgreSQL {info['postgresql'] or '-'}\n"
        f"load average (1 min): {load_start} at start, {load_end} at end"
        + ("  <- NOISY: above 1.5 on 2 cores, compare ratios only" if noisy else "")
    )


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    """``columns``: (key, heading, format spec). Missing values print as '-'."""
    cells = [[heading for _, heading, _ in columns]]
    for row in rows:
        line = []
        for key, _, spec in columns:
            value = row.get(key)
            line.append("-" if value is None else format(value, spec))
        cells.append(line)
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    out = []
    for n, line in enumerate(cells):
        out.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def goal_lines(goals: Sequence[dict[str, Any]]) -> str:
    return "\n".join(
        f"  [{'met' if g['met'] else 'MISSED' if g['met'] is not None else 'n/a'}] "
        f"{g['goal']}: {g['measured']}"
        for g in goals
    )


def report(
    benchmark: str,
    *,
    as_json: bool,
    info: dict[str, Any],
    load_start: float,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[tuple[str, str, str]],
    goals: Sequence[dict[str, Any]],
    note: str = "",
    **extra: Any,
) -> None:
    """Print a benchmark's result: a JSON document (``extra`` adds fields) or the machine,
    ``note``, the table and the goals. The load average at the end is taken here."""
    load_end = load_average()
    if as_json:
        document = {
            "benchmark": benchmark,
            "command": " ".join([f"bench/{benchmark}.py", *sys.argv[1:]]),
            "machine": info,
            "load_average": {"start": load_start, "end": load_end},
            **extra,
            "rows": rows,
            "goals": goals,
        }
        print(json.dumps(document, indent=2, default=str))
        return
    head = [describe(info, load_start, load_end), *([note] if note else [])]
    print("\n".join([*head, "", table(rows, columns), "", "goals:", goal_lines(goals)]))


def rss_bytes(pid: int | str = "self") -> int:
    """Current resident set size of a process (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of ``values``."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def terminate_on_sigterm() -> None:
    """Make SIGTERM (and SIGHUP) unwind like Ctrl-C, so ``finally`` blocks clean up."""

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)


@contextlib.contextmanager
def fresh_postgres(server: str, prefix: str = "promise_bench") -> Iterator[str]:
    """A new, migrated database on ``server`` (any database URL on it), dropped at the end
    (also on Ctrl-C)."""
    from sqlalchemy import text

    from engine.storage.database import make_engine, migrate

    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = make_engine(server, isolation_level="AUTOCOMMIT")
    url = server.rpartition("/")[0] + "/" + name
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        yield url
    finally:
        with contextlib.suppress(Exception), admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run_json(command: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a child benchmark phase that prints one JSON line last; its document."""
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
