"""The long-running processes: the HTTP service (supervising a worker and a dispatcher),
the evaluation worker, and the alert dispatcher."""

from __future__ import annotations

import signal
import threading
from enum import StrEnum
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from engine.errors import InvalidDefinition
from engine.settings import Settings
from engine.shards import SHARDS, Share
from rules.errors import DefinitionError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from api.worker import Supervisor


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"


Lifeline = Annotated[
    int | None,
    typer.Option(
        hidden=True, help="Set by `promise serve`: a pipe whose end-of-file means it is gone."
    ),
]


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    live: Annotated[
        bool,
        typer.Option(
            help="Advance the clock with the wall clock, so deadlines fall due without new records."
        ),
    ] = True,
    interval: Annotated[float, typer.Option(help="Worker poll interval, seconds.")] = 0.5,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=SHARDS,
            help="Evaluation worker processes. Several split the scopes of a PostgreSQL "
            "database between them (each owns a share, see `promise worker --help`); "
            "SQLite has one writer, so one worker.",
        ),
    ] = 1,
) -> None:
    """Run the HTTP API, with evaluation workers and an alert dispatcher process beside it
    (each restarted if it dies).

    Uses $PROMISE_DATABASE_URL (default: sqlite:///promise.db in this directory) and
    $PROMISE_DIR (default: ./promises). OpenAPI at /docs and /openapi.json.

    SIGTERM or SIGINT: requests in flight, the worker's round and the dispatcher's deliveries
    are finished, what still runs after $PROMISE_SHUTDOWN_GRACE_SECONDS (default 10) is
    killed, and it exits 0. Its children stop by themselves if it is killed outright.

    Example: `promise serve --port 8000`
    """
    from api.app import create_app
    from api.worker import Supervisor, stop_all

    settings = Settings()
    if workers > 1 and not settings.database_url.startswith("postgresql"):
        typer.echo(
            f"--workers {workers}: SQLite has one writer, so several workers would only wait "
            "for each other; use PostgreSQL (PROMISE_DATABASE_URL=postgresql://...)",
            err=True,
        )
        raise typer.Exit(2)
    # Until the end of startup, and again when uvicorn has shut down and re-raises the
    # signal it caught, SIGTERM and SIGINT leave through the ``finally`` below.
    signal.signal(signal.SIGTERM, _leave)
    signal.signal(signal.SIGINT, _leave)
    try:
        application = create_app(settings)  # migrates and loads the catalog before the worker
    except DefinitionError as exc:
        typer.echo(f"the promise catalog is invalid (run `promise check`):\n{exc}", err=True)
        raise typer.Exit(1) from None
    supervisors = [
        *(
            Supervisor(
                "worker",
                "--interval",
                str(interval),
                "--live" if live else "--no-live",
                "--share",
                f"{index}/{workers}",
            )
            for index in range(1, workers + 1)
        ),
        Supervisor("dispatcher", "--interval", str(interval)),
    ]

    def reload_on_hangup(_signal: int, _frame: object) -> None:
        try:
            changed = application.state.promise_state.reload()
            typer.echo(f"reloaded promises; changed: {', '.join(changed) or 'none'}", err=True)
        except InvalidDefinition as exc:
            problems = "\n".join(exc.problems)
            typer.echo(
                f"promise files are invalid; keeping the running promises:\n{problems}", err=True
            )

    try:
        for supervisor in supervisors:
            supervisor.start()
        signal.signal(signal.SIGHUP, reload_on_hangup)
        _serve_http(application, host, port, settings.shutdown_grace_seconds, supervisors)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the children are being stopped
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_all(supervisors, settings.shutdown_grace_seconds)


def _leave(_signal: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def _serve_http(
    application: FastAPI, host: str, port: int, grace: float, supervisors: list[Supervisor]
) -> None:
    """uvicorn until SIGTERM or SIGINT, when it finishes the requests in flight (at most
    ``grace`` seconds) while the supervised children finish their rounds."""
    import uvicorn

    from api.logs import uvicorn_log_config

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            for supervisor in supervisors:
                supervisor.terminate()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        application,
        host=host,
        port=port,
        log_level="info",
        log_config=uvicorn_log_config(),
        timeout_graceful_shutdown=int(grace),
    )
    Server(config).run()


def worker(
    live: Annotated[bool, typer.Option(help="Advance the clock with the wall clock.")] = True,
    interval: Annotated[float, typer.Option(help="Poll interval when idle, seconds.")] = 0.5,
    once: Annotated[bool, typer.Option("--once", help="Drain the queue, then exit.")] = False,
    batch: Annotated[int, typer.Option(min=1, help="Records per transaction.")] = 2_000,
    share: Annotated[
        str,
        typer.Option(
            help=f"This worker's share of the scopes when several evaluate one PostgreSQL "
            f"database: K/N, the K-th of N workers (N up to {SHARDS}). Each owns its scopes, "
            "so none waits for another; the first also raises objective alerts, applies "
            "retention and evaluates scopes released from quarantine.",
        ),
    ] = "1/1",
    log_level: Annotated[
        LogLevel, typer.Option(help="debug: also each round's shards and timing.")
    ] = LogLevel.info,
    lifeline: Lifeline = None,
) -> None:
    """Evaluate accepted records from the database queue (started by `promise serve`,
    which gives each of its --workers its --share).

    SIGTERM or SIGINT: the round under way is finished, then it exits. With --once it
    exits when every worker's queue is empty and what fell due by the last record's time
    in its shards is decided.

    Examples: `promise worker --no-live --once`; two workers of one PostgreSQL database:
    `promise worker --share 1/2 & promise worker --share 2/2`
    """
    import logging

    from api.worker import run_worker

    try:
        portion = Share.parse(share)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--share") from None
    logging.basicConfig(level=log_level.value.upper(), format="%(asctime)s %(name)s %(message)s")
    settings = Settings()
    stop = _stop_when_told(lifeline, settings)
    evaluated = run_worker(
        settings, live=live, interval=interval, once=once, batch=batch, stop=stop, share=portion
    )
    typer.echo(f"evaluated {evaluated} records", err=True)


def dispatcher(
    interval: Annotated[float, typer.Option(help="Poll interval when idle, seconds.")] = 0.5,
    once: Annotated[bool, typer.Option("--once", help="Send what is due now, then exit.")] = False,
    lifeline: Lifeline = None,
) -> None:
    """Deliver queued alerts to the owning teams' routes (started by `promise serve`).

    Retries with exponential backoff ($PROMISE_ALERT_BACKOFF_SECONDS, doubling) and marks a
    delivery dead after $PROMISE_ALERT_MAX_ATTEMPTS; applies silences and digests from
    teams.yaml and the API. Webhook secrets and SMTP settings come from the environment.
    SIGTERM or SIGINT: the deliveries under way are finished, then it exits.

    Example: `CC_WEBHOOK_SECRET=s3cret promise dispatcher --once`
    """
    import logging

    from api.worker import run_dispatcher

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings()
    stop = _stop_when_told(lifeline, settings)
    attempted = run_dispatcher(settings, interval=interval, once=once, stop=stop)
    typer.echo(f"attempted {attempted} deliveries", err=True)


def _stop_when_told(lifeline: int | None, settings: Settings) -> threading.Event:
    """Set by SIGTERM or SIGINT, and, under `promise serve`, when ``serve`` is gone."""
    from engine.lifeline import die_with_parent, stop_on_signals

    stop = stop_on_signals()
    if lifeline is not None:
        die_with_parent(lifeline, settings.shutdown_grace_seconds)
    return stop
