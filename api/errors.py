"""The one mapping of engine errors to HTTP answers, and the database-outage answer.

Routes let :class:`engine.errors.PromiseEngineError` propagate; the handler here answers
``{"detail": message}`` with the status of its kind (and ``problems`` for invalid
definitions). ``HTTPException`` is left for what only HTTP knows: keys, media types, sizes.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from engine.errors import (
    DATABASE_DOWN,
    Forbidden,
    Invalid,
    InvalidDefinition,
    Malformed,
    NotFound,
    OtherTeam,
    PromiseEngineError,
    TooLarge,
    Unavailable,
)

log = logging.getLogger("promise.api")
STATUS: dict[type[PromiseEngineError], int] = {
    NotFound: 404,
    Forbidden: 403,
    Malformed: 400,
    Invalid: 422,
    TooLarge: 400,
    Unavailable: 503,
}
"""Each kind of engine error, and the status code that answers it."""


def register(app: FastAPI) -> None:
    app.add_exception_handler(PromiseEngineError, _engine_error)  # type: ignore[arg-type]
    for outage in DATABASE_DOWN:
        app.add_exception_handler(outage, _database_unavailable)


def _engine_error(request: Request, exc: PromiseEngineError) -> JSONResponse:
    status = next(code for kind, code in STATUS.items() if isinstance(exc, kind))
    body: dict[str, object] = {"detail": str(exc)}
    if isinstance(exc, OtherTeam):  # name the key that tried (set by api.deps.authenticated)
        key = request.state.key
        body["detail"] = f"the key '{key.name}' may only act for team '{key.team}': {exc}"
    if isinstance(exc, InvalidDefinition):
        body["problems"] = exc.problems
    headers = {}
    if isinstance(exc, Unavailable) and exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse(body, status_code=status, headers=headers)


def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    # The database is down, restarting or locked. The request's transaction almost
    # certainly did not commit; sending it again is safe (stored ids answer "duplicate").
    log.warning("database unavailable: %s", str(exc).splitlines()[0])
    return JSONResponse(
        {"detail": "the database is unavailable; send the request again shortly"},
        status_code=503,
        headers={"Retry-After": "1"},
    )
