"""The readable record phrases: one English sentence per kind of record the shipped promises
read, e.g. ``claims promises "C-1" a callback on Mon 2024-03-04 12:00 Europe/London``.

Each phrase is a regular expression over the step text (ending in "on <moment>") and a
function from its named groups to (record fields, the names a reader may call the record
by in evidence steps). ``engine.authoring.steps`` registers each as a step, and also reads
them in "a record arrives late: <phrase>". Any catalog can use them; one whose records have
other shapes writes them with the generic steps (``these interactions:``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from engine.authoring.world import World

QUOTED = r'"(?P<{}>[^"]+)"'
WORD = r"(?P<{}>[A-Za-z][\w-]*)"
WHEN = r"(?P<when>\S.*)"

CHANNEL_NOUNS = {
    "phone": "phone call",
    "email": "email",
    "chat": "chat",
    "web": "web form",
    "sms": "text message",
    "social": "social media message",
    "video": "video call",
    "branch": "branch visit",
    "app": "app message",
    "other": "record",
}

Build = Callable[[World, dict[str, str]], tuple[dict[str, Any], set[str]]]
PHRASES: list[tuple[re.Pattern[str], Build]] = []


def phrase(pattern: str) -> Callable[[Build], Build]:
    def register(build: Build) -> Build:
        PHRASES.append((re.compile(pattern + " on " + WHEN), build))
        return build

    return register


def _by(channel: str, *extra: str) -> set[str]:
    if channel not in CHANNEL_NOUNS:
        raise ValueError(f"unknown channel {channel!r}; channels are {', '.join(CHANNEL_NOUNS)}")
    return {CHANNEL_NOUNS[channel], *extra}


@phrase(
    rf"customer {QUOTED.format('customer')} (?:gave|gives) their {QUOTED.format('item')} "
    rf"by {WORD.format('channel')} to {WORD.format('team')}"
)
def _gave(world: World, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "channel": g["channel"],
        "direction": "inbound",
        "type": "info_provided",
        "team": g["team"],
        "attributes": {"item": g["item"]},
    }
    return fields, _by(g["channel"], "answer")


@phrase(
    rf"{WORD.format('team')} (?:asks|asked) {QUOTED.format('customer')} for "
    rf"{QUOTED.format('item')} by {WORD.format('channel')}"
)
def _asks(world: World, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "channel": g["channel"],
        "direction": "outbound",
        "type": "info_requested",
        "team": g["team"],
        "attributes": {"item": g["item"]},
    }
    return fields, _by(g["channel"], "question")


@phrase(
    rf"customer {QUOTED.format('customer')} emails {WORD.format('team')} about case "
    rf"{QUOTED.format('case')}"
)
def _emails(world: World, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "case_id": g["case"],
        "channel": "email",
        "direction": "inbound",
        "type": "message",
        "team": g["team"],
    }
    return fields, {"email", "customer's email"}


@phrase(
    rf"customer {QUOTED.format('customer')} writes (?:again )?on case {QUOTED.format('case')} "
    rf"by {WORD.format('channel')}"
)
def _writes(world: World, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "case_id": g["case"],
        "channel": g["channel"],
        "direction": "inbound",
        "type": "message",
    }
    return fields, _by(g["channel"], "message", "customer's message")


@phrase(
    rf"{WORD.format('team')} (?:replies|replied) on case {QUOTED.format('case')} "
    rf"by {WORD.format('channel')}"
)
def _replies(world: World, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": world.customer_of(g["case"]),
        "case_id": g["case"],
        "channel": g["channel"],
        "direction": "outbound",
        "type": "message",
        "team": g["team"],
    }
    return fields, _by(g["channel"], "reply")


@phrase(rf"{WORD.format('team')} sets case {QUOTED.format('case')} to {QUOTED.format('status')}")
def _status(world: World, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": world.customer_of(g["case"]),
        "case_id": g["case"],
        "channel": "other",
        "direction": "internal",
        "type": "status",
        "team": g["team"],
        "attributes": {"status": g["status"]},
    }
    return fields, {"status change"}


@phrase(rf"{WORD.format('team')} closes case {QUOTED.format('case')} as {QUOTED.format('reason')}")
def _closes(world: World, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": world.customer_of(g["case"]),
        "case_id": g["case"],
        "channel": "other",
        "direction": "internal",
        "type": "closed",
        "team": g["team"],
        "attributes": {"reason": g["reason"]},
    }
    return fields, {"closure"}


@phrase(
    rf"customer {QUOTED.format('customer')} opens case {QUOTED.format('case')} with "
    rf"{WORD.format('team')} by {WORD.format('channel')}"
)
def _opens(world: World, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "case_id": g["case"],
        "channel": g["channel"],
        "direction": "inbound",
        "type": "case_opened",
        "team": g["team"],
    }
    return fields, _by(g["channel"], "case opening")


@phrase(rf"{WORD.format('team')} hands case {QUOTED.format('case')} over to {WORD.format('to')}")
def _handoff(world: World, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": world.customer_of(g["case"]),
        "case_id": g["case"],
        "channel": "other",
        "direction": "internal",
        "type": "handoff",
        "team": g["team"],
        "attributes": {"to": g["to"]},
    }
    return fields, {"handoff", f"handoff to {g['to']}"}


@phrase(rf"{WORD.format('team')} promises {QUOTED.format('customer')} a callback")
def _callback_promised(world: World, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "channel": "phone",
        "direction": "outbound",
        "type": "callback_promised",
        "team": g["team"],
    }
    return fields, {"callback promise"}


@phrase(rf"{WORD.format('team')} (?:calls|called) {QUOTED.format('customer')}(?: back)?")
def _calls(world: World, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "channel": "phone",
        "direction": "outbound",
        "type": "call",
        "team": g["team"],
    }
    return fields, {"phone call", "call"}


@phrase(rf"{WORD.format('team')} cancels the callback for {QUOTED.format('customer')}")
def _callback_cancelled(world: World, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "channel": "phone",
        "direction": "internal",
        "type": "callback_cancelled",
        "team": g["team"],
    }
    return fields, {"cancellation"}


@phrase(rf"customer {QUOTED.format('customer')} answers the survey with a score of (?P<score>\d+)")
def _survey_scored(world: World, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "channel": "web",
        "direction": "inbound",
        "type": "survey_response",
        "attributes": {"nps": int(g["score"])},
    }
    return fields, {"survey response"}


@phrase(rf"customer {QUOTED.format('customer')} answers the survey without a score")
def _survey_unscored(world: World, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "channel": "web",
        "direction": "inbound",
        "type": "survey_response",
    }
    return fields, {"survey response"}


@phrase(
    rf"{WORD.format('team')} follows up with {QUOTED.format('customer')} by "
    rf"{WORD.format('channel')}"
)
def _follows_up(world: World, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "channel": g["channel"],
        "direction": "outbound",
        "type": "follow_up",
        "team": g["team"],
    }
    return fields, _by(g["channel"], "follow-up")


@phrase(
    rf"(?:customer|traveller) {QUOTED.format('customer')} reports a problem with booking "
    rf"{QUOTED.format('case')} by {WORD.format('channel')}"
)
def _problem(world: World, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "case_id": g["case"],
        "channel": g["channel"],
        "direction": "inbound",
        "type": "problem_reported",
    }
    return fields, _by(g["channel"], "problem report")


@phrase(
    rf"{WORD.format('team')} (?:resolves|resolved) the problem with booking {QUOTED.format('case')}"
)
def _resolved(world: World, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": world.customer_of(g["case"]),
        "case_id": g["case"],
        "channel": "other",
        "direction": "internal",
        "type": "resolved",
        "team": g["team"],
    }
    return fields, {"resolution"}


@phrase(
    rf"(?:customer|traveller) {QUOTED.format('customer')} cancels booking {QUOTED.format('case')}"
)
def _booking_cancelled(world: World, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "case_id": g["case"],
        "channel": "app",
        "direction": "inbound",
        "type": "booking_cancelled",
    }
    return fields, {"cancellation"}


@phrase(
    rf"customer {QUOTED.format('customer')} complains to {WORD.format('team')} about case "
    rf"{QUOTED.format('case')} by {WORD.format('channel')}"
)
def _complains(world: World, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": g["customer"],
        "case_id": g["case"],
        "channel": g["channel"],
        "direction": "inbound",
        "type": "complaint",
        "team": g["team"],
    }
    return fields, _by(g["channel"], "complaint")


@phrase(
    rf"{WORD.format('team')} (?:resolves|resolved) the complaint on case {QUOTED.format('case')}"
)
def _complaint_resolved(world: World, g: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    fields = {
        "customer_id": world.customer_of(g["case"]),
        "case_id": g["case"],
        "channel": "email",
        "direction": "outbound",
        "type": "complaint_resolved",
        "team": g["team"],
    }
    return fields, {"complaint resolution"}
