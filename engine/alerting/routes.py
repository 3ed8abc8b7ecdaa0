"""Alert routes: the one home for how a route is stored with each delivery, how it is shown,
the idempotency key of an alert, and the secrets webhooks are signed with.

A delivery keeps its route as JSON (so it outlives edits of teams.yaml). Secrets never go
there: a webhook route stores the *name* of its secret's environment variable, a chat route
(Slack, Microsoft Teams) the name of the variable holding its URL, and the dispatcher
resolves every name its catalog uses when it loads the catalog, not on each send.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules.models import Catalog, ChatRoute, EmailRoute, Route, WebhookRoute


def stored(route: Route) -> dict[str, Any]:
    """The JSON form kept with each delivery."""
    if isinstance(route, WebhookRoute):
        return {"webhook": route.url, "secret_env": route.secret_env}
    if isinstance(route, EmailRoute):
        return {"email": route.address}
    if isinstance(route, ChatRoute):
        return {"chat": route.platform, "url_env": route.url_env}
    return {"log": True}


def describe(route: Mapping[str, Any]) -> str:
    """A stored route as people read it (never with its secret)."""
    if "webhook" in route:
        return f"webhook {route['webhook']}"
    if "email" in route:
        return f"email {route['email']}"
    if "chat" in route:
        return f"{route['chat']} (${{{route['url_env']}}})"
    return "log"


def alert_key(alert_id: int) -> str:
    """The idempotency key of an alert, the same on every attempt and every route."""
    return f"alert-{alert_id}"


def secrets(catalog: Catalog, environ: Mapping[str, str]) -> dict[str, str]:
    """The webhook secrets and chat URLs ``catalog``'s routes name, by variable name, as set
    in ``environ`` (unset or empty ones are left out: a send on such a route fails and says
    which)."""
    names = {
        name
        for team in catalog.teams.values()
        for route in team.routes
        if (name := _environment_name(route))
    }
    return {name: environ[name] for name in sorted(names) if environ.get(name)}


def _environment_name(route: Route) -> str | None:
    if isinstance(route, WebhookRoute):
        return route.secret_env
    if isinstance(route, ChatRoute):
        return route.url_env
    return None
