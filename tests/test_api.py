"""The HTTP API through real HTTP, against a real `promise serve` (uvicorn + worker)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import ROOT, Server, start_server, stop_server


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
        page = server.client().get("/outcomes", params=query).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_ingest_then_the_outcomes_appear(server: Server) -> None:
    answer = server.client().post("/interactions", json=HISTORY)
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

    breaches = server.client().get("/breaches", params={"team": "customer-care"}).json()
    assert [b["evidence"] for b in breaches["items"]] == [["p1", "q1"]]
    compliance = server.client().get("/compliance", params={"group_by": "promise"}).json()
    by_promise = {g["group"]: g for g in compliance["groups"]}
    assert (by_promise["email-reply-1bd"]["kept"], by_promise["ask-once"]["broken"]) == (1, 1)
    assert by_promise["email-reply-1bd"]["objective"] == 0.95
    standing = server.client().get("/customers/C-1/promises").json()
    assert [o["scope"] for o in standing["open"]] == ["K-1"]
    assert standing["open"][0]["due_at"] == "2024-03-04T15:30:00Z"
    assert [o["promise"] for o in standing["recent_breaches"]] == ["ask-once"]
    assert [
        (g["promise"], g["record"], g["channel"], g["team"], g["same"]) for g in standing["given"]
    ] == [("ask-once", "p1", "phone", "claims", {"attributes.item": "policy_number"})]


def test_a_late_reply_posted_later_turns_the_breach_into_kept(server: Server) -> None:
    server.client().post(
        "/interactions",
        json=[
            record("e1", "2024-03-01T16:00:00Z", case_id="K-1"),
            record("n1", "2024-03-05T12:00:00Z", case_id="K-9", type="note"),
        ],
    )
    server.wait_for(lambda: [o["state"] for o in outcomes(server)] == ["broken"])
    server.client().post(
        "/interactions",
        json=record("r1", "2024-03-04T15:00:00Z", case_id="K-1", direction="outbound"),
    )
    server.wait_for(lambda: [o["state"] for o in outcomes(server)] == ["kept"])

    client = server.client()
    (kept,) = outcomes(server, case_id="K-1")
    assert outcomes(server, scope="K-1") == [kept]
    assert outcomes(server, case_id="K-9") == outcomes(server, scope="nobody") == []
    history = client.get(f"/outcomes/{kept['id']}/revisions").json()
    assert (history[-1]["old_state"], history[-1]["new_state"]) == ("broken", "kept")
    assert history[-1]["reason"] and history[-1]["after"]["evidence"] == ["e1", "r1"]
    missing = client.get("/outcomes/999999/revisions")
    assert missing.status_code == 404 and missing.json() == {
        "detail": "no outcome 999999",
        "errors": [],
    }


def test_bad_input_gets_precise_4xx_answers_and_loses_nothing_else(server: Server) -> None:
    batch = [
        record("ok", "2024-03-01T10:00:00Z"),
        {"id": "naive", "occurred_at": "2024-03-01"},
        "text",
        record("ok", "2024-03-01T10:00:00Z"),
    ]
    answer = server.client().post("/interactions", json=batch).json()
    assert [r["status"] for r in answer["results"]] == [
        "accepted",
        "rejected",
        "rejected",
        "duplicate",
    ]
    fields = {p["field"] for p in answer["results"][1]["problems"]}
    assert {"occurred_at", "customer_id", "channel", "direction", "type"} <= fields

    refused = server.client().post("/interactions", json=[{"id": "a"}, {"id": "b"}])
    assert refused.status_code == 422  # nothing accepted: a status to branch on
    body = refused.json()
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (0, 0, 2)
    assert [r["id"] for r in body["results"]] == ["a", "b"]
    assert "no record accepted" in body["detail"]
    assert {"field": "1.channel", "reason": "required"} in body["errors"]
    again = server.client().post("/interactions", json=[record("ok", "2024-03-01T10:00:00Z")])
    assert again.status_code == 200 and again.json()["duplicate"] == 1  # a retry succeeds

    malformed = server.client().post("/interactions", content=b'{"id": "x",')
    assert malformed.status_code == 400
    assert "malformed JSON" in malformed.json()["detail"]
    too_many = server.client().post(
        "/interactions",
        json=[record(f"r{i}", "2024-03-01T10:00:00Z") for i in range(1001)],
    )
    assert too_many.status_code == 413
    assert "limit is 1000" in too_many.json()["detail"]
    assert server.client().get("/outcomes", params={"cursor": "nonsense"}).status_code == 400
    lost = server.client().get("/outcomes", params={"state": "lost"})
    assert lost.status_code == 422
    [problem] = lost.json()["errors"]
    assert problem["field"] == "state" and "'at_risk'" in problem["reason"]
    kept = server.client().get("/breaches", params={"state": "kept"})
    assert kept.status_code == 422
    assert kept.json()["errors"] == [{"field": "state", "reason": "Input should be 'broken'"}]
    naive = server.client().get("/outcomes", params={"from": "2024-03-01T00:00:00"})
    assert naive.json()["errors"][0]["field"] == "from"
    for answer in (
        malformed,
        too_many,
        server.client().get("/nowhere"),
        server.client().post("/interactions", content=b"{}", headers={"content-type": "text/csv"}),
    ):
        assert 400 <= answer.status_code < 500 and set(answer.json()) == {"detail", "errors"}
    assert server.client().get("/promises/nope").status_code == 404
    nul = server.client().get("/outcomes", params={"customer_id": "C\x001"})
    assert nul.status_code == 400 and "NUL" in nul.json()["detail"]
    assert server.client().get("/customers/C%001/promises").status_code == 400


def test_promises_are_listed_with_summaries_and_versions(server: Server) -> None:
    promises = server.client().get("/promises").json()
    assert {p["id"] for p in promises} >= {"ask-once", "email-reply-1bd", "two-handoffs"}
    detail = server.client().get("/promises/email-reply-1bd").json()
    assert detail["owner"] == "contact-centre"
    assert "uk-office calendar" in detail["summary"]
    assert [v["version"] for v in detail["versions"]] == [detail["version"]]
    spec = server.client().get("/openapi.json").json()
    assert {
        "/interactions",
        "/outcomes",
        "/breaches",
        "/compliance",
        "/customers/{customer_id}/promises",
    } <= set(spec["paths"])
    for path in ("/outcomes", "/breaches", "/outcomes/{outcome_id}/revisions"):
        refused = spec["paths"][path]["get"]["responses"]["4XX"]
        assert refused["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert set(spec["components"]["schemas"]["ErrorOut"]["properties"]) == {"detail", "errors"}


def test_every_endpoint_but_the_probes_needs_a_key_with_the_right_scope(server: Server) -> None:
    anonymous = server.client(key="")
    assert anonymous.get("/healthz").json() == {"status": "ok"}
    ready = anonymous.get("/readyz")  # Kubernetes and load balancers send no key
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert (ready.json()["quarantined_count"], ready.json()["quarantined"]) == (0, None)
    missing = anonymous.get("/outcomes")
    assert missing.status_code == 401
    assert "Authorization: Bearer" in missing.json()["detail"]
    assert server.client(key="pk_made_up").get("/outcomes").status_code == 401

    ingest_only = server.promise("keys", "create", "crm", "--scopes", "ingest").strip()
    writer = server.client(ingest_only)
    assert writer.post("/interactions", json=HISTORY).json()["accepted"] == len(HISTORY)
    refused = writer.get("/outcomes")
    assert refused.status_code == 403
    assert "lacks the 'read' scope" in refused.json()["detail"]

    server.promise("keys", "revoke", "crm")
    assert writer.post("/interactions", json=HISTORY).status_code == 401


def test_a_team_restricted_key_sees_only_its_teams_promises(server: Server) -> None:
    server.client().post("/interactions", json=HISTORY)
    server.wait_for(lambda: len(outcomes(server)) == 3)
    care = server.client(
        server.promise(
            "keys", "create", "care", "--scopes", "read", "--team", "customer-care"
        ).strip()
    )
    seen = care.get("/outcomes").json()["items"]
    assert {o["team"] for o in seen} == {"customer-care"}
    assert care.get("/outcomes", params={"team": "contact-centre"}).status_code == 403
    assert [g["group"] for g in care.get("/compliance").json()["groups"]] == ["ask-once"]
    assert [p["id"] for p in care.get("/promises").json()] == ["ask-once", "complaint-3bd"]
    assert care.get("/promises/email-reply-1bd").status_code == 403
    standing = care.get("/customers/C-1/promises").json()
    assert standing["open"] == [] and len(standing["recent_breaches"]) == 1


def test_a_pre_flight_check_names_the_promise_and_the_earlier_record(server: Server) -> None:
    client = server.client()
    client.post("/interactions", json=HISTORY)
    server.wait_for(lambda: len(outcomes(server)) == 3)
    before = outcomes(server)
    planned = {
        "occurred_at": "2024-03-05T09:00:00Z",
        "channel": "email",
        "direction": "outbound",
        "type": "info_requested",
        "team": "claims",
        "attributes": {"item": "policy_number"},
    }
    answer = client.post("/customers/C-1/check", json=planned).json()
    assert answer["ok"] is False
    (verdict,) = answer["would_break"]
    assert verdict["promise"] == "ask-once"
    assert [e["id"] for e in verdict["evidence"]] == ["p1"]
    assert verdict["why"] == "already: info provided by phone on 2024-03-01 to claims"

    other_item = {**planned, "attributes": {"item": "address"}}
    assert client.post("/customers/C-1/check", json=other_item).json() == {
        "customer_id": "C-1",
        "ok": True,
        "would_break": [],
    }
    assert (
        client.post("/customers/C-1/check", json={**planned, "direction": "up"}).status_code == 422
    )
    assert outcomes(server) == before  # nothing was stored


def test_a_breach_is_acknowledged_then_resolved_with_who_and_when(server: Server) -> None:
    client = server.client()
    client.post("/interactions", json=HISTORY)
    server.wait_for(lambda: len(outcomes(server)) == 3)
    (breach,) = client.get("/breaches").json()["items"]
    assert breach["handling"] is None

    care = server.client(
        server.promise(
            "keys", "create", "care-lead", "--scopes", "read", "--team", "customer-care"
        ).strip()
    )
    acked = care.patch(
        f"/breaches/{breach['id']}", json={"status": "acknowledged", "assignee": "j.smith"}
    ).json()
    assert acked["handling"]["status"] == "acknowledged"
    assert (acked["handling"]["assignee"], acked["handling"]["actor"]) == ("j.smith", "care-lead")
    note = "Claims letter template asked for the policy number again; template fixed"
    care.patch(f"/breaches/{breach['id']}", json={"status": "resolved", "note": note})
    (listed,) = client.get("/breaches").json()["items"]
    assert (listed["handling"]["status"], listed["handling"]["note"]) == ("resolved", note)

    centre = server.client(
        server.promise(
            "keys", "create", "cc-lead", "--scopes", "read", "--team", "contact-centre"
        ).strip()
    )
    assert centre.patch(f"/breaches/{breach['id']}", json={"status": "resolved"}).status_code == 403
    kept = next(o for o in outcomes(server) if o["state"] == "kept")
    missing = client.patch(f"/breaches/{kept['id']}", json={"status": "resolved"})
    assert missing.status_code == 404 and "not a breach" in missing.json()["detail"]
    assert client.patch(f"/breaches/{breach['id']}", json={"status": "ignored"}).status_code == 422


def test_metrics_count_ingested_records_lag_and_outcomes(server: Server) -> None:
    client = server.client()
    client.post("/interactions", json=[*HISTORY, {"id": "bad"}])
    server.wait_for(lambda: len(outcomes(server)) == 3)
    text = client.get("/metrics").text
    assert 'promise_records_ingested_total{status="accepted"} 5.0' in text
    assert 'promise_records_ingested_total{status="rejected"} 1.0' in text
    assert "promise_records_stored 5.0" in text
    assert "promise_evaluation_lag_records 0.0" in text
    assert 'promise_outcomes{promise="ask-once",state="broken"} 1.0' in text
    delivered = 'promise_alert_deliveries{status="delivered",team="customer-care"} 1.0'
    server.wait_for(lambda: delivered in client.get("/metrics").text)  # its log route


def test_metrics_show_each_objectives_burn_rates_at_the_engines_clock(server: Server) -> None:
    """ask-once (objective 99%: a 1% budget, the default rules) decides q1 broken (09:00),
    q2 broken (10:40) and q3 kept (10:58); the clock is r2's 11:00. Over 1 h: 1 of 2 broken
    (50x) but nothing broken in the last 5 min (0x): 1h/5m does not burn. Over 6 h 2 of 3
    (66.7x) and over 30 min 1 of 2 (50x), both past 6x: 6h/30m burns."""
    asks = [
        record(
            f"q{n}",
            f"2024-03-04T{when}:00Z",
            direction="outbound",
            type="info_requested",
            attributes={"item": item},
        )
        for n, when, item in ((2, "10:40", "policy_number"), (3, "10:58", "address"))
    ]
    client = server.client()
    client.post("/interactions", json=[*HISTORY, *asks])
    server.wait_for(lambda: len(outcomes(server)) == 5)
    found = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for sample in family.samples
        if sample.name in ("promise_burn_rate", "promise_objective_burning")
    }

    def rate(promise: str, rule: str, window: str) -> float | None:
        labels = (("promise", promise), ("rule", rule), ("window", window))
        return found.get(("promise_burn_rate", labels))

    def burning(promise: str, rule: str) -> float:
        return found[("promise_objective_burning", (("promise", promise), ("rule", rule)))]

    assert rate("ask-once", "1h/5m", "1h") == pytest.approx(50)
    assert rate("ask-once", "1h/5m", "5m") == 0
    assert rate("ask-once", "6h/30m", "6h") == pytest.approx(200 / 3)
    assert rate("ask-once", "6h/30m", "30m") == pytest.approx(50)
    assert (burning("ask-once", "1h/5m"), burning("ask-once", "6h/30m")) == (0, 1)
    # email-reply-1bd kept K-2 at 11:00; nothing of two-handoffs was decided: no rate yet.
    assert rate("email-reply-1bd", "1h/5m", "5m") == 0
    assert rate("two-handoffs", "1h/5m", "1h") is None
    assert burning("two-handoffs", "1h/5m") == 0


def test_a_draft_is_backtested_over_the_history_without_storing_anything(server: Server) -> None:
    client = server.client()
    handoffs = [
        record(
            f"h{i}",
            f"2024-03-0{i}T09:00:00Z",
            case_id="K-1",
            type="handoff",
            channel="other",
            direction="internal",
        )
        for i in (1, 2)
    ]
    client.post("/interactions", json=[*HISTORY, *handoffs])
    server.wait_for(lambda: len(outcomes(server)) == 5)
    before = outcomes(server)
    draft = (ROOT / "promises" / "two-handoffs.yaml").read_text().replace("max: 2", "max: 1")
    answer = client.post("/promises/backtest", json={"yaml": draft}).json()
    assert answer["summary"] == {"kept": 1, "broken": 1}
    assert answer["current_summary"] == {"kept": 2}
    assert answer["changed"] == [
        {"key": "h2", "scope": "K-1", "current": "kept", "draft": "broken"}
    ]
    assert [o["evidence"] for o in answer["outcomes"]] == [["h1"], ["h1", "h2"]]
    invalid = client.post("/promises/backtest", json={"yaml": draft.replace("max: 1", "max: x")})
    assert invalid.status_code == 422
    assert invalid.json()["problems"] == [
        "draft.yaml:10: 'max': input should be a valid integer, got 'x'"
    ]
    assert outcomes(server) == before


def test_live_the_wall_clock_breaks_deadlines_without_new_records(
    db_engine: Any, tmp_path: Any
) -> None:
    live = start_server(db_engine.url.render_as_string(hide_password=False), tmp_path)
    try:
        client = live.client()
        five_hours_ago = (datetime.now(UTC) - timedelta(hours=5)).isoformat()
        client.post(
            "/interactions",
            json=record(
                "t1", five_hours_ago, case_id="B-1", type="problem_reported", channel="app"
            ),
        )
        # The 4-hour travel guarantee is broken by the clock alone, no later record needed.
        live.wait_for(lambda: [o["state"] for o in outcomes(live)] == ["broken"])
    finally:
        stop_server(live)
