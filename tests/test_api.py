"""The HTTP API through real HTTP, against a real `promise serve` (uvicorn + worker)."""

from __future__ import annotations

from typing import Any

import httpx

from conftest import Server


def record(id: str, when: str, **fields: Any) -> dict[str, Any]:
    base = {
        "id": id,
        "occurred_at": when,
        "customer_id": "C-1",
        "channel": "email",
        "direction": "inbound",
        "type": "message",
    }
    return {**base, **fields}


HISTORY = [
    record(
        "p1",
        "2024-03-01T10:00:00Z",
        channel="phone",
        type="info_provided",
        team="claims",
        attributes={"item": "policy_number"},
    ),
    record("e1", "2024-03-01T16:00:00Z", case_id="K-1"),
    record(
        "q1",
        "2024-03-04T09:00:00Z",
        direction="outbound",
        type="info_requested",
        team="contact-centre",
        attributes={"item": "policy_number"},
    ),
    record("e2", "2024-03-04T10:00:00Z", customer_id="C-2", case_id="K-2"),
    record("r2", "2024-03-04T11:00:00Z", customer_id="C-2", case_id="K-2", direction="outbound"),
]


def outcomes(server: Server, **params: Any) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {}), "limit": 2}
        page = httpx.get(f"{server.url}/outcomes", params=query).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_ingest_then_the_outcomes_appear(server: Server) -> None:
    answer = httpx.post(f"{server.url}/interactions", json=HISTORY)
    assert answer.status_code == 200
    assert answer.json()["accepted"] == len(HISTORY)
    server.wait_for(lambda: len(outcomes(server)) == 3)
    found = {(o["promise"], o["scope"]): o for o in outcomes(server)}
    assert found["ask-once", "C-1"]["state"] == "broken"
    assert found["ask-once", "C-1"]["evidence"] == ["p1", "q1"]
    assert found["ask-once", "C-1"]["team"] == "customer-care"
    # K-1's email (due Mon 15:30) is still pending at the clock of the last record, Mon 11:00.
    assert found["email-reply-1bd", "K-1"]["state"] == "pending"
    assert found["email-reply-1bd", "K-2"]["state"] == "kept"

    breaches = httpx.get(f"{server.url}/breaches", params={"team": "customer-care"}).json()
    assert [b["evidence"] for b in breaches["items"]] == [["p1", "q1"]]
    compliance = httpx.get(f"{server.url}/compliance", params={"group_by": "promise"}).json()
    by_promise = {g["group"]: g for g in compliance["groups"]}
    assert (by_promise["email-reply-1bd"]["kept"], by_promise["ask-once"]["broken"]) == (1, 1)
    assert by_promise["email-reply-1bd"]["objective"] == 0.95
    standing = httpx.get(f"{server.url}/customers/C-1/promises").json()
    assert [o["scope"] for o in standing["open"]] == ["K-1"]
    assert standing["open"][0]["due_at"] == "2024-03-04T15:30:00Z"
    assert [o["promise"] for o in standing["recent_breaches"]] == ["ask-once"]


def test_a_late_reply_posted_later_turns_the_breach_into_kept(server: Server) -> None:
    httpx.post(
        f"{server.url}/interactions",
        json=[
            record("e1", "2024-03-01T16:00:00Z", case_id="K-1"),
            record("n1", "2024-03-05T12:00:00Z", case_id="K-9", type="note"),
        ],
    )
    server.wait_for(lambda: [o["state"] for o in outcomes(server)] == ["broken"])
    httpx.post(
        f"{server.url}/interactions",
        json=record("r1", "2024-03-04T15:00:00Z", case_id="K-1", direction="outbound"),
    )
    server.wait_for(lambda: [o["state"] for o in outcomes(server)] == ["kept"])


def test_bad_input_gets_precise_4xx_answers_and_loses_nothing_else(server: Server) -> None:
    batch = [
        record("ok", "2024-03-01T10:00:00Z"),
        {"id": "naive", "occurred_at": "2024-03-01"},
        "text",
        record("ok", "2024-03-01T10:00:00Z"),
    ]
    answer = httpx.post(f"{server.url}/interactions", json=batch).json()
    assert [r["status"] for r in answer["results"]] == [
        "accepted",
        "rejected",
        "rejected",
        "duplicate",
    ]
    fields = {p["field"] for p in answer["results"][1]["problems"]}
    assert {"occurred_at", "customer_id", "channel", "direction", "type"} <= fields

    malformed = httpx.post(f"{server.url}/interactions", content=b'{"id": "x",')
    assert malformed.status_code == 400
    assert "malformed JSON" in malformed.json()["detail"]
    too_many = httpx.post(
        f"{server.url}/interactions",
        json=[record(f"r{i}", "2024-03-01T10:00:00Z") for i in range(1001)],
    )
    assert too_many.status_code == 413
    assert "limit is 1000" in too_many.json()["detail"]
    assert httpx.get(f"{server.url}/outcomes", params={"cursor": "nonsense"}).status_code == 400
    assert httpx.get(f"{server.url}/outcomes", params={"state": "lost"}).status_code == 422
    assert httpx.get(f"{server.url}/promises/nope").status_code == 404


def test_promises_are_listed_with_summaries_and_versions(server: Server) -> None:
    promises = httpx.get(f"{server.url}/promises").json()
    assert {p["id"] for p in promises} >= {"ask-once", "email-reply-1bd", "two-handoffs"}
    detail = httpx.get(f"{server.url}/promises/email-reply-1bd").json()
    assert detail["owner"] == "contact-centre"
    assert "uk-office calendar" in detail["summary"]
    assert [v["version"] for v in detail["versions"]] == [detail["version"]]
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert {
        "/interactions",
        "/outcomes",
        "/breaches",
        "/compliance",
        "/customers/{customer_id}/promises",
    } <= set(spec["paths"])
