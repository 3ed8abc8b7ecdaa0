"""The message a chat platform's incoming webhook takes: Slack's Block Kit message and a
Microsoft Teams Adaptive Card.

Both carry the alert's subject (what a phone notification shows), its text line by line,
and a link to the outcome when there is one. Teams renders markdown in a text block and
joins single line breaks, so each line of the text is a block of its own; Slack's
``mrkdwn`` needs ``&``, ``<`` and ``>`` escaped, or a value could forge a link or a mention.
"""

from __future__ import annotations

from typing import Any

SLACK_HEADER_LIMIT = 150
SLACK_SECTION_LIMIT = 3_000
"""Slack refuses a header over 150 characters and a section text over 3,000."""
TEAMS_CARD_VERSION = "1.4"
"""The Adaptive Card schema version Teams renders on every client."""


def message(platform: str, subject: str, text: str, link: str | None) -> dict[str, Any]:
    """The JSON body to post to ``platform``'s (``slack`` or ``teams``) incoming webhook;
    ``link`` is the outcome's dashboard page."""
    return _slack(subject, text, link) if platform == "slack" else _teams(subject, text, link)


def _slack(subject: str, text: str, link: str | None) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": cut(subject, SLACK_HEADER_LIMIT)},
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": cut(_slack_escape(text), SLACK_SECTION_LIMIT)},
        },
    ]
    if link:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"<{_slack_escape(link)}|Open the outcome>"},
            }
        )
    return {"text": subject, "blocks": blocks}


def _teams(subject: str, text: str, link: str | None) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": subject, "weight": "Bolder", "size": "Medium", "wrap": True}
    ]
    body += [
        {"type": "TextBlock", "text": line.strip(), "wrap": True, "spacing": "None"}
        for line in text.splitlines()
        if line.strip()
    ]
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": TEAMS_CARD_VERSION,
        "body": body,
    }
    if link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the outcome", "url": link}]
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    """``text`` at most ``limit`` characters long, an ellipsis marking a cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
