"""Interaction records: validated at the edge (pydantic), then an immutable dataclass inside.

Limits (documented in the README): a record is at most ``MAX_RECORD_BYTES`` of JSON, ids
and text fields at most ``MAX_TEXT`` characters, attribute keys at most
``RecordLimits.max_attribute_key`` characters, attributes nested at most
``MAX_DEPTH`` levels with at most ``MAX_ATTRIBUTE_FIELDS`` values reachable through
objects, ``occurred_at`` between ``EARLIEST`` and ``RecordLimits.max_future`` (from
PROMISE_MAX_FUTURE_SECONDS, default one day) after the wall clock. Attribute values must
be JSON: text without NUL or lone surrogates (no database stores them), 64-bit integers,
finite numbers. Every rejection names the field and the reason, and no input makes
validation raise.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from engine.clock import to_micros
from engine.settings import Settings
from rules.compiler import core_value
from rules.models import RECORD_FIELDS

MAX_RECORD_BYTES = 64 * 1024
MAX_TEXT = 256
MAX_DEPTH = 8
MAX_ATTRIBUTE_FIELDS = 200
"""Scalar attribute values reachable through objects: each is one field of the rules core's
fact, and durable-rules refuses a fact of more than 254 fields (error 302). A record it
cannot hold could never be evaluated, so it is refused here, where the sender hears why."""
MAX_ATTRIBUTE_KEY = 128
"""Characters in one attribute key (default of ``RecordLimits.max_attribute_key``): keys are
field names of the rules core's fact and of the flat record, not a place for data."""
MAX_PROBLEMS = 20
"""Problems listed per record; a record with thousands of unknown keys gets a short answer."""
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""The engine's time is epoch microseconds, and business calendars are built per year from
here on: an earlier ``occurred_at`` is a mistake (a year 0001 date once crashed evaluation)."""
_INT64 = (-(2**63), 2**63 - 1)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_BRIEF = 60


@dataclass(frozen=True)
class RecordLimits:
    """The bounds of a valid record that a deployment sets (the others are the constants
    above): built from the :class:`Settings` where a process starts, passed to
    :func:`parse_record`."""

    max_future: timedelta = timedelta(seconds=Settings.model_fields["max_future_seconds"].default)
    """How far after the wall clock ``occurred_at`` may lie (PROMISE_MAX_FUTURE_SECONDS)."""
    max_attribute_key: int = MAX_ATTRIBUTE_KEY
    """Characters in one attribute key, at any depth."""

    @classmethod
    def from_settings(cls, settings: Settings) -> RecordLimits:
        return cls(max_future=timedelta(seconds=settings.max_future_seconds))


DEFAULT_LIMITS = RecordLimits()


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

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _iso_text(cls, value: Any) -> Any:
        # pydantic would read 1709287200 (or "1709287200") as Unix seconds and 20240301 as
        # a day in 1970: SPEC §2 asks for ISO 8601 text, so anything else is refused.
        if isinstance(value, datetime):
            return value
        if not isinstance(value, str) or not _ISO_DATE.match(value):
            raise ValueError(
                "must be an ISO 8601 time with a UTC offset, e.g. 2024-03-01T10:00:00Z; "
                f"got {_described(value)}"
            )
        try:  # only for its words: pydantic says "extra characters" of 25:00
            datetime.fromisoformat(value)
        except ValueError as exc:
            reason = str(exc)
            if reason.startswith("offset must be"):
                reason = "the UTC offset must be less than 24 hours"
            if "must be in" in reason or "out of range" in reason or "offset" in reason:
                raise ValueError(f"{_brief(value)} is not a valid time: {reason}") from None
        return value

    @field_validator("occurred_at")
    @classmethod
    def _in_range(cls, value: datetime, info: ValidationInfo) -> datetime:
        try:
            moment = value.astimezone(UTC)
        except (OverflowError, ValueError):  # e.g. 0001-01-01T00:00:00+01:00 is in year 0
            raise ValueError(f"{value.isoformat()} is out of range once converted to UTC") from None
        if moment < EARLIEST:
            raise ValueError(
                f"{moment.isoformat()} is before {EARLIEST.isoformat()}, the earliest time "
                "the engine keeps"
            )
        now = datetime.now(UTC)
        limits = info.context if isinstance(info.context, RecordLimits) else DEFAULT_LIMITS
        ahead = limits.max_future
        if moment > now + ahead:
            # The clock is the latest event time seen (SPEC §4): one record from the future
            # would move it there and break every open deadline at once.
            raise ValueError(
                f"{moment.isoformat()} is in the future: more than {_seconds(ahead)} after "
                f"the current time {now.replace(microsecond=0).isoformat()}; a record from "
                "the future would move the engine's clock and break every open deadline "
                "(the bound is PROMISE_MAX_FUTURE_SECONDS)"
            )
        return moment

    @field_validator("attributes", mode="before")
    @classmethod
    def _json_attributes(cls, value: Any, info: ValidationInfo) -> Any:
        # Before pydantic's own check, which names a bad key by a mangled copy of it.
        if value is None:  # null means absent, as for the other optional fields
            return {}
        if isinstance(value, dict):
            limits = info.context if isinstance(info.context, RecordLimits) else DEFAULT_LIMITS
            shape = _shape_problem(value)
            problems = (
                [f"attributes are {shape}"]
                if shape
                else _attribute_problems(value, limits.max_attribute_key)
            )
            if problems:
                raise ValueError("; ".join(problems))
        return value

    @field_validator(*RECORD_FIELDS)
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        # Databases (PostgreSQL) cannot store NUL in text: refuse it here, with a reason.
        if value is not None and "\x00" in value:
            raise ValueError("must not contain NUL (\\u0000) characters")
        return value


def _seconds(span: timedelta) -> str:
    total = int(span.total_seconds())
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if total and total % size == 0:
            count = total // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{total} seconds"


def _json_type(value: Any) -> str:
    """The JSON name of a value's type, as a sender would say it (not Python's)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _safe(text: str) -> str:
    """``text`` fit for a message: control characters, NUL and lone surrogates escaped (a
    lone surrogate in a JSON answer cannot even be encoded), cut to a readable length."""
    shown = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text[:_BRIEF])
    return shown + ("..." if len(text) > _BRIEF else "")


def _described(value: Any) -> str:
    """``value`` as a sender would name it: "null", "number 1", "text 'now'", "a list..."."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, list | tuple | dict):
        return f"{'an' if isinstance(value, dict) else 'a'} {_json_type(value)} {_brief(value)}"
    return f"{_json_type(value)} {_brief(value)}"


def _brief(value: Any) -> str:
    """A short, printable repr of a (possibly huge) input value."""
    if isinstance(value, str):
        return f"'{_safe(value)}'"
    if isinstance(value, list | tuple | dict):
        return f"of {len(value)} item{'s' if len(value) != 1 else ''}"
    return _safe(repr(value))


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "text must not contain NUL (\\u0000) characters"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # only lone surrogates cannot be encoded
            return "text must be valid Unicode: lone surrogates such as \\ud800 cannot be stored"
    return None


def _shape_problem(value: Any) -> str | None:
    """Why ``value`` cannot be inspected at all: nested deeper than ``MAX_DEPTH`` or holding
    a key that is not text. Iterative: 100,000 nested lists cost no recursion (json.dumps
    and repr raised RecursionError on them)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list | tuple) and depth >= MAX_DEPTH:
            return f"nested more than {MAX_DEPTH} levels deep"
        if isinstance(item, dict):
            for key, inner in item.items():
                if not isinstance(key, str):
                    return f"object keys must be text, got {_described(key)}"
                stack.append((inner, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((inner, depth + 1) for inner in item)
    return None


def _attribute_problems(attributes: dict[str, Any], max_key: int) -> list[str]:
    """What no database or rules core can hold (the first few), keys longer than
    ``max_key`` characters, and too many fields."""
    problems: list[str] = []
    fields = 0
    # (path, value, whether the rules core sees it: values reached through objects only)
    stack: list[tuple[str, Any, bool]] = [("attributes", attributes, True)]
    while stack and len(problems) < 5:
        path, item, flat = stack.pop()
        problem = None
        if isinstance(item, dict):
            for key, inner in item.items():
                if (bad := _text_problem(key)) is not None:
                    problems.append(f"{bad} (in the key {_brief(key)} at {_safe(path)})")
                elif len(key) > max_key:
                    problems.append(
                        f"a key of {len(key)} characters is longer than the limit of {max_key} "
                        f"(the key {_brief(key)} at {_safe(path)})"
                    )
                stack.append((f"{path}.{key}", inner, flat))
            continue
        if isinstance(item, list | tuple):
            stack.extend((f"{path}[{n}]", inner, False) for n, inner in enumerate(item))
            continue
        if isinstance(item, str):
            problem = _text_problem(item)
        elif isinstance(item, bool) or item is None:
            pass
        elif isinstance(item, int):
            if not _INT64[0] <= item <= _INT64[1]:
                problem = "integers must fit in 64 bits; send larger numbers as text"
        elif isinstance(item, float):
            if not math.isfinite(item):
                problem = f"numbers must be finite (NaN and Infinity are not JSON), got {item}"
        else:
            problem = (
                "must be a JSON value (text, number, boolean, null, list or object), "
                f"got {_json_type(item)}"
            )
        if problem is not None:
            problems.append(f"{problem} (at {_safe(path)})")
        fields += flat and item is not None
    if fields > MAX_ATTRIBUTE_FIELDS:
        problems.append(
            f"{fields} values reachable through objects; the limit is {MAX_ATTRIBUTE_FIELDS} "
            "(each is a field of the rules core's fact): put long series in lists"
        )
    return problems


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
        """The record as a sender writes it (SPEC §2), absent fields left out."""
        out: dict[str, Any] = {}
        for name in _FIELD_NAMES:
            value = getattr(self, name)
            if value is not None and value != {}:
                out[name] = value
        out["occurred_at"] = self.occurred_at.isoformat()
        return out

    def fingerprint(self) -> str:
        """Same record, same fingerprint: tells a harmless re-send from a conflicting one."""
        text = orjson.dumps(self.to_json(), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(text).hexdigest()

    def fields(self) -> dict[str, Any]:
        """The record as the rules core sees it: flat, ``attributes.a.b`` keys, scalars only.

        Integral floats become ints because durable-rules does not match 1 with 1.0.
        """
        flat = {name: value for name in RECORD_FIELDS if (value := getattr(self, name))}
        _flatten("attributes", self.attributes, flat)
        return flat


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(Interaction))


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}", inner, out)
    elif isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        out[prefix] = int(value)  # not 1e308: an int that large breaks the JSON encoder
    elif isinstance(value, float):
        out[prefix] = core_value(value)  # 1e-07 as durable-rules can read it
    elif isinstance(value, str | int | bool):
        out[prefix] = value


@dataclass(frozen=True)
class Rejection:
    """Why a record was refused: the field (dotted path) and the reason."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


def parse_record(raw: Any, limits: RecordLimits = DEFAULT_LIMITS) -> Interaction | list[Rejection]:
    """Validate one raw record (a decoded JSON value); never raises for bad input."""
    if not isinstance(raw, dict):
        return [Rejection("(record)", f"a record is a JSON object, got {_json_type(raw)}")]
    # Shape first: the size measure below, pydantic's messages and the databases all
    # recurse, and a key that is not text breaks JSON encoding.
    shapes = [
        Rejection(_safe(str(name)), "field names must be text")
        if not isinstance(name, str)
        else Rejection(_safe(name), problem)
        for name, value in raw.items()
        if not isinstance(name, str)
        or (isinstance(value, dict | list | tuple) and (problem := _shape_problem(value)))
    ]
    if shapes:
        return _capped(
            [
                Rejection(r.field, f"attributes are {r.reason}")
                if r.field == "attributes" and r.reason.startswith("nested")
                else r
                for r in shapes
            ]
        )
    size = len(json.dumps(raw, default=str))
    if size > MAX_RECORD_BYTES:
        name, biggest = max(
            ((str(k), len(json.dumps(v, default=str))) for k, v in raw.items()),
            key=lambda pair: pair[1],
        )
        return [
            Rejection(
                "(record)",
                f"record is {size} bytes of JSON; the limit is {MAX_RECORD_BYTES} "
                f"('{_safe(name)}' alone is {biggest} bytes)",
            )
        ]
    try:
        model = RecordIn.model_validate(raw, context=limits)
    except ValidationError as exc:
        return _capped([_rejection(error) for error in exc.errors()])
    return Interaction(
        occurred_at=model.occurred_at.astimezone(UTC),
        attributes=model.attributes,
        **{name: getattr(model, name) or None for name in RECORD_FIELDS},  # "" is absent
    )


def _capped(problems: list[Rejection]) -> list[Rejection]:
    if len(problems) <= MAX_PROBLEMS:
        return problems
    more = len(problems) - MAX_PROBLEMS
    return [*problems[:MAX_PROBLEMS], Rejection("(record)", f"and {more} more problems")]


def _rejection(error: dict[str, Any]) -> Rejection:
    name = _safe(".".join(str(part) for part in error["loc"])) or "(record)"
    kind = error["type"]
    if kind == "timezone_aware":
        reason = "needs a UTC offset or Z, e.g. 2024-03-01T10:00:00Z (naive times are ambiguous)"
    elif kind == "extra_forbidden":
        reason = "unknown field; put extra data under 'attributes'"
    elif kind == "missing":
        reason = "required"
    elif kind == "literal_error":
        reason = f"must be one of inbound, outbound, internal; got {_brief(error['input'])}"
    elif kind == "string_too_short":
        reason = "must not be empty"
    elif kind == "string_unicode":
        reason = "must be valid Unicode text: lone surrogates such as \\ud800 cannot be stored"
    elif kind == "string_type":
        reason = f"must be text, got {_described(error['input'])}"
    elif kind in ("dict_type", "model_type") and name == "attributes":
        reason = f"must be a JSON object, got {_json_type(error['input'])}"
    else:
        reason = error["msg"].removeprefix("Value error, ")
        if "input" in error and kind != "value_error":
            reason += f" (got {_brief(error['input'])})"
    return Rejection(name, reason)
