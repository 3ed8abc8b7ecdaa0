"""The long-running processes: the HTTP service (supervising a worker and a dispatcher),
the evaluation worker, and the alert dispatcher."""

from __future__ import annotations

import signal
from typing import Annotated

import typer

from engine.errors import InvalidDefinition
from engine.settings import Settings
from rules.errors import DefinitionError


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
) -> None:
    """Run the HTTP API, with an evaluation worker and an alert dispatcher process beside it
    (each restarted if it dies).

    Uses $PROMISE_DATABASE_URL (default: sqlite:///promise.db in this directory) and
    $PROMISE_DIR (default: ./promises). OpenAPI at /docs and /openapi.json.

    Example: `promise serve --port 8000`
    """
    import uvicorn

    from api.app import create_app
    from api.logs import uvicorn_log_config
    from api.worker import Supervisor

    try:
        application = create_app(Settings())  # migrates and loads the catalog before the worker
    except DefinitionError as exc:
        typer.echo(f"the promise catalog is invalid (run `promise check`):\n{exc}", err=True)
        raise typer.Exit(1) from None
    supervisors = [
        Supervisor("worker", "--interval", str(interval), "--live" if live else "--no-live"),
        Supervisor("dispatcher", "--interval", str(interval)),
    ]
    for supervisor in supervisors:
        supervisor.start()

    def reload_on_hangup(_signal: int, _frame: object) -> None:
        try:
            changed = application.state.promise_state.reload()
            typer.echo(f"reloaded promises; changed: {', '.join(changed) or 'none'}", err=True)
        except InvalidDefinition as exc:
            problems = "\n".join(exc.problems)
            typer.echo(
                f"promise files are invalid; keeping the running promises:\n{problems}", err=True
            )

    signal.signal(signal.SIGHUP, reload_on_hangup)
    try:
        uvicorn.run(
            application, host=host, port=port, log_level="info", log_config=uvicorn_log_config()
        )
    finally:
        for supervisor in supervisors:
            supervisor.stop()


def worker(
    live: Annotated[bool, typer.Option(help="Advance the clock with the wall clock.")] = True,
    interval: Annotated[float, typer.Option(help="Poll interval when idle, seconds.")] = 0.5,
    once: Annotated[bool, typer.Option("--once", help="Drain the queue, then exit.")] = False,
    batch: Annotated[int, typer.Option(min=1, help="Records per transaction.")] = 2_000,
) -> None:
    """Evaluate accepted records from the database queue (started by `promise serve`).

    Run several against one PostgreSQL database to share the work.

    Example: `promise worker --no-live --once`
    """
    import logging

    from api.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    evaluated = run_worker(Settings(), live=live, interval=interval, once=once, batch=batch)
    typer.echo(f"evaluated {evaluated} records", err=True)


def dispatcher(
    interval: Annotated[float, typer.Option(help="Poll interval when idle, seconds.")] = 0.5,
    once: Annotated[bool, typer.Option("--once", help="Send what is due now, then exit.")] = False,
) -> None:
    """Deliver queued alerts to the owning teams' routes (started by `promise serve`).

    Retries with exponential backoff ($PROMISE_ALERT_BACKOFF_SECONDS, doubling) and marks a
    delivery dead after $PROMISE_ALERT_MAX_ATTEMPTS; applies silences and digests from
    teams.yaml and the API. Webhook secrets and SMTP settings come from the environment.

    Example: `CC_WEBHOOK_SECRET=s3cret promise dispatcher --once`
    """
    import logging

    from api.worker import run_dispatcher

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    attempted = run_dispatcher(Settings(), interval=interval, once=once)
    typer.echo(f"attempted {attempted} deliveries", err=True)
