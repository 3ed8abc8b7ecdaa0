"""Access logs without customer ids: uvicorn's access log with ids in paths redacted.

Logs are kept longer and copied wider than the database, and an erasure cannot reach them,
so a customer id never enters them: the path segment after ``/customers/`` (the API's and the
dashboard's) and ``customer_id=`` in query strings are written as ``<redacted>``.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

REDACTED = "<redacted>"
_IN_PATH = re.compile(r"(/customers/)[^?]*?(?=/(?:promises|check|export)(?:\?|$)|\?|$)")
_IN_QUERY = re.compile(r"([?&]customer_id=)[^&]*")


def redact(path: str) -> str:
    """``path`` (with its query string) without the customer ids it names."""
    return _IN_QUERY.sub(rf"\g<1>{REDACTED}", _IN_PATH.sub(rf"\g<1>{REDACTED}", path))


class RedactCustomerIds(logging.Filter):
    """Rewrites the path of uvicorn's access log records (``client, method, path, http
    version, status``); other records pass unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (*args[:2], redact(args[2]), *args[3:])
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with the access log redacted."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_customer_ids"] = {"()": RedactCustomerIds}
    config["handlers"]["access"]["filters"] = ["redact_customer_ids"]
    return config
