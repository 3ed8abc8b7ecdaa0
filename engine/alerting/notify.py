"""Sending one alert on one route: a signed webhook, a chat channel (Slack, Microsoft Teams),
an email over SMTP, or a log line.

Message text comes from Jinja2 templates: ``subject.txt.j2`` and ``alert.txt.j2``, built in
(``engine/alerting/templates/``) and overridable per catalog (``promises/templates/``) and per
team (``promises/templates/<team>/``). A sender raises :class:`DeliveryFailed` with a reason a
person can act on; the dispatcher decides about retries.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import smtplib
import time
from collections.abc import Mapping
from email.message import EmailMessage
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jinja2
import orjson

from engine.alerting import chat
from engine.alerting.routes import describe
from engine.settings import Settings

log = logging.getLogger("promise.alerts")
BUILT_IN = Path(__file__).resolve().parent / "templates"
SUBJECT_LIMIT = 64
"""Subjects are cut to what a phone shows of a notification's title or an email's subject
in a list (one or two lines); the templates put state, promise and customer first."""


class DeliveryFailed(Exception):
    """The route did not take the message; the text says why."""


@cache
def _templates(catalog_dir: Path, team: str) -> jinja2.Environment:
    loader = jinja2.FileSystemLoader(
        [catalog_dir / "templates" / team, catalog_dir / "templates", BUILT_IN]
    )
    return jinja2.Environment(
        loader=loader,
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render(catalog_dir: Path, message: Mapping[str, Any]) -> tuple[str, str]:
    """The subject line and text of ``message`` (an alert, correction or digest payload)."""
    env = _templates(catalog_dir.resolve(), str(message["team"]))
    try:
        subject = env.get_template("subject.txt.j2").render(alert=message)
        text = env.get_template("alert.txt.j2").render(alert=message)
    except jinja2.TemplateError as exc:
        name = getattr(exc, "name", None) or getattr(exc, "filename", None) or "template"
        raise DeliveryFailed(f"alert template {name} failed: {exc}") from exc
    return chat.cut(" ".join(subject.split()), SUBJECT_LIMIT), text


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``: what receivers check."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def send(
    route: Mapping[str, Any],
    message: Mapping[str, Any],
    settings: Settings,
    client: httpx.Client,
    secrets: Mapping[str, str],
) -> None:
    """Deliver ``message`` on ``route`` (as :func:`engine.alerting.routes.stored` keeps it),
    signing webhooks with ``secrets`` (:func:`engine.alerting.routes.secrets`)."""
    subject, text = render(settings.dir, message)
    if "webhook" in route:
        _webhook(route, {**message, "subject": subject, "text": text}, client, secrets)
    elif "chat" in route:
        _chat(route, subject, text, message, client, secrets)
    elif "email" in route:
        _email(str(route["email"]), subject, text, message, settings)
    else:
        log.info("%s", orjson.dumps({**message, "subject": subject}).decode())


def _webhook(
    route: Mapping[str, Any],
    message: Mapping[str, Any],
    client: httpx.Client,
    secrets: Mapping[str, str],
) -> None:
    body = orjson.dumps(message)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": str(message["id"]),
        "X-Promise-Timestamp": str(timestamp),
    }
    secret_env = route.get("secret_env")
    if secret_env:
        secret = secrets.get(secret_env)
        if not secret:
            raise DeliveryFailed(
                f"the webhook secret is unset: set the environment variable {secret_env} "
                "(named in teams.yaml) where the dispatcher runs, then restart the dispatcher"
            )
        headers["X-Promise-Signature"] = signature(secret, timestamp, body)
    _post(client, str(route["webhook"]), body, headers, f"POST {route['webhook']}")


def _chat(
    route: Mapping[str, Any],
    subject: str,
    text: str,
    message: Mapping[str, Any],
    client: httpx.Client,
    secrets: Mapping[str, str],
) -> None:
    """Post to a chat channel's incoming webhook. Its URL is a secret: errors name the route
    by its environment variable, never by the URL."""
    shown = describe(route)
    url = secrets.get(str(route["url_env"]))
    if not url:
        raise DeliveryFailed(
            f"{shown}: the channel's webhook URL is unset: set the environment variable "
            f"{route['url_env']} (named in teams.yaml) where the dispatcher runs, then "
            "restart the dispatcher"
        )
    page = message.get("dashboard_link")
    body = orjson.dumps(chat.message(str(route["chat"]), subject, text, page))
    _post(client, url, body, {"Content-Type": "application/json"}, shown)


def _post(
    client: httpx.Client, url: str, body: bytes, headers: Mapping[str, str], shown: str
) -> None:
    """POST ``body``; anything but a 2xx answer is a failed delivery, told as ``shown``."""
    try:
        answer = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        reason = str(exc).replace(url, "<url>")  # a chat URL is a secret
        raise DeliveryFailed(f"{shown}: {type(exc).__name__}: {reason}") from exc
    if not answer.is_success:
        raise DeliveryFailed(f"{shown} answered {answer.status_code}: {answer.text[:200]}")


def _email(
    address: str, subject: str, text: str, message: Mapping[str, Any], settings: Settings
) -> None:
    email = EmailMessage()
    email["From"] = settings.smtp_from
    email["To"] = address
    email["Subject"] = subject
    email["Message-ID"] = f"<{message['id']}@promise-engine>"  # the idempotency key
    email.set_content(text)
    try:
        with smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=settings.webhook_timeout_seconds
        ) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password or "")
            smtp.send_message(email)
    except (OSError, smtplib.SMTPException) as exc:
        where = f"{settings.smtp_host}:{settings.smtp_port}"
        raise DeliveryFailed(f"SMTP {where} to {address}: {type(exc).__name__}: {exc}") from exc
