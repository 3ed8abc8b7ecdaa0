"""HTTP and file bodies to JSON, with errors that say what is wrong and where."""

from __future__ import annotations

import json
from typing import Any

import orjson

from engine.errors import Malformed
from engine.records import MAX_DEPTH


class BadBatch(Malformed):
    """A body from which no record can be read at all (the HTTP API answers 400)."""


def decode_batch(body: bytes) -> list[Any]:
    """The records in a JSON body (one record, or a list of them), for :func:`parse_record`.

    Raises BadBatch saying what is wrong and where when the body is not JSON at all. A lone
    surrogate escape ("\\ud800") is valid JSON syntax that orjson refuses: the body is then
    read by the standard library instead, so only the records holding one are refused.
    """
    if not body.strip():
        raise BadBatch("the body is empty: send one record (a JSON object) or a list of them")
    payload = decode_json(body)
    return payload if isinstance(payload, list) else [payload]


def decode_json(data: bytes, what: str = "the body") -> Any:
    """One JSON document (``what``, in messages); BadBatch says what is wrong and where."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return _decode_carefully(data, str(exc), what)


def _decode_carefully(body: bytes, failure: str, what: str) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:  # orjson says "surrogates not allowed" at char 0
        at = exc.start
        line = body.count(b"\n", 0, at) + 1
        column = at - body.rfind(b"\n", 0, at)
        raise BadBatch(
            f"{what} is not valid UTF-8 at line {line}, column {column} (byte {at}, "
            f"0x{body[at]:02x}): {exc.reason}; JSON must be sent as UTF-8"
        ) from None
    if "depth limit" in failure:
        raise BadBatch(
            f"malformed JSON: nested too deeply ({failure}); records allow attributes "
            f"nested at most {MAX_DEPTH} levels"
        )
    if "surrogate" not in failure:
        raise BadBatch(f"malformed JSON: {failure}")

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    try:
        return json.loads(text, parse_constant=refuse)
    except RecursionError:
        raise BadBatch("malformed JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, NaN, an integer of more than 4,300 digits
        raise BadBatch(f"malformed JSON: {exc}") from None
