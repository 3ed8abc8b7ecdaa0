"""Engine errors become HTTP answers in one place (api/errors.py), by their kind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import errors
from api.app import create_app
from conftest import ROOT
from engine.errors import InvalidDefinition, PromiseEngineError
from engine.ingest.decoding import BadBatch
from engine.ingest.mapping import MappingError
from engine.keys import KeyProblem, create_key
from engine.privacy.pseudonyms import NoErasureKey, PrivacyError
from engine.reading.breaches import NotABreach
from engine.reading.reports.build import UnknownTeam
from engine.sandbox.pool import SandboxCrashed
from engine.service import PromiseService
from engine.settings import Settings
from engine.storage.database import make_engine, session_factory
from engine.storage.paging import BadCursor
from rules.errors import Problem
from rules.loader import load_catalog

PROBLEM = Problem(Path("a.yaml"), 3, "unknown kind 'nope'")
ASKED_AGAIN = [  # customer-care's Ask Once, broken for C-1
    {
        "id": id,
        "occurred_at": when,
        "customer_id": "C-1",
        "channel": "phone",
        "direction": direction,
        "type": type,
        "team": team,
        "attributes": {"item": "policy_number"},
    }
    for id, when, direction, type, team in (
        ("p1", "2024-03-01T10:00:00Z", "inbound", "info_provided", "claims"),
        ("q1", "2024-03-04T09:00:00Z", "outbound", "info_requested", "contact-centre"),
    )
]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotABreach("no outcome 7"), 404),
        (UnknownTeam("nobody", ["claims"]), 404),
        (BadCursor("cursor 'x' was not issued by this service"), 400),
        (BadBatch("malformed JSON: nested too deeply"), 400),
        (PrivacyError("an erasure needs a reason"), 422),
        (KeyProblem("no key named 'crm'"), 422),
        (MappingError([PROBLEM]), 422),
        (NoErasureKey("PROMISE_ERASURE_KEY is not set"), 503),
        (SandboxCrashed("the evaluation process died"), 503),
    ],
)
def test_each_engine_error_is_answered_with_the_status_of_its_kind(
    error: PromiseEngineError, status: int
) -> None:
    app = FastAPI()
    errors.register(app)

    @app.get("/fail")
    def fail() -> None:
        raise error

    answer = TestClient(app).get("/fail")
    assert (answer.status_code, answer.json()) == (status, {"detail": str(error), "errors": []})


def test_invalid_definitions_are_answered_with_their_problems() -> None:
    app = FastAPI()
    errors.register(app)

    @app.get("/fail")
    def fail() -> None:
        raise InvalidDefinition("the draft promise is invalid", [PROBLEM])

    answer = TestClient(app).get("/fail")
    assert answer.status_code == 422
    assert answer.json() == {
        "detail": "the draft promise is invalid",
        "errors": [],
        "problems": ["a.yaml:3: unknown kind 'nope'"],
    }


class Api(NamedTuple):
    client: TestClient
    """With an admin key."""
    centre: dict[str, str]
    """The headers of a read key restricted to team contact-centre."""


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """The application in-process over a fresh SQLite database, with ASKED_AGAIN
    evaluated (no worker: the test evaluates)."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", dir=ROOT / "promises")
    app = create_app(settings)
    sessions = session_factory(make_engine(settings.database_url))
    admin = create_key(sessions, "admin", ["admin", "ingest", "read"])
    with TestClient(app, headers={"Authorization": f"Bearer {admin}"}) as client:
        assert client.post("/interactions", json=ASKED_AGAIN).json()["accepted"] == 2
        PromiseService(load_catalog(settings.dir), sessions).evaluate_pending(100)
        centre = create_key(sessions, "cc", ["read"], "contact-centre")
        yield Api(client, {"Authorization": f"Bearer {centre}"})


def test_another_teams_breach_or_silence_is_refused_in_the_same_words(api: Api) -> None:
    """breaches.act and silences.end raise one OtherTeam; the answer names the key."""
    client, centre = api
    (breach,) = client.get("/breaches").json()["items"]
    silence = client.post(
        "/silences", json={"team": "travel-support", "until": "2100-01-01T00:00:00Z", "reason": "x"}
    ).json()

    acted = client.patch(f"/breaches/{breach['id']}", json={"status": "resolved"}, headers=centre)
    ended = client.delete(f"/silences/{silence['id']}", headers=centre)

    assert (acted.status_code, ended.status_code) == (403, 403)
    assert acted.json()["detail"] == (
        "the key 'cc' may only act for team 'contact-centre': "
        f"breach {breach['id']} belongs to team 'customer-care'"
    )
    assert ended.json()["detail"] == (
        "the key 'cc' may only act for team 'contact-centre': "
        f"silence {silence['id']} belongs to team 'travel-support'"
    )


def test_an_unknown_promise_in_the_path_is_404_after_the_key_is_checked(api: Api) -> None:
    """valid_promise runs after authentication: without a key nothing is learnt of ids."""
    client = api.client
    assert client.get("/promises/nope", headers={"Authorization": ""}).status_code == 401
    for method, path in (("GET", "/promises/nope"), ("DELETE", "/promises/nope/quarantine")):
        answer = client.request(method, path)
        assert answer.status_code == 404
        assert answer.json()["detail"] == "no promise 'nope'; see GET /promises"
