"""Random interaction histories over the sample catalog's vocabulary, random promises
over the same vocabulary, and random limits with dense histories, for property tests."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from rules.models import Condition, Equals, LimitPromise, Match, NeverPromise, Not, OneOf
from rules.version import version_of

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
    {"type": "complaint", "channel": "phone", "direction": "inbound"},
    {"type": "complaint_resolved", "channel": "email", "direction": "outbound"},
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


# --- windowed limits -----------------------------------------------------------------------------

_COUNTS = [
    Match((("type", Equals("handoff")),)),
    Match((("type", OneOf(("handoff", "transfer"))),)),
    Match((("type", Equals("handoff")), ("team", Not(Equals("claims"))))),
]
_WINDOWS = [*(timedelta(minutes=m) for m in (30, 6 * 60, 24 * 60, 7 * 24 * 60, 30 * 24 * 60)), None]
# Minutes from one record to the next: bursts (none, a minute, an hour) and lulls (longer
# than most windows), so a scope goes over its limit, back under it, and over again.
_GAPS = [0, 0, 1, 10, 60, 6 * 60, 24 * 60, 3 * 24 * 60, 10 * 24 * 60, 45 * 24 * 60]


@st.composite
def limit_promises(draw: st.DrawFn) -> LimitPromise:
    """A limit of 0 to 3 per case or customer, in a window of 30 minutes to 30 days or none."""
    promise = LimitPromise(
        id="limit",
        title="At most max per scope",
        owner="operations",
        scope=draw(st.sampled_from(["case_id", "customer_id"])),
        version="",
        source="",
        count=draw(st.sampled_from(_COUNTS)),
        max=draw(st.integers(min_value=0, max_value=3)),
        within=draw(st.sampled_from(_WINDOWS)),
    )
    return dataclasses.replace(promise, version=version_of(promise))


@st.composite
def limit_histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Up to 30 records in bursts and lulls over two customers and cases, mostly counted
    by :func:`limit_promises`; records at one moment get ids in random order."""
    count = draw(st.integers(min_value=0, max_value=30))
    ids = draw(st.permutations(range(count)))
    moment = START
    records = []
    for n in ids:
        moment += timedelta(minutes=draw(st.sampled_from(_GAPS)))
        record = {
            "id": f"r{n:02d}",
            "occurred_at": moment,
            "customer_id": draw(st.sampled_from(["C1", "C2"])),
            "case_id": draw(st.sampled_from(["K1", "K2", None])),
            "channel": "other",
            "direction": "internal",
            "type": draw(st.sampled_from(["handoff", "handoff", "handoff", "transfer", "note"])),
            "team": draw(st.sampled_from(["claims", "billing", None])),
        }
        records.append({k: v for k, v in record.items() if v is not None})
    return records


def excess_episodes(outcomes: list[dict]) -> int:
    """The most runs of broken outcomes, each after a kept one, in any one scope."""
    runs: dict[str, int] = {}
    last: dict[str, str] = {}
    for o in sorted(outcomes, key=lambda o: (o["scope"], o["opened_at"], o["evidence"][-1])):
        if o["state"] == "broken" and last.get(o["scope"]) == "kept":
            runs[o["scope"]] = runs.get(o["scope"], 0) + 1
        last[o["scope"]] = o["state"]
    return max(runs.values(), default=0)


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
