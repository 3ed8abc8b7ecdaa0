"""Every error answer in one shape, ``{"detail": text, "errors": [{"field", "reason"}]}``, and
the one mapping of engine errors to HTTP answers.

Routes let :class:`engine.errors.PromiseEngineError` propagate; its kind sets the status (and
``problems`` lists invalid definitions). ``HTTPException`` is left for what only HTTP knows:
keys, media types, sizes; its detail is a text, or a list of ``{"field", "reason"}`` that
becomes ``errors``. FastAPI's validation errors name each parameter or body field at fault.
Redirects raised as ``HTTPException`` (the dashboard's login) keep FastAPI's handling.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from api.schemas import ErrorOut, Problem
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
RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorOut, "description": "Refused: `detail` says why, `errors` names fields."}
}
"""Declared on every route, so OpenAPI shows the one error shape."""


def refusal(description: str, model: type[ErrorOut] = ErrorOut) -> dict[str, Any]:
    """A route's own 4xx in OpenAPI, in the one shape."""
    return {"model": model, "description": description}


_PLACES = {"body", "query", "path", "header", "cookie"}


def error_response(
    status: int,
    detail: str,
    errors: Sequence[Problem] = (),
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = ErrorOut(detail=detail, errors=list(errors)).model_dump()
    return JSONResponse({**body, **extra}, status_code=status, headers=headers)


def register(app: FastAPI) -> None:
    app.add_exception_handler(PromiseEngineError, _engine_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    for outage in DATABASE_DOWN:
        app.add_exception_handler(outage, _database_unavailable)


def _engine_error(request: Request, exc: PromiseEngineError) -> JSONResponse:
    status = next(code for kind, code in STATUS.items() if isinstance(exc, kind))
    detail = str(exc)
    if isinstance(exc, OtherTeam):  # name the key that tried (set by api.deps.presented)
        key = request.state.key
        detail = f"the key '{key.name}' may only act for team '{key.team}': {exc}"
    extra = {"problems": exc.problems} if isinstance(exc, InvalidDefinition) else {}
    headers = {}
    if isinstance(exc, Unavailable) and exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return error_response(status, detail, headers=headers, **extra)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code < 400:  # a redirect
        return await http_exception_handler(request, exc)
    if isinstance(exc.detail, list):
        errors = [Problem(**e) for e in exc.detail]
        detail = _summary(errors)
    else:
        errors, detail = [], str(exc.detail)
    return error_response(exc.status_code, detail, errors, exc.headers)


def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        Problem(field=_field(e["loc"]), reason=e["msg"].removeprefix("Value error, "))
        for e in exc.errors()
    ]
    return error_response(422, _summary(errors), errors)


def _summary(errors: list[Problem]) -> str:
    return "; ".join(f"{e.field}: {e.reason}" for e in errors)


def _field(loc: Sequence[str | int]) -> str:
    """``("query", "state")`` -> ``state``; ``("body", "scopes", 0)`` -> ``scopes.0``."""
    path = loc[1:] if loc and loc[0] in _PLACES else loc
    return ".".join(str(part) for part in path) or "(body)"


def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    # The database is down, restarting or locked. The request's transaction almost
    # certainly did not commit; sending it again is safe (stored ids answer "duplicate").
    log.warning("database unavailable: %s", str(exc).splitlines()[0])
    return error_response(
        503,
        "the database is unavailable; send the request again shortly",
        headers={"Retry-After": "1"},
    )
