"""Pre-flight checks and backtests run in a small pool of child processes, each request under
a time and a memory limit (issue #16, item 4).

A slow or large evaluation is injected by tests/faulty/sitecustomize.py into the sandbox's
children of a real `promise serve`: a backtest of a draft named ``slow-draft`` sleeps for an
hour, one named ``hog-draft`` allocates 1 GiB. Everything else is the real service.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx import Response
from sqlalchemy import Engine

from conftest import ROOT, Server, start_server, stop_server

TIMEOUT = 8
DRAFT = (ROOT / "promises" / "two-handoffs.yaml").read_text()
PLANNED = {
    "channel": "email",
    "direction": "outbound",
    "type": "info_requested",
    "team": "claims",
    "attributes": {"item": "policy_number"},
}


def _draft(name: str) -> dict[str, str]:
    return {"yaml": DRAFT.replace("id: two-handoffs", f"id: {name}")}


@pytest.fixture
def server(db_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A server with a pool of two sandbox children, an 8 s time limit and 512 MiB each."""
    faulty = str(ROOT / "tests" / "faulty")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([faulty, os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("PROMISE_TEST_SANDBOX", "slow-draft:sleep,hog-draft:hog")
    monkeypatch.setenv("PROMISE_SANDBOX_PROCESSES", "2")
    monkeypatch.setenv("PROMISE_SANDBOX_TIMEOUT_SECONDS", str(TIMEOUT))
    monkeypatch.setenv("PROMISE_SANDBOX_MEMORY_MB", "512")
    running = start_server(db_engine.url.render_as_string(False), tmp_path, "--no-live")
    yield running
    stop_server(running)


def _timed(client: httpx.Client, method: str, url: str, **kwargs: Any) -> tuple[float, Response]:
    """How long the request took, and its answer."""
    began = time.monotonic()
    answer = client.request(method, url, **kwargs)
    return time.monotonic() - began, answer


def test_a_slow_backtest_times_out_without_holding_up_a_customer_and_the_next_works(
    server: Server,
) -> None:
    with server.client() as client, ThreadPoolExecutor(2) as background:
        # Two requests at once start both children (each takes seconds to start), so that
        # the customer's standing below is answered by a warm one.
        warming = [background.submit(server.client().get, "/customers/C-1/promises") for _ in "ab"]
        assert [w.result().status_code for w in warming] == [200, 200]
        slow = background.submit(
            _timed, server.client(), "POST", "/promises/backtest", json=_draft("slow-draft")
        )
        time.sleep(1)  # the slow backtest holds one child
        standing = client.get("/customers/C-1/promises")
        assert standing.status_code == 200, standing.text
        assert not slow.done(), "the customer's standing waited for the slow backtest"
        took, answer = slow.result(timeout=TIMEOUT + 30)
    assert answer.status_code == 503
    assert f"took longer than {TIMEOUT} s" in answer.json()["detail"]
    assert int(answer.headers["Retry-After"]) >= 1
    assert took >= TIMEOUT  # killed at the limit (result() above bounds how long it may take)
    # The child was killed and is replaced: pre-flight and backtests work again.
    with server.client() as client:
        assert client.post("/customers/C-1/check", json=PLANNED).json()["ok"] is True
        answer = client.post("/promises/backtest", json=_draft("two-handoffs"))
        assert answer.status_code == 200, answer.text
        assert answer.json()["promise"] == "two-handoffs"


def test_a_full_pool_is_answered_503_with_retry_after_at_once(server: Server) -> None:
    with ThreadPoolExecutor(2) as background:
        slow = [
            background.submit(
                _timed, server.client(), "POST", "/promises/backtest", json=_draft("slow-draft")
            )
            for _ in range(2)
        ]
        time.sleep(3)  # both children taken (a request takes its child as it arrives)
        with server.client() as client:
            refused = client.post("/customers/C-1/check", json=PLANNED)
            assert refused.status_code == 503
            assert "busy" in refused.json()["detail"]
            assert refused.headers["Retry-After"] == "1"
            assert not any(f.done() for f in slow)  # answered at once, not after a slow one
        assert [f.result(timeout=TIMEOUT + 30)[1].status_code for f in slow] == [503, 503]
    with server.client() as client:
        assert client.post("/customers/C-1/check", json=PLANNED).status_code == 200


def test_a_backtest_over_the_memory_limit_is_refused_and_its_child_replaced(
    server: Server,
) -> None:
    with server.client() as client:
        answer = client.post("/promises/backtest", json=_draft("hog-draft"))
        assert answer.status_code == 503
        assert "needed more than 512 MiB" in answer.json()["detail"]
        assert "Retry-After" in answer.headers
        assert client.post("/customers/C-1/check", json=PLANNED).status_code == 200
