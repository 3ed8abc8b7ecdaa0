"""A promise whose evaluation crashes is quarantined and reported; the others go on.

The crash is injected by tests/faulty/sitecustomize.py into the real `promise serve` and
the worker processes it supervises: one promise version segfaults the worker (as a crash
in durable-rules' C core would), another raises. Everything else is the real service.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

import reference
from conftest import ROOT, Server, start_server, stop_server
from rules.loader import load_catalog

SEGFAULTS = "email-reply-1bd"
RAISES = "ask-once"


def _history() -> list[dict[str, Any]]:
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    from synthetic import history

    return history(600, seed=5)


def _outcomes(client: httpx.Client, promise: str) -> list[dict[str, Any]]:
    stored, cursor = [], None
    while True:
        params: dict[str, Any] = {"promise": promise, "limit": 1000}
        page = client.get("/outcomes", params={**params, **({"cursor": cursor} if cursor else {})})
        stored += page.json()["items"]
        if (cursor := page.json()["next_cursor"]) is None:
            return _comparable(stored)


def _comparable(outcomes: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((o["scope"], o["state"], tuple(o["evidence"])) for o in outcomes)


def _expected(promise_dir: Path, records: list[dict[str, Any]], promise: str) -> list[tuple]:
    as_records = [{**r, "occurred_at": datetime.fromisoformat(r["occurred_at"])} for r in records]
    everything = reference.evaluate(load_catalog(promise_dir), as_records)
    return _comparable([o for o in everything if o["promise"] == promise])


def _readiness(server: Server) -> dict[str, Any]:
    with server.client() as client:
        return client.get("/readyz").json()


@pytest.mark.slow
def test_a_crashing_promise_is_quarantined_reported_and_released(
    db_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promise_dir = tmp_path / "promises"
    shutil.copytree(ROOT / "promises", promise_dir, ignore=shutil.ignore_patterns("examples"))
    catalog = load_catalog(promise_dir)
    crashing = {p: f"{p}@{catalog.promises[p].version}" for p in (SEGFAULTS, RAISES)}
    faulty = str(ROOT / "tests" / "faulty")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([faulty, os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv(
        "PROMISE_TEST_CRASH", f"{crashing[SEGFAULTS]}:segfault,{crashing[RAISES]}:raise"
    )
    url = db_engine.url.render_as_string(hide_password=False)
    records = _history()
    others = sorted(set(catalog.promises) - {SEGFAULTS, RAISES})

    server = start_server(url, tmp_path, "--no-live", promise_dir=promise_dir)
    try:
        client = server.client()
        for start in range(0, len(records), 200):
            answer = client.post("/interactions", json=records[start : start + 200]).json()
            assert answer["accepted"] == len(records[start : start + 200])
        # The worker dies three times in the same promise, then quarantines it; the
        # promise that raises is quarantined at once. The queue drains all the same.
        server.wait_for(
            lambda: (
                (r := _readiness(server))["quarantined"] == sorted(crashing)
                and r["evaluation_lag"] == 0
            ),
            timeout=90,
        )
        assert _readiness(server)["status"] == "ready"

        for promise in others:  # evaluated as if nothing had happened
            assert _outcomes(client, promise) == _expected(promise_dir, records, promise)
        assert _outcomes(client, SEGFAULTS) == [] and _outcomes(client, RAISES) == []

        listed = {p["id"]: p["quarantine"] for p in client.get("/promises").json()}
        assert "died 3 times in a row" in listed[SEGFAULTS]["reason"]
        assert "RuntimeError('injected failure in the rules core')" in listed[RAISES]["reason"]
        assert {p for p, held in listed.items() if held} == set(crashing)
        detail = client.get(f"/promises/{RAISES}").json()
        assert detail["quarantine"]["version"] == catalog.promises[RAISES].version
        metrics = client.get("/metrics").text
        for promise, at in crashing.items():
            version = at.split("@")[1]
            assert f'promise_quarantined{{promise="{promise}",version="{version}"}} 1.0' in metrics
        lines = server.promise("quarantine", "list").splitlines()
        listing = sorted(line.split("\t")[:2] for line in lines)
        assert listing == sorted(at.split("@") for at in crashing.values())

        # A changed version of the segfaulting promise is not quarantined: the worker loads
        # it and evaluates the scopes the old one skipped.
        path = promise_dir / f"{SEGFAULTS}.yaml"
        path.write_text(path.read_text().replace("title: ", "title: (fixed) ", 1))
        assert (
            load_catalog(promise_dir).promises[SEGFAULTS].version
            != catalog.promises[SEGFAULTS].version
        )
        assert client.post("/promises/reload").json()["changed"] == [SEGFAULTS]  # the API follows
        assert _readiness(server)["quarantined"] == [RAISES]
        expected = _expected(promise_dir, records, SEGFAULTS)
        assert expected, "the history gives the promise opportunities"
        server.wait_for(lambda: _outcomes(client, SEGFAULTS) == expected, timeout=60)
    finally:
        stop_server(server)

    # The rules core is fixed (no more injected crashes): an admin releases the promise
    # that raised, and the scopes it skipped are evaluated.
    monkeypatch.delenv("PROMISE_TEST_CRASH")
    server = start_server(url, tmp_path, "--no-live", promise_dir=promise_dir)
    try:
        client = server.client()
        assert client.delete(f"/promises/{RAISES}/quarantine").json() == {"released": 1}
        expected = _expected(promise_dir, records, RAISES)
        assert expected, "the history gives the promise opportunities"
        server.wait_for(lambda: _outcomes(client, RAISES) == expected, timeout=60)
        assert _readiness(server)["quarantined"] == []
        assert client.delete(f"/promises/{RAISES}/quarantine").json() == {"released": 0}
        assert client.delete("/promises/no-such/quarantine").status_code == 404
        reader_key = server.promise("keys", "create", "reader", "--scopes", "read").strip()
        reader = server.client(reader_key)
        assert reader.delete(f"/promises/{RAISES}/quarantine").status_code == 403
    finally:
        stop_server(server)
