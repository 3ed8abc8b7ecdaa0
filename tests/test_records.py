"""Records at the edge: every refusal names the field and the reason."""

from __future__ import annotations

from typing import Any

import pytest

from engine.records import MAX_RECORD_BYTES, Interaction, parse_record

GOOD = {
    "id": "evt-1",
    "occurred_at": "2024-03-01T10:00:00+01:00",
    "customer_id": "C-1",
    "channel": "email",
    "direction": "inbound",
    "type": "message",
}


def problems(raw: Any) -> dict[str, str]:
    parsed = parse_record(raw)
    assert isinstance(parsed, list), parsed
    return {p.field: p.reason for p in parsed}


def test_a_good_record_is_normalised_to_utc() -> None:
    record = parse_record({**GOOD, "attributes": {"nps": 6.0, "a": {"b": "x"}}})
    assert isinstance(record, Interaction)
    assert record.occurred_at.isoformat() == "2024-03-01T09:00:00+00:00"
    assert record.fields()["attributes.nps"] == 6  # 6.0 matches a rule's 6
    assert record.fields()["attributes.a.b"] == "x"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"occurred_at": "2024-03-01T10:00:00"}, "occurred_at", "needs a UTC offset or Z"),
        ({"direction": "sideways"}, "direction", "must be one of inbound, outbound, internal"),
        ({"attributes": ["item"]}, "attributes", "must be a JSON object, got list"),
        ({"id": ""}, "id", "must not be empty"),
        ({"id": "a\x00b"}, "id", "NUL"),
        ({"attributes": {"item": "x\x00"}}, "attributes", "NUL"),
        ({"colour": "blue"}, "colour", "unknown field; put extra data under 'attributes'"),
        (
            {"attributes": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}},
            "attributes",
            "nested more than 8 levels",
        ),
    ],
)
def test_a_bad_record_names_the_field_and_the_reason(change: dict, field: str, words: str) -> None:
    assert words in problems({**GOOD, **change})[field]


def test_a_missing_field_is_named() -> None:
    assert problems({"id": "x"})["customer_id"] == "required"


def test_an_oversized_record_is_refused_whole() -> None:
    big = {**GOOD, "attributes": {"note": "x" * MAX_RECORD_BYTES}}
    assert "the limit is 65536" in problems(big)["(record)"]
