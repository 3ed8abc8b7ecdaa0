"""Real local receivers for alert tests: an HTTP webhook endpoint and an SMTP server."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    def signed_by(self, secret: str) -> bool:
        """Checks the signature the way a receiver should (constant-time compare)."""
        timestamp = self.headers["x-promise-timestamp"]
        expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + self.body, hashlib.sha256)
        return hmac.compare_digest(
            self.headers["x-promise-signature"], f"sha256={expected.hexdigest()}"
        )


@dataclass
class WebhookReceiver:
    """A real HTTP server on a fixed local port that can go down and come back.

    ``status`` is what it answers (e.g. 500 to refuse); ``delay`` makes it slow.
    """

    port: int = field(default_factory=free_port)
    status: int = 200
    delay: float = 0.0
    received: list[Delivery] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(receiver.delay)
                if receiver.status < 300:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.received.append(Delivery(self.path, headers, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def keys(self) -> list[str]:
        return [d.headers["idempotency-key"] for d in self.received]

    def wait_for(self, count: int, timeout: float = 20) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} of {count} deliveries arrived")
            time.sleep(0.05)
        return self.received


class _Collect:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.content.decode("utf-8"))
        )
        return "250 Message accepted for delivery"


class SmtpReceiver:
    """A real SMTP server (aiosmtpd) on a local port, keeping what it receives."""

    def __init__(self) -> None:
        self.port = free_port()
        self._handler = _Collect()
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[tuple[str, list[str], str]]:
        return self._handler.messages

    def __enter__(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


# --- what chat platforms accept ------------------------------------------------------------------
# Checked as each platform documents its incoming webhooks: Slack's Block Kit message
# (https://api.slack.com/messaging/webhooks) and a Microsoft Teams message carrying one
# Adaptive Card (learn.microsoft.com, "Send Adaptive Cards using an Incoming Webhook").


def slack_problems(payload: dict[str, Any]) -> list[str]:
    """Why Slack would refuse or garble ``payload`` (empty when it is a valid message)."""
    problems = []
    if not isinstance(payload.get("text"), str) or not payload["text"]:
        problems.append("no 'text' (the notification's fallback)")
    for n, block in enumerate(payload.get("blocks", [])):
        text = block.get("text", {})
        if block.get("type") == "header":
            if text.get("type") != "plain_text" or not 0 < len(text.get("text", "")) <= 150:
                problems.append(f"block {n}: a header is plain_text of 1 to 150 characters")
        elif block.get("type") == "section":
            if text.get("type") not in ("mrkdwn", "plain_text"):
                problems.append(f"block {n}: a section's text is mrkdwn or plain_text")
            if not 0 < len(text.get("text", "")) <= 3_000:
                problems.append(f"block {n}: a section's text has 1 to 3,000 characters")
        else:
            problems.append(f"block {n}: unexpected type {block.get('type')!r}")
    return problems


def teams_problems(payload: dict[str, Any]) -> list[str]:
    """Why Teams would refuse ``payload`` (empty when it is a message with one card)."""
    if payload.get("type") != "message":
        return ["the top-level 'type' must be 'message'"]
    attachments = payload.get("attachments") or [{}]
    attachment = attachments[0]
    if len(attachments) != 1:
        return ["one attachment, the card"]
    if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
        return ["the attachment's contentType must be application/vnd.microsoft.card.adaptive"]
    card = attachment.get("content", {})
    problems = []
    if card.get("type") != "AdaptiveCard" or not card.get("version"):
        problems.append("the content is an AdaptiveCard with a version")
    if not card.get("body") or any(
        b.get("type") != "TextBlock" or not b.get("text") for b in card["body"]
    ):
        problems.append("the body is non-empty TextBlocks")
    for action in card.get("actions", []):
        if action.get("type") != "Action.OpenUrl" or not action.get("url"):
            problems.append("an action opens a URL")
    return problems
