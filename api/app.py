"""The FastAPI application, assembled: state, routers, error handlers and middleware.

Routes live in ``api/routes`` (the JSON API) and ``api/ui`` (the dashboard); they are thin
over ``engine`` services, and engine errors become HTTP answers in ``api/errors.py`` only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import unquote

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors
from api.deps import AppState
from api.routes import alerts, customers, interactions, keys, ops, outcomes, promises, reports
from api.ui import pages
from engine.settings import Settings


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    app.state.promise_state.sandbox.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(
        title="Promise engine",
        summary="Customer promises checked against every interaction, in event time.",
        version="0.1.0",
        lifespan=_lifespan,
        responses=errors.RESPONSES,
    )
    app.state.promise_state = AppState(settings)
    for module in (pages, reports, alerts, customers, ops, interactions, outcomes, promises, keys):
        app.include_router(module.router)
    errors.register(app)
    app.add_middleware(_RefuseNul)
    app.add_middleware(_SecurityHeaders)
    return app


_HEADERS = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff")]
_REFERRER_UI = b"same-origin"
"""On dashboard pages: under ``no-referrer`` a browser sends ``Origin: null`` with the forms
the page posts (the Fetch standard), and the forms' origin check could not tell the
dashboard from an attacker. ``same-origin`` still keeps URLs from every other origin."""
_CSP = (
    b"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    b"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
"""Pages are server-rendered without script (styles are inline in the templates); a script
that slipped through escaping would not run."""
_SWAGGER = ("/docs", "/redoc")
"""FastAPI's API explorers load their script from a CDN and start it inline: not framed,
not further restricted."""


class _SecurityHeaders:
    """Headers on every answer, in one place: no framing (clickjacking), no MIME sniffing,
    no referrer to other origins (URLs hold customer ids), no caching (answers hold personal
    data), and a content security policy without script. Plain ASGI, as ``_RefuseNul``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        swagger = path in _SWAGGER or path.startswith("/docs/")
        csp = b"frame-ancestors 'none'" if swagger else _CSP
        dashboard = path == "/ui" or path.startswith("/ui/")
        referrer = _REFERRER_UI if dashboard else b"no-referrer"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                named = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in _HEADERS if n not in named]
                headers.append((b"content-security-policy", csp))
                headers.append((b"referrer-policy", referrer))
                if b"cache-control" not in named:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class _RefuseNul:
    """No database can store NUL in text: refuse it in URLs before it reaches one. Plain
    ASGI, because Starlette's BaseHTTPMiddleware costs every request a task and streams."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"").decode("latin-1")
            if "\x00" in scope["path"] or "%00" in query or "\x00" in unquote(query):
                answer = errors.error_response(
                    400, "NUL (\\u0000) characters are not allowed in URLs"
                )
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)
