"""Who may read and do what (issue #16), through real HTTP against a real `promise serve`:
team keys over drafts, journeys and metrics, admin keys and teams, the dashboard's cookie and
forms (CSRF), security headers, customer ids holding `/`, and keys that expire."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from conftest import Server, start_server, stop_server
from engine.evaluation import quarantine
from engine.storage.database import make_engine, session_factory
from engine.storage.schema import ApiKeyRow
from rules.models import Catalog


def record(id: str, when: str, customer: str = "C-1", **fields: Any) -> dict[str, Any]:
    base = {
        "id": id,
        "occurred_at": when,
        "customer_id": customer,
        "channel": "email",
        "direction": "inbound",
        "type": "message",
    }
    return {**base, **fields}


# ask-once (customer-care) is broken by q1, resting on p1; e1 opens email-reply-1bd
# (contact-centre) and carries a secret only contact-centre may read; C-2 is contact-centre's.
HISTORY = [
    record(
        "p1",
        "2024-03-01T10:00:00Z",
        channel="phone",
        type="info_provided",
        team="claims",
        attributes={"item": "policy_number"},
    ),
    record("e1", "2024-03-01T16:00:00Z", case_id="K-1", attributes={"pin": "4711"}),
    record(
        "q1",
        "2024-03-04T09:00:00Z",
        direction="outbound",
        type="info_requested",
        team="contact-centre",
        attributes={"item": "policy_number"},
    ),
    record("e2", "2024-03-04T10:00:00Z", "C-2", case_id="K-2", attributes={"pin": "9999"}),
]


def _ingest(server: Server, records: list[dict[str, Any]] = HISTORY) -> None:
    with server.client() as admin:
        assert admin.post("/interactions", json=records).json()["accepted"] == len(records)
        server.wait_for(lambda: admin.get("/readyz").json()["evaluation_lag"] == 0)


def _key(server: Server, name: str, scopes: str, *extra: str) -> str:
    return server.promise("keys", "create", name, "--scopes", scopes, *extra).strip()


@contextmanager
def _browser(server: Server, key: str) -> Iterator[httpx.Client]:
    """A logged-in dashboard session: the login form posted from the dashboard's origin."""
    with httpx.Client(base_url=server.url, headers={"Origin": server.url}) as browser:
        assert browser.post("/ui/login", data={"key": key}).status_code == 303
        yield browser


# --- item 1: team keys and what reads every team's records ------------------------------------


def test_a_team_key_cannot_backtest_a_draft_over_every_teams_records(server: Server) -> None:
    _ingest(server)
    care = server.client(_key(server, "care", "read", "--team", "customer-care"))
    # Owned by the key's own team, but it starts on every record and asks about a PIN.
    oracle = (
        "id: oracle\ntitle: Oracle\nowner: customer-care\nkind: deadline\nscope: customer_id\n"
        "start: {attributes.pin: {matches: '4.*'}}\nstop: {type: never-happens}\nwithin: 1h\n"
    )
    refused = care.post("/promises/backtest", json={"yaml": oracle})
    assert refused.status_code == 403
    assert "team-restricted keys cannot" in refused.json()["detail"]
    assert "C-1" not in refused.text and "e1" not in refused.text

    reader = server.client(_key(server, "analyst", "read"))
    answered = reader.post("/promises/backtest", json={"yaml": oracle})
    assert answered.status_code == 200
    assert [o["evidence"] for o in answered.json()["outcomes"]] == [["e1"]]


def test_a_team_keys_journey_shows_only_what_its_team_handled_or_rests_on(
    server: Server,
) -> None:
    _ingest(server)
    with _browser(server, _key(server, "care", "read", "--team", "customer-care")) as care:
        page = care.get("/ui/customers/C-1")
        assert page.status_code == 200
        shown = {i for i in ("p1", "e1", "q1") if f'id="record-{i}"' in page.text}
        assert shown == {"p1", "q1"}  # ask-once's evidence, not contact-centre's email
        assert "4711" not in page.text
        assert care.get("/ui/customers/C-2").status_code == 404  # nothing of theirs
    with _browser(server, _key(server, "analyst", "read")) as whole:
        assert "4711" in whole.get("/ui/customers/C-1").text


def test_a_team_keys_pre_flight_answers_for_its_own_promises_only(server: Server) -> None:
    _ingest(server)
    planned = {
        "occurred_at": "2024-03-05T09:00:00Z",
        "channel": "email",
        "direction": "outbound",
        "type": "info_requested",
        "attributes": {"item": "policy_number"},
    }
    care = server.client(_key(server, "care", "read", "--team", "customer-care"))
    centre = server.client(_key(server, "centre", "read", "--team", "contact-centre"))
    verdicts = care.post("/customers/C-1/check", json=planned).json()["would_break"]
    assert [v["promise"] for v in verdicts] == ["ask-once"]
    assert centre.post("/customers/C-1/check", json=planned).json()["would_break"] == []


# --- item 12: metrics, readiness --------------------------------------------------------------


def test_metrics_need_a_metrics_key_without_a_team_and_probes_need_no_key(
    server: Server, catalog: Catalog
) -> None:
    _ingest(server)
    engine = make_engine(server.database_url)  # as the worker does when a promise crashes
    with session_factory(engine).begin() as session:
        quarantine.put(session, catalog.promises["email-reply-1bd"], "crashed in a test")
    engine.dispose()
    care = server.client(_key(server, "care", "read", "--team", "customer-care"))
    refused = care.get("/metrics")
    assert refused.status_code == 403
    assert "promise_outcomes" not in refused.text
    assert "team-restricted keys cannot" in refused.json()["detail"]
    ready = care.get("/readyz")
    assert ready.status_code == 200 and ready.json()["quarantined"] == []  # contact-centre's
    assert server.client().get("/readyz").json()["quarantined"] == ["email-reply-1bd"]
    anonymous = server.client(key="")
    probe = anonymous.get("/readyz")  # counts, but names no promise and no team
    assert (probe.json()["quarantined_count"], probe.json()["quarantined"]) == (1, None)
    assert "email-reply" not in probe.text and "contact-centre" not in probe.text
    assert anonymous.get("/healthz").status_code == 200
    assert anonymous.get("/metrics").status_code == 401

    prometheus = server.client(_key(server, "prometheus", "metrics"))
    assert "promise_outcomes" in prometheus.get("/metrics").text
    assert "lacks the 'read' scope" in prometheus.get("/outcomes").json()["detail"]
    reader = server.client(_key(server, "reader", "read"))  # a read key reads as much
    assert "promise_outcomes" in reader.get("/metrics").text
    crm = server.client(_key(server, "crm", "ingest"))
    assert "lacks the 'metrics' scope" in crm.get("/metrics").json()["detail"]


def test_metrics_may_be_left_open_by_a_setting(server_with: Callable[..., Server]) -> None:
    server = server_with(PROMISE_METRICS_OPEN="1")
    scraped = server.client(key="").get("/metrics")
    assert scraped.status_code == 200 and "promise_records_stored" in scraped.text
    assert server.client(key="").get("/outcomes").status_code == 401  # only metrics


# --- item 6: admin keys have no team; a team must exist ---------------------------------------


def _promise_fails(server: Server, *args: str) -> str:
    """The refusal (stderr) of a `promise` command on the server's database (run in this
    process: an exception other than an exit fails the test, as a traceback would)."""
    done = server.invoke(*args)
    assert done.returncode != 0, done.stdout
    return done.stderr


def test_an_admin_key_cannot_have_a_team_and_a_team_must_exist(server: Server) -> None:
    refused = _promise_fails(
        server, "keys", "create", "care-admin", "--scopes", "read,admin", "--team", "customer-care"
    )
    assert "an admin key acts on every team's data" in refused
    counting = _promise_fails(
        server, "keys", "create", "care-prom", "--scopes", "read,metrics", "--team", "claims"
    )
    assert "a 'metrics' key cannot be limited to a team" in counting
    unknown = _promise_fails(
        server, "keys", "create", "typo", "--scopes", "read", "--team", "custmer-care"
    )
    assert "no team 'custmer-care' in the catalog's teams.yaml" in unknown
    assert "customer-care" in unknown  # the teams that exist
    listed = server.promise("keys", "list")
    assert "care-admin" not in listed and "typo" not in listed

    with server.client() as admin:
        for body, words in (
            ({"name": "a", "scopes": ["admin"], "team": "claims"}, "cannot be limited to a team"),
            ({"name": "b", "scopes": ["read"], "team": "nobody"}, "no team 'nobody'"),
            ({"name": "c", "scopes": ["metrics"], "team": "claims"}, "cannot be limited"),
        ):
            answer = admin.post("/keys", json=body)
            assert answer.status_code == 422 and words in answer.json()["detail"]


def test_a_key_made_with_admin_and_a_team_before_the_rule_acts_for_no_team(
    server: Server,
) -> None:
    """Such a key answered another team's alert retry and released its quarantines."""
    key = _key(server, "care-lead", "read", "--team", "customer-care")
    engine = make_engine(server.database_url)
    with session_factory(engine).begin() as session:
        session.get(ApiKeyRow, "care-lead").scopes = ["admin", "read"]
    engine.dispose()
    legacy = server.client(key)
    assert legacy.get("/outcomes").status_code == 200  # still reads its team
    for answer in (
        legacy.post("/alerts/1/retry"),
        legacy.delete("/promises/email-reply-1bd/quarantine"),
        legacy.post("/promises/reload"),
    ):
        assert answer.status_code == 403
        assert "lacks the 'admin' scope" in answer.json()["detail"]


# --- item 7: the cookie opens /ui only; forms check their origin ------------------------------


def test_the_dashboard_cookie_opens_no_json_api_and_forms_check_their_origin(
    server: Server,
) -> None:
    with _browser(server, server.admin_key) as browser:
        assert browser.get("/ui").status_code == 200
        # What a page on another port of the same host could make this browser do:
        for method, path in (("POST", "/promises/reload"), ("GET", "/outcomes")):
            answer = browser.request(method, path, headers={"Origin": "http://127.0.0.1:1"})
            assert answer.status_code == 401, path
        assert browser.get("/ui/reports/customer-care").status_code == 200
        out = browser.post("/ui/logout", headers={"Origin": "http://127.0.0.1:1"})
        assert out.status_code == 403 and browser.get("/ui").status_code == 200

    with httpx.Client(base_url=server.url) as other:
        for headers in ({}, {"Origin": "http://127.0.0.1:1"}, {"Origin": "null"}):
            forced = other.post("/ui/login", data={"key": server.admin_key}, headers=headers)
            assert forced.status_code == 403
            assert "must be posted from" in forced.json()["detail"]
            assert "promise_key" not in other.cookies
        referred = other.post(
            "/ui/login", data={"key": server.admin_key}, headers={"Referer": f"{server.url}/ui"}
        )
        assert referred.status_code == 303


# --- item 8: security headers -----------------------------------------------------------------


def test_every_answer_carries_the_security_headers(server: Server) -> None:
    _ingest(server)
    with _browser(server, server.admin_key) as browser:
        pages = [browser.get(p) for p in ("/ui", "/ui/customers/C-1", "/ui/login")]
    api = server.client()
    answers = [
        *pages,
        api.get("/outcomes"),
        api.get("/customers/C-1/export"),
        api.get("/reports/customer-care"),
        api.get("/nowhere"),
    ]
    for answer in answers:
        headers = answer.headers
        assert headers["x-frame-options"] == "DENY", answer.url
        assert headers["x-content-type-options"] == "nosniff"
        # Dashboard pages keep the referrer within their origin: under no-referrer browsers
        # post their forms with `Origin: null`, and the login's origin check would refuse them.
        page = answer.url.path.startswith("/ui")
        assert headers["referrer-policy"] == ("same-origin" if page else "no-referrer")
        assert headers["cache-control"] == "no-store"
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
        assert "script-src" not in policy  # no script at all: default-src 'none'
    for page in pages:
        assert "<script" not in page.text  # the policy would stop it: there must be none
    explorer = api.get("/docs")
    assert explorer.headers["content-security-policy"] == "frame-ancestors 'none'"


# --- item 11: customer ids with `/` ------------------------------------------------------------


@pytest.fixture
def keyed_server(
    db_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Server]:
    monkeypatch.setenv("PROMISE_ERASURE_KEY", "test-erasure-secret")
    running = start_server(
        db_engine.url.render_as_string(hide_password=False), tmp_path, "--no-live"
    )
    yield running
    stop_server(running)


def test_a_customer_id_with_a_slash_is_queried_exported_and_erased(keyed_server: Server) -> None:
    server = keyed_server
    slash = [
        record("s1", "2024-03-01T10:00:00Z", "ACME/42", case_id="K-9"),
        record("s2", "2024-03-01T11:00:00Z", "ACME/42", type="info_provided",
               attributes={"item": "address"}),
    ]  # fmt: skip
    _ingest(server, slash)
    api = server.client()
    for path in ("/customers/ACME/42/promises", "/customers/ACME%2F42/promises"):
        standing = api.get(path)
        assert standing.status_code == 200, path
        assert standing.json()["customer_id"] == "ACME/42"
        assert [o["scope"] for o in standing.json()["open"]] == ["K-9"]
    planned = {"occurred_at": "2024-03-05T09:00:00Z", "channel": "email",
               "direction": "outbound", "type": "info_requested",
               "attributes": {"item": "address"}}  # fmt: skip
    checked = api.post("/customers/ACME/42/check", json=planned).json()
    assert [v["promise"] for v in checked["would_break"]] == ["ask-once"]
    exported = api.get("/customers/ACME/42/export").json()
    assert [r["id"] for r in exported["interactions"]] == ["s1", "s2"]
    erased = api.request("DELETE", "/customers/ACME/42", json={"reason": "request"})
    assert erased.status_code == 200, erased.text
    assert erased.json()["counts"]["interactions"] == 2
    assert api.get("/customers/ACME/42/export").json()["interactions"] == []


# --- item 12: keys over HTTP, with expiry -----------------------------------------------------


def test_admins_create_list_and_revoke_keys_over_http_and_expired_keys_get_401(
    server: Server,
) -> None:
    admin = server.client()
    soon = datetime.now(UTC) + timedelta(seconds=3)
    created = admin.post(
        "/keys", json={"name": "temp", "scopes": ["read"], "expires_at": soon.isoformat()}
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert created.json()["status"] == "active"
    listed = {k["name"]: k for k in admin.get("/keys").json()}
    assert "key" not in listed["temp"] and key not in admin.get("/keys").text
    assert datetime.fromisoformat(listed["temp"]["expires_at"]) == soon

    temp = server.client(key)
    assert temp.get("/outcomes").status_code == 200
    assert temp.get("/keys").status_code == 403  # read is not admin
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.2)
    expired = temp.get("/outcomes")
    assert expired.status_code == 401
    assert f"the API key 'temp' expired at {soon.isoformat()}" in expired.json()["detail"]
    assert {k["name"]: k for k in admin.get("/keys").json()}["temp"]["status"] == "expired"
    login = httpx.post(f"{server.url}/ui/login", data={"key": key}, headers={"Origin": server.url})
    assert login.status_code == 401 and "expired at" in login.text

    crm = admin.post("/keys", json={"name": "crm", "scopes": ["ingest"]}).json()["key"]
    other = server.client(crm)
    assert other.post("/interactions", json=HISTORY[0]).status_code == 200
    revoked = admin.delete("/keys/crm")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert other.post("/interactions", json=HISTORY[0]).status_code == 401
    assert admin.delete("/keys/nobody").status_code == 404
    past = admin.post(
        "/keys", json={"name": "p", "scopes": ["read"], "expires_at": "2020-01-01T00:00:00Z"}
    )
    assert past.status_code == 422 and "not in the future" in past.json()["detail"]


def test_keys_create_takes_an_expiry_as_a_duration_or_a_time(server: Server) -> None:
    _key(server, "quarter", "read", "--expires", "90d")
    _key(server, "fixed", "read", "--expires", "2999-01-01T00:00:00+00:00")
    listed = server.promise("keys", "list").splitlines()
    lines = {line.split("\t")[0]: line.split("\t") for line in listed}
    in_90_days = datetime.fromisoformat(lines["quarter"][3]) - datetime.now(UTC)
    assert timedelta(days=89) < in_90_days <= timedelta(days=90)
    assert lines["fixed"][3:] == ["2999-01-01T00:00:00+00:00", "active"]
    assert "neither a duration" in _promise_fails(
        server, "keys", "create", "bad", "--scopes", "read", "--expires", "soon"
    )
