"""Interaction records: validated at the edge (pydantic), then an immutable dataclass inside.

Limits (documented in the README): a record is at most ``MAX_RECORD_BYTES`` of JSON, ids
and text fields at most ``MAX_TEXT`` characters, attributes nested at most
``MAX_DEPTH`` levels. Every rejection names the field and the reason.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_RECORD_BYTES = 64 * 1024
MAX_TEXT = 256
MAX_DEPTH = 8
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


class RecordIn(BaseModel):
    """An interaction record as other systems send it (SPEC §2)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=MAX_TEXT, examples=["evt-000123"])
    occurred_at: AwareDatetime = Field(examples=["2024-03-01T10:00:00Z"])
    customer_id: str = Field(min_length=1, max_length=MAX_TEXT, examples=["C-1"])
    case_id: str | None = Field(default=None, max_length=MAX_TEXT, examples=["K-9"])
    channel: str = Field(min_length=1, max_length=MAX_TEXT, examples=["email"])
    direction: Literal["inbound", "outbound", "internal"]
    type: str = Field(min_length=1, max_length=MAX_TEXT, examples=["message"])
    team: str | None = Field(default=None, max_length=MAX_TEXT, examples=["claims"])
    agent: str | None = Field(default=None, max_length=MAX_TEXT, examples=["a-17"])
    attributes: dict[str, Any] = Field(default_factory=dict, examples=[{"item": "policy_number"}])

    @field_validator("attributes")
    @classmethod
    def _not_too_deep(cls, value: dict[str, Any]) -> dict[str, Any]:
        if _depth(value) > MAX_DEPTH:
            raise ValueError(f"attributes are nested more than {MAX_DEPTH} levels deep")
        if _has_nul(value):
            raise ValueError("text must not contain NUL (\\u0000) characters")
        return value

    @field_validator("id", "customer_id", "case_id", "channel", "type", "team", "agent")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        # Databases (PostgreSQL) cannot store NUL in text: refuse it here, with a reason.
        if value is not None and "\x00" in value:
            raise ValueError("must not contain NUL (\\u0000) characters")
        return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


@dataclass(frozen=True, slots=True)
class Interaction:
    """A valid record. ``at`` is integer epoch microseconds: the engine's unit of time."""

    id: str
    occurred_at: datetime
    customer_id: str
    channel: str
    direction: str
    type: str
    case_id: str | None = None
    team: str | None = None
    agent: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def at(self) -> int:
        return to_micros(self.occurred_at)

    @property
    def order(self) -> tuple[datetime, str]:
        """Event-time order: ``occurred_at``, then ``id``."""
        return (self.occurred_at, self.id)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "occurred_at": self.occurred_at.isoformat(),
            "customer_id": self.customer_id,
            "channel": self.channel,
            "direction": self.direction,
            "type": self.type,
        }
        for name in ("case_id", "team", "agent"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.attributes:
            out["attributes"] = self.attributes
        return out

    def fingerprint(self) -> str:
        """Same record, same fingerprint: tells a harmless re-send from a conflicting one."""
        text = orjson.dumps(self.to_json(), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(text).hexdigest()

    def fields(self) -> dict[str, Any]:
        """The record as the rules core sees it: flat, ``attributes.a.b`` keys, scalars only.

        Integral floats become ints because durable-rules does not match 1 with 1.0.
        """
        flat: dict[str, Any] = {
            "id": self.id,
            "customer_id": self.customer_id,
            "channel": self.channel,
            "direction": self.direction,
            "type": self.type,
        }
        for name in ("case_id", "team", "agent"):
            value = getattr(self, name)
            if value:
                flat[name] = value
        _flatten("attributes", self.attributes, flat)
        return flat


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}", inner, out)
    elif isinstance(value, float) and value.is_integer():
        out[prefix] = int(value)
    elif isinstance(value, str | int | float | bool):
        out[prefix] = value


def to_micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICRO


def from_micros(micros: int) -> datetime:
    return _EPOCH + micros * _MICRO


@dataclass(frozen=True)
class Rejection:
    """Why a record was refused: the field (dotted path) and the reason."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


def parse_record(raw: Any) -> Interaction | list[Rejection]:
    """Validate one raw record (a decoded JSON value); never raises for bad input."""
    if not isinstance(raw, dict):
        return [Rejection("(record)", f"a record is a JSON object, got {type(raw).__name__}")]
    size = len(json.dumps(raw, default=str))
    if size > MAX_RECORD_BYTES:
        return [Rejection("(record)", f"record is {size} bytes; the limit is {MAX_RECORD_BYTES}")]
    try:
        model = RecordIn.model_validate(raw)
    except ValidationError as exc:
        return [_rejection(error) for error in exc.errors()]
    return Interaction(
        id=model.id,
        occurred_at=model.occurred_at.astimezone(UTC),
        customer_id=model.customer_id,
        channel=model.channel,
        direction=model.direction,
        type=model.type,
        case_id=model.case_id or None,
        team=model.team or None,
        agent=model.agent or None,
        attributes=model.attributes,
    )


def _rejection(error: dict[str, Any]) -> Rejection:
    name = ".".join(str(part) for part in error["loc"]) or "(record)"
    kind = error["type"]
    if kind == "timezone_aware":
        reason = "needs a UTC offset or Z, e.g. 2024-03-01T10:00:00Z (naive times are ambiguous)"
    elif kind == "extra_forbidden":
        reason = "unknown field; put extra data under 'attributes'"
    elif kind == "missing":
        reason = "required"
    elif kind == "literal_error":
        reason = f"must be one of inbound, outbound, internal; got {error['input']!r}"
    elif kind == "string_too_short":
        reason = "must not be empty"
    elif kind in ("dict_type", "model_type") and name == "attributes":
        reason = f"must be a JSON object, got {type(error['input']).__name__}"
    else:
        reason = error["msg"].removeprefix("Value error, ")
        if "input" in error and kind != "value_error":
            reason += f" (got {error['input']!r})"
    return Rejection(name, reason)
