"""Random interaction histories over the sample catalog's vocabulary, and random promises
over the same vocabulary, for property tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from rules.models import Condition, Equals, Match, NeverPromise, Not, OneOf

START = datetime(2024, 3, 25, 8, 0, tzinfo=UTC)  # the week before Easter: holidays in reach

# A vocabulary that exercises every role of every sample promise, plus noise.
_KINDS: list[dict[str, Any]] = [
    {"type": "message", "channel": "email", "direction": "inbound"},
    {"type": "message", "channel": "chat", "direction": "inbound"},
    {"type": "message", "channel": "email", "direction": "outbound"},
    {
        "type": "status",
        "channel": "web",
        "direction": "internal",
        "attributes": {"status": "waiting_on_customer"},
    },
    {"type": "closed", "channel": "web", "direction": "internal", "attributes": {"reason": "spam"}},
    {
        "type": "info_provided",
        "channel": "phone",
        "direction": "inbound",
        "attributes": {"item": "policy_number"},
    },
    {
        "type": "info_provided",
        "channel": "web",
        "direction": "inbound",
        "attributes": {"item": "address"},
    },
    {
        "type": "info_requested",
        "channel": "email",
        "direction": "outbound",
        "attributes": {"item": "policy_number"},
    },
    {
        "type": "info_requested",
        "channel": "phone",
        "direction": "outbound",
        "attributes": {"item": "address"},
    },
    {"type": "handoff", "channel": "other", "direction": "internal"},
    {"type": "survey_response", "channel": "web", "direction": "inbound", "attributes": {"nps": 3}},
    {"type": "survey_response", "channel": "web", "direction": "inbound", "attributes": {"nps": 9}},
    {"type": "callback_promised", "channel": "phone", "direction": "outbound"},
    {"type": "call", "channel": "phone", "direction": "outbound"},
    {"type": "callback_cancelled", "channel": "phone", "direction": "internal"},
    {"type": "problem_reported", "channel": "app", "direction": "inbound"},
    {"type": "resolved", "channel": "app", "direction": "internal"},
    {"type": "booking_cancelled", "channel": "app", "direction": "inbound"},
    {"type": "follow_up", "channel": "sms", "direction": "outbound"},
]


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Up to 40 records over three customers and cases within 40 days, some simultaneous."""
    count = draw(st.integers(min_value=0, max_value=40))
    records = []
    for n in range(count):
        kind = draw(st.sampled_from(_KINDS))
        minutes = draw(
            st.one_of(
                st.integers(min_value=0, max_value=40 * 24 * 60),
                st.sampled_from([0, 60, 240, 24 * 60]),  # collisions and exact boundaries
            )
        )
        record = {
            "id": f"r{n:02d}",
            "occurred_at": START + timedelta(minutes=minutes),
            "customer_id": draw(st.sampled_from(["C1", "C2", "C3"])),
            **kind,
        }
        case = draw(st.sampled_from(["K1", "K2", "K3", None]))
        if case:
            record["case_id"] = case
        records.append(record)
    return records


# --- promises ----------------------------------------------------------------------------------

# Values the histories use for some fields (and one they never do), so that random
# conditions hold for some records and not for others.
_VALUES: dict[str, list[str]] = {
    "type": ["message", "info_provided", "info_requested", "handoff"],
    "channel": ["email", "chat", "phone", "web"],
    "direction": ["inbound", "outbound", "internal"],
    "attributes.item": ["policy_number", "address", "iban"],
}


def conditions(name: str) -> st.SearchStrategy[Condition]:
    """Equal, one-of (of one value too: it compiles unlike an equal) and ``not`` around
    either, over ``name``'s values."""
    value = st.sampled_from(_VALUES[name])
    positive = st.one_of(
        value.map(Equals),
        st.lists(value, min_size=1, max_size=3, unique=True).map(lambda vs: OneOf(tuple(vs))),
    )
    return st.one_of(positive, positive.map(Not))


@st.composite
def matches(draw: st.DrawFn) -> Match:
    names = draw(st.lists(st.sampled_from(sorted(_VALUES)), min_size=1, max_size=3, unique=True))
    return Match(tuple((name, draw(conditions(name))) for name in names))


@st.composite
def never_promises(draw: st.DrawFn) -> NeverPromise:
    """``never`` promises whose ``first`` and ``then`` mix equal, one-of and ``not``, with 0
    to 2 ``same`` fields and no window or one inside the histories' 40 days (exact
    boundaries included)."""
    minutes = st.one_of(
        st.sampled_from([60, 240, 24 * 60]), st.integers(min_value=1, max_value=40 * 24 * 60)
    )
    same = st.lists(st.sampled_from(sorted(_VALUES)), max_size=2, unique=True)
    return NeverPromise(
        id="never-generated",
        title="A generated never promise",
        owner="customer-care",
        scope=draw(st.sampled_from(["customer_id", "case_id"])),
        version="generated",
        source="",
        first=draw(matches()),
        then=draw(matches()),
        same=tuple(draw(same)),
        within=draw(st.one_of(st.none(), minutes.map(lambda m: timedelta(minutes=m)))),
    )
