"""schemathesis against the live OpenAPI schema: no generated request gets a 5xx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Server


@pytest.fixture(autouse=True)
def _configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fully configured server: without an erasure key, erasing answers 503 on purpose."""
    monkeypatch.setenv("PROMISE_ERASURE_KEY", "fuzz-erasure-key")


@pytest.mark.slow
def test_no_generated_request_makes_the_server_fail(server: Server) -> None:
    server.client().post(
        "/interactions",
        json={
            "id": "e1",
            "occurred_at": "2024-03-01T16:00:00Z",
            "customer_id": "C-1",
            "case_id": "K-1",
            "channel": "email",
            "direction": "inbound",
            "type": "message",
        },
    )
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "st"),
            "run",
            f"{server.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {server.admin_key}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "25",
            "--seed",
            "7",
            "--phases",
            "examples,coverage,fuzzing",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:]
