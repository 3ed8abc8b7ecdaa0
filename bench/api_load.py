"""API load benchmark: a real `promise serve --no-live` under a real load generator.

    .venv/bin/python bench/api_load.py [--postgres URL] [--duration 20] [--json]

For SQLite (a temp file) and, with ``--postgres``, PostgreSQL (a fresh database created and
dropped by the script), it creates an admin key (``promise keys create``), starts
``promise serve --no-live`` on a free port with a copy of the catalog whose teams' alerts all
go to a local webhook receiver, and measures:

1. ``batch``: sustained records/s with batches of 100 records (``POST /interactions``)
   from ``wrk`` (Debian's wrk 4.1, a Lua script making every record id unique) over several
   connections for ``--duration`` seconds; then how long the worker needs to evaluate the
   queue (at most ``--drain-timeout``), so both accepted/s and evaluated/s (records whose
   evaluation finished, over the time since the load started) are reported. Every answer
   must say all 100 accepted, and the stored count is checked: nothing dropped.
2. ``single``: p50/p99 latency of single-record POSTs at a fixed rate (``--rate``, 200/s),
   paced by wrk's ``delay()`` hook over 64 connections. wrk measures from the request's
   write, so a stall longer than the pacing slack is under-counted (coordinated omission).
3. ``alerts``: POST-to-webhook latency over ``--breaches`` ask-once breaches (info given
   earlier, asked for again in the measured POST), sent 10/s from httpx; the time from
   sending the POST to the alert arriving at the receiver. Includes the worker's and the
   dispatcher's poll interval (``--interval``, 0.5 s as ``promise serve`` defaults).

Each phase gets a fresh database and server, so none inherits another's backlog. With
``--profile DIR``, py-spy samples the API and worker processes during each phase (raw
collapsed stacks; summarise with ``bench/profile_top.py``). Servers, receiver and databases
are removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from engine.storage import record_table

sys.path[:0] = [str(Path(__file__).resolve().parent)]
from common import (  # noqa: E402
    ROOT,
    free_port,
    fresh_postgres,
    load_average,
    machine,
    percentile,
    report,
    terminate_on_sigterm,
)

PROMISE = str(Path(sys.executable).parent / "promise")
SECRET = "bench-webhook-secret"
GOAL_BATCH = 5_000
GOAL_P99_MS = 50
GOAL_ALERT_P99_S = 2.0

WRK_SCRIPT = r"""
-- Records for POST /interactions: unique ids per run, thread and request.
local run = os.getenv("BENCH_RUN") or "r"
local batch = tonumber(os.getenv("BENCH_BATCH") or "100")
local customers = tonumber(os.getenv("BENCH_CUSTOMERS") or "50000")
local key = os.getenv("BENCH_KEY")
local rate = tonumber(os.getenv("BENCH_RATE_PER_THREAD") or "0")
local kinds = {
  {"message", "email", "inbound", ""},
  {"message", "email", "outbound", ""},
  {"callback_promised", "phone", "outbound", ""},
  {"call", "phone", "outbound", ""},
  {"info_provided", "web", "inbound", ',"attributes":{"item":"address"}'},
  {"info_requested", "email", "outbound", ',"attributes":{"item":"bank_details"}'},
  {"handoff", "other", "internal", ""},
  {"resolved", "other", "internal", ""},
  {"survey_response", "web", "inbound", ',"attributes":{"nps":4}'},
  {"problem_reported", "app", "inbound", ""},
}
local threads = {}
counter = 0
bad = 0

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  math.randomseed(tid * 7919)
end

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local start, slots = nil, 0

function delay()
  if rate <= 0 then return 0 end
  local t = now_ms()
  if start == nil then start = t end
  slots = slots + 1
  local wait = start + (slots - 1) * 1000 / rate - t
  if wait < 1 then return 0 end
  return math.floor(wait)
end

local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key}
local expected = '"accepted":' .. batch .. ','

function request()
  local at = os.date("!%Y-%m-%dT%H:%M:%SZ")
  local parts = {}
  for i = 1, batch do
    counter = counter + 1
    local k = kinds[(counter % #kinds) + 1]
    local c = math.random(customers)
    parts[i] = string.format(
      '{"id":"%s-%d-%d","occurred_at":"%s","customer_id":"C-%d","case_id":"K-%d",' ..
      '"channel":"%s","direction":"%s","type":"%s","team":"claims"%s}',
      run, tid, counter, at, c, c, k[2], k[3], k[1], k[4])
  end
  local body = parts[1]
  if batch > 1 then body = "[" .. table.concat(parts, ",") .. "]" end
  return wrk.format("POST", "/interactions", headers, body)
end

function response(status, hdrs, body)
  if status ~= 200 or not string.find(body, expected, 1, true) then bad = bad + 1 end
end

function done(summary, latency, requests)
  local wrong = 0
  for _, t in ipairs(threads) do wrong = wrong + (t:get("bad") or 0) end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"bad":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    wrong, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
"""


# --- the webhook receiver --------------------------------------------------------------------


class Receiver:
    """A local webhook endpoint that notes when each alert arrived (monotonic seconds)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                arrived = time.monotonic()
                with contextlib.suppress(ValueError), receiver.lock:
                    receiver.arrivals.append((arrived, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def catalog_to(receiver: Receiver, target: Path) -> Path:
    """The shipped promises with every team's alerts sent to the receiver (as the tests do)."""
    from rules.loader import load_catalog

    shutil.copytree(ROOT / "promises", target, ignore=shutil.ignore_patterns("teams.yaml"))
    catalog = load_catalog(ROOT / "promises")
    lines = ["teams:"]
    route = f"[{{webhook: '{receiver.url}', secret: '${{PROMISE_BENCH_HOOK_SECRET}}'}}]"
    for team in catalog.teams.values():
        lines += [f"  {team.id}:", f"    name: {team.name}", f"    alerts: {route}"]
    (target / "teams.yaml").write_text("\n".join(lines) + "\n")
    return target


# --- the server ----------------------------------------------------------------------------------


class Server:
    """`promise serve --no-live` in a session of its own, stopped with its children."""

    def __init__(
        self, database_url: str, promises: Path, workdir: Path, interval: float, workers: int = 1
    ):
        self.env = {
            **os.environ,
            "PROMISE_DATABASE_URL": database_url,
            "PROMISE_DIR": str(promises),
            "PROMISE_BENCH_HOOK_SECRET": SECRET,
        }
        self.workdir = workdir
        self.key = self.promise("keys", "create", f"bench-{os.getpid()}", "--scopes", "admin")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"serve-{self.port}.log"
        command = [PROMISE, "serve", "--no-live", "--port", str(self.port)]
        command += ["--interval", str(interval), "--workers", str(workers)]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped with its children
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def promise(self, *args: str) -> str:
        done = subprocess.run(
            [PROMISE, *args], cwd=self.workdir, env=self.env, capture_output=True, text=True
        )
        if done.returncode:
            raise SystemExit(f"promise {' '.join(args)} failed: {done.stderr}")
        return done.stdout.strip().splitlines()[-1]

    def _wait_ready(self) -> None:
        import httpx

        auth = {"Authorization": f"Bearer {self.key}"}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"promise serve exited:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", headers=auth, timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        log = self.log.read_text()[-3000:]
        raise SystemExit(f"promise serve did not become ready within 60 s:\n{log}")

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):  # the worker and dispatcher, if left
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


# --- the phases ------------------------------------------------------------------------------


def wrk(server: Server, workdir: Path, run: str, *, batch: int, threads: int,
        connections: int, duration: float, rate: float = 0) -> dict[str, Any]:  # fmt: skip
    script = workdir / "bench.lua"
    script.write_text(WRK_SCRIPT)
    env = {
        **os.environ,
        "BENCH_RUN": run,
        "BENCH_BATCH": str(batch),
        "BENCH_KEY": server.key,
        "BENCH_RATE_PER_THREAD": str(rate / threads),
    }
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{round(duration)}s"]
    command += ["--timeout", "10s", "-s", str(script), f"{server.url}"]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = [x for x in done.stdout.splitlines() if x.startswith("BENCHJSON ")]
    if done.returncode or not lines:
        raise SystemExit(f"wrk failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(lines[-1].removeprefix("BENCHJSON "))


def _counts(url: str) -> tuple[int, int]:

    from engine.storage.database import make_engine, session_factory

    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            return record_table.count_records(session), record_table.pending_count(session)
    finally:
        engine.dispose()


def _drain(url: str, timeout: float) -> tuple[float, int]:
    """Seconds until the worker has evaluated every queued record (or ``timeout``), and how
    many were still queued then."""
    started = time.monotonic()
    while True:
        pending = _counts(url)[1]
        if pending == 0 or time.monotonic() - started >= timeout:
            return time.monotonic() - started, pending
        time.sleep(0.25)


def phase_batch(server: Server, url: str, workdir: Path, args: argparse.Namespace):
    stored_before = _counts(url)[0]
    started = time.monotonic()
    result = wrk(server, workdir, "B", batch=100, threads=2, connections=8, duration=args.duration)
    sent_s = time.monotonic() - started
    drain, pending = _drain(url, args.drain_timeout)
    stored = _counts(url)[0] - stored_before
    wrong = result["bad"] + result["status"] + result["timeout"] + result["read"]
    accepted = result["requests"] * 100
    return {
        "phase": "batch of 100, 8 connections",
        "requests": result["requests"],
        "records": accepted,
        "stored": stored,
        "lost": max(accepted - stored, 0),
        "failed_requests": wrong,
        "accepted_per_s": round(accepted / (result["duration_us"] / 1e6)),
        "evaluated_per_s": round((stored - pending) / (sent_s + drain)),
        "drain_s": round(drain, 1),
        "still_queued": pending,
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "max_ms": result["max_us"] / 1000,
    }


def phase_single(server: Server, url: str, workdir: Path, args: argparse.Namespace):
    rate = args.rate
    result = wrk(
        server, workdir, "S", batch=1, threads=1, connections=64, duration=args.duration, rate=rate
    )
    drain, pending = _drain(url, args.drain_timeout)
    wrong = result["bad"] + result["status"] + result["timeout"] + result["read"]
    return {
        "phase": f"single records at {rate:g}/s, 64 connections",
        "requests": result["requests"],
        "records": result["requests"],
        "failed_requests": wrong,
        "accepted_per_s": round(result["requests"] / (result["duration_us"] / 1e6)),
        "drain_s": round(drain, 1),
        "still_queued": pending,
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "max_ms": result["max_us"] / 1000,
    }


def phase_alerts(server: Server, url: str, receiver: Receiver, args: argparse.Namespace):
    import httpx

    breaches = args.breaches
    run = f"{server.port}"  # customer ids of this run only
    with receiver.lock:
        receiver.arrivals.clear()
    now = datetime.now(UTC).replace(microsecond=0)
    headers = {"Authorization": f"Bearer {server.key}"}

    def record(n: int, kind: str, direction: str, channel: str, at: datetime) -> dict:
        return {
            "id": f"ALERT-{run}-{kind}-{n}",
            "occurred_at": at.isoformat(),
            "customer_id": f"C-ALERT-{run}-{n}",
            "channel": channel,
            "direction": direction,
            "type": kind,
            "team": "claims",
            "attributes": {"item": "policy_number"},
        }

    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        given = [record(n, "info_provided", "inbound", "web", now) for n in range(breaches)]
        for start in range(0, breaches, 500):
            client.post("/interactions", json=given[start : start + 500]).raise_for_status()
        _drain(url, args.drain_timeout)
        sent: dict[str, float] = {}
        began = time.monotonic()
        for n in range(breaches):
            slot = began + n * 0.1  # 10 breaches a second, open loop
            time.sleep(max(0.0, slot - time.monotonic()))
            at = datetime.fromtimestamp(now.timestamp() + 60 + n, UTC)
            body = record(n, "info_requested", "outbound", "email", at)
            sent[f"C-ALERT-{run}-{n}"] = time.monotonic()
            answer = client.post("/interactions", json=body)
            answer.raise_for_status()
    deadline = time.monotonic() + 60
    arrived: dict[str, float] = {}
    while time.monotonic() < deadline and len(arrived) < breaches:
        with receiver.lock:
            for at, alert in receiver.arrivals:
                customer = alert.get("customer_id")
                if customer in sent and alert.get("state") == "broken":
                    arrived.setdefault(customer, at)
        time.sleep(0.2)
    latencies = [arrived[c] - sent[c] for c in arrived]
    return {
        "phase": f"POST to webhook alert, {breaches} breaches at 10/s",
        "records": breaches,
        "alerts_received": len(arrived),
        "lost": breaches - len(arrived),
        "p50_ms": (percentile(latencies, 50) or 0) * 1000,
        "p99_ms": (percentile(latencies, 99) or 0) * 1000,
        "max_ms": max(latencies, default=0) * 1000,
    }


def run_backend(
    backend: str, args: argparse.Namespace, workdir: Path, receiver: Receiver
) -> list[dict[str, Any]]:
    """Each phase on a fresh database and server, so no phase inherits another's backlog."""
    promises = workdir / "promises"
    if not promises.exists():
        catalog_to(receiver, promises)
    phases = [
        ("batch", lambda s, u: phase_batch(s, u, workdir, args)),
        ("single", lambda s, u: phase_single(s, u, workdir, args)),
        ("alerts", lambda s, u: phase_alerts(s, u, receiver, args)),
    ]
    rows = []
    for name, phase in phases:
        with contextlib.ExitStack() as stack:
            if backend == "sqlite":
                url = f"sqlite:///{workdir}/{name}.db"
            else:
                url = stack.enter_context(fresh_postgres(args.postgres))
            workers = args.workers if url.startswith("postgresql") else 1
            server = Server(url, promises, workdir, args.interval, workers)
            stack.callback(server.stop)
            profiles = _profile(server, workdir, f"{backend}-{name}", args)
            before = load_average()
            row = {"backend": backend, **phase(server, url)}
            row["load_avg"] = max(before, load_average())
            for process in profiles:
                process.wait()
            rows.append(row)
            print(f"  {backend}: {row['phase']} done", file=sys.stderr)
    return rows


def _profile(
    server: Server, workdir: Path, label: str, args: argparse.Namespace
) -> list[subprocess.Popen[bytes]]:
    """With --profile DIR: py-spy the API and the worker for the phase's first seconds."""
    if not args.profile:
        return []
    spy = Path(sys.executable).parent / "py-spy"
    pids = {"api": server.process.pid}
    children = subprocess.run(
        ["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True
    ).stdout.split()
    for pid in children:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"worker" in command:
            pids["worker"] = int(pid)
    out = Path(args.profile)
    out.mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [
                str(spy),
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(round(args.duration)),
                "--rate",
                "50",
                "--format",
                "raw",
                "-o",
                str(out / f"{label}-{role}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for role, pid in pids.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", help="also on PostgreSQL: a server URL")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--duration", type=float, default=20, help="seconds per wrk phase")
    parser.add_argument("--rate", type=float, default=200, help="single POSTs per second")
    parser.add_argument("--breaches", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.5, help="worker/dispatcher poll")
    parser.add_argument(
        "--workers", type=int, default=1, help="evaluation workers on PostgreSQL (serve --workers)"
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=120, help="seconds to wait for the worker"
    )
    parser.add_argument("--profile", help="a directory: py-spy the API and worker per phase")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    terminate_on_sigterm()
    load_start = load_average()
    info = machine(args.postgres)
    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="api-load-")))
        receiver = Receiver()
        stack.callback(receiver.close)
        if not args.no_sqlite:
            rows += run_backend("sqlite", args, tmp, receiver)
        if args.postgres:
            rows += run_backend("postgresql", args, tmp, receiver)

    goals = []
    for backend in sorted({r["backend"] for r in rows}, key=lambda b: b != "sqlite"):
        batch, single, alerts = (r for r in rows if r["backend"] == backend)
        goals += [
            {
                "goal": f"{backend}: API >= {GOAL_BATCH:,} records/s in batches of 100",
                "measured": f"{batch['accepted_per_s']:,} accepted/s, "
                f"{batch['evaluated_per_s']:,} evaluated/s",
                "met": batch["accepted_per_s"] >= GOAL_BATCH,
            },
            {
                "goal": f"{backend}: single POST p99 < {GOAL_P99_MS} ms at {args.rate:g}/s",
                "measured": f"p99 {single['p99_ms']:.1f} ms at {single['accepted_per_s']}/s",
                "met": single["p99_ms"] < GOAL_P99_MS,
            },
            {
                "goal": f"{backend}: POST-to-alert p99 < {GOAL_ALERT_P99_S:g} s",
                "measured": f"p99 {alerts['p99_ms'] / 1000:.2f} s, "
                f"{alerts['alerts_received']}/{alerts['records']} alerts",
                "met": alerts["p99_ms"] / 1000 < GOAL_ALERT_P99_S and not alerts["lost"],
            },
            {
                "goal": f"{backend}: nothing dropped under load",
                "measured": f"{batch.get('lost', 0)} records lost, "
                f"{batch['failed_requests'] + single['failed_requests']} failed requests, "
                f"{alerts['lost']} alerts missing",
                "met": not (
                    batch.get("lost")
                    or batch["failed_requests"]
                    or single["failed_requests"]
                    or alerts["lost"]
                ),
            },
        ]
    generator = "wrk 4.1 (Debian), Lua script; httpx for the alert phase"
    columns = [
        ("backend", "backend", ""),
        ("phase", "phase", ""),
        ("records", "records", ","),
        ("accepted_per_s", "accepted/s", ","),
        ("evaluated_per_s", "evaluated/s", ","),
        ("drain_s", "drain s", ".1f"),
        ("still_queued", "queued", ","),
        ("p50_ms", "p50 ms", ".1f"),
        ("p99_ms", "p99 ms", ".1f"),
        ("max_ms", "max ms", ".1f"),
        ("failed_requests", "failed", ","),
        ("lost", "lost", ","),
        ("load_avg", "load avg", ".2f"),
    ]
    report(
        "api_load",
        as_json=args.json,
        info=info,
        load_start=load_start,
        rows=rows,
        columns=columns,
        goals=goals,
        note=f"load generator: {generator}; worker/dispatcher poll {args.interval:g} s; "
        "promise serve --no-live",
        generator=generator,
        interval_s=args.interval,
    )


if __name__ == "__main__":
    main()
