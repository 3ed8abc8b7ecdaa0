"""Opaque keyset-pagination cursors for listings (outcomes, alerts)."""

from __future__ import annotations

import base64

from engine.errors import Malformed


class BadCursor(Malformed):
    """A pagination cursor this service did not hand out."""


def encode_cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(f"o:{row_id}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        row_id = int(value)
        if kind != "o" or not 0 <= row_id < 2**63:
            raise ValueError
        return row_id
    except ValueError:
        raise BadCursor(f"cursor {cursor!r} was not issued by this service") from None
