"""Mapping files: how the rows of someone else's CSV export become interaction records.

A mapping is YAML, validated here with pydantic; every problem names the mapping file, the
line and the key (``mapping.yaml:12: record.type.map: ...``). The format is documented,
with examples, in ``docs/mapping.md``; :mod:`engine.ingest.importer` applies a mapping to a file.

Nothing here knows any particular data set: values come from constants, columns, lookups
and templates, and three generic derivations cover what a flat export does not say
directly: the root of a reply chain (``thread_root``), how many earlier rows of the same
group match a condition (``count_earlier``), and an extra record whenever a column changes
from the previous row of the same group (``derive: on_change``).
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.errors import Invalid
from rules.errors import Problem
from rules.matches import did_you_mean
from rules.models import RECORD_FIELDS
from rules.yaml_source import Location, YamlDocument, read_yaml

SPECIAL = ("row",)
"""Names a template may use besides columns: ``{row}`` is the data row's 1-based number."""
RECORD_PREFIX = "record."
_PLACEHOLDER = re.compile(r"\{([^{}:]+)(?::([^{}]*))?\}")


class MappingError(Invalid):
    """The mapping file cannot be used; every problem is listed with its file and line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


Scalar = str | int | float | bool
CellTest = Scalar | list[Scalar] | dict[str, Any]


class Condition(_Strict):
    """Column tests that must all hold: ``{Activity: [Wait, Closed], inbound: "True"}``.

    A test is a value (equal), a list (one of), ``{missing: true|false}``,
    ``{matches: "regex"}`` (whole value) or ``{not: <test>}``. Values compare as text.
    """

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def _tests(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not data:
            raise ValueError("a condition is a mapping of column to test, e.g. {Activity: Wait}")
        for column, test in data.items():
            _check_test(str(column), test)
        return data

    @property
    def tests(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def _check_test(column: str, test: Any) -> None:
    if isinstance(test, dict):
        if len(test) != 1 or next(iter(test)) not in ("missing", "matches", "not"):
            raise ValueError(
                f"test of column '{column}': use a value, a list, {{missing: true}}, "
                f"{{matches: regex}} or {{not: test}}; got {test!r}"
            )
        op, arg = next(iter(test.items()))
        if op == "missing" and not isinstance(arg, bool):
            raise ValueError(f"test of column '{column}': missing takes true or false")
        if op == "matches":
            try:
                re.compile(str(arg))
            except re.error as exc:
                raise ValueError(
                    f"test of column '{column}': bad regular expression: {exc}"
                ) from None
        if op == "not":
            _check_test(column, arg)
    elif isinstance(test, list):
        if not test or not all(isinstance(v, Scalar) for v in test):
            raise ValueError(f"test of column '{column}': a list needs one or more plain values")
    elif not isinstance(test, Scalar):
        raise ValueError(f"test of column '{column}': expected a value, got {test!r}")


class CountEarlier(_Strict):
    """How many rows earlier in event time, in the same group, satisfy ``when``."""

    within: str
    when: Condition | None = None


class ThreadRoot(_Strict):
    """The root of a reply chain: follow ``parent`` (a column holding another row's ``id``)
    up to a row without a parent, or to a parent that is not in the file (its id is the
    root: replies to the same missing message are one thread)."""

    id: str
    parent: str


class Value(_Strict):
    """Where one record value comes from: exactly one source, then optional steps."""

    const: Scalar | None = None
    column: str | None = None
    template: str | None = None
    thread_root: ThreadRoot | None = None
    count_earlier: CountEarlier | None = None
    of: Literal["row", "parent", "root"] = "row"
    map: dict[str, Scalar | None] | None = None
    default: Scalar | None = None
    as_: Literal["text", "integer", "number", "boolean"] | None = Field(default=None, alias="as")
    when: Condition | None = None
    or_: Value | None = Field(default=None, alias="or")
    skip_if_missing: str | None = Field(default=None, min_length=1)
    """Skip the row, counted under this reason, when the value (``or`` included) is empty."""

    @model_validator(mode="before")
    @classmethod
    def _constant(cls, data: Any) -> Any:
        if isinstance(data, Scalar):
            return {"const": data}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> Value:
        sources = [
            name
            for name in ("const", "column", "template", "thread_root", "count_earlier")
            if getattr(self, name) is not None
        ]
        if len(sources) != 1:
            found = f"found {', '.join(sources)}" if sources else "found none"
            raise ValueError(
                "a value needs exactly one source: const, column, template, thread_root "
                f"or count_earlier; {found}"
            )
        if self.of != "row" and sources[0] not in ("column", "template"):
            raise ValueError("'of' applies to column and template values only")
        if self.template is not None and not _PLACEHOLDER.search(self.template):
            raise ValueError(
                f"template {self.template!r} uses no column: write columns in braces, "
                "e.g. '{Case ID}-{row}' (use const for fixed text)"
            )
        return self

    @field_validator("map", mode="before")
    @classmethod
    def _text_keys(cls, value: Any) -> Any:
        # YAML reads `True:` and `1:` as non-text keys; cells are always text.
        if isinstance(value, dict):
            return {_text(k): v for k, v in value.items()}
        return value


class Timestamp(_Strict):
    column: str
    format: str | None = None
    """``strptime`` codes, e.g. ``"%Y/%m/%d %H:%M:%S.%f"``; none means ISO 8601."""
    timezone: str | None = None
    """For times written without an offset (an IANA name, e.g. Europe/Rome)."""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"unknown time zone '{value}': use an IANA name such as Europe/Rome"
                ) from None
        return value


class Source(_Strict):
    delimiter: str = ","
    encoding: str = "utf-8"
    missing: list[str] = [""]
    """Cell values that mean "no value" (after trimming spaces), e.g. ["", "?", "NaN"]."""

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError(f"the delimiter is one character, got {value!r}")
        return value


class Skip(_Strict):
    when: Condition
    reason: str = Field(min_length=1)


class RecordSpec(_Strict):
    id: Value
    customer_id: Value
    channel: Value
    direction: Value
    type: Value
    case_id: Value | None = None
    team: Value | None = None
    agent: Value | None = None
    attributes: dict[str, Value] = {}


class Derive(_Strict):
    """Emit one more record whenever ``on_change`` differs from the previous row (in event
    time) of the same ``within`` group: a copy of the row's record with ``type`` (and any
    other field given in ``record``) replaced, id ``<row's id>/<type>``, and
    ``attributes.change = {column, from, to}``."""

    on_change: str
    within: str
    type: str = Field(min_length=1)
    record: dict[str, Value] = {}

    @field_validator("record")
    @classmethod
    def _known_fields(cls, value: dict[str, Value]) -> dict[str, Value]:
        for name in value:
            if name not in RECORD_FIELDS or name in ("id", "type"):
                settable = ", ".join(f for f in RECORD_FIELDS if f not in ("id", "type"))
                raise ValueError(f"derive.record can set {settable}; not '{name}'")
        return value


class MappingDoc(_Strict):
    description: str | None = None
    source: Source = Source()
    timestamp: Timestamp
    skip: list[Skip] = []
    record: RecordSpec
    derive: list[Derive] = []


# --- loading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mapping:
    """A validated mapping and where it came from (for messages that point into it)."""

    doc: MappingDoc
    file: Path
    yaml: YamlDocument

    def problem(self, location: Location, message: str, *, at_key: bool = False) -> Problem:
        return self.yaml.problem(location, message, at_key=at_key)

    def columns_used(self) -> list[tuple[Location, str]]:
        """Every column the mapping names, with where it names it."""
        return list(_columns(self.doc))

    def check_columns(self, header: list[str], file: Path) -> None:
        """Raise MappingError naming each column the mapping uses that ``file`` lacks."""
        problems = []
        for where, name in self.columns_used():
            if name in header or name in SPECIAL:
                continue
            problems.append(
                self.problem(
                    where,
                    f"{'.'.join(map(str, where))}: no column '{name}' in {file}"
                    f"{did_you_mean(name, header)}; its columns: {', '.join(header)}",
                )
            )
        if problems:
            raise MappingError(problems)


def load_mapping(file: Path) -> Mapping:
    """Read and validate a mapping file; raises MappingError with every problem."""
    file = Path(file)
    if not file.is_file():
        raise MappingError([Problem(file, 0, "no such mapping file")])
    doc = read_yaml(file)
    if isinstance(doc, Problem):
        raise MappingError([doc])
    if not isinstance(doc.data, dict):
        raise MappingError([doc.problem((), "a mapping file is a YAML mapping of keys")])
    try:
        parsed = MappingDoc.model_validate(doc.data)
    except ValidationError as exc:
        raise MappingError([_explain(doc, error) for error in exc.errors()]) from None
    mapping = Mapping(parsed, file, doc)
    problems = list(_cross_checks(mapping))
    if problems:
        raise MappingError(problems)
    return mapping


def _cross_checks(mapping: Mapping) -> typing.Iterator[Problem]:
    doc = mapping.doc
    for index, derive in enumerate(doc.derive):
        yield from _within_problems(mapping, ("derive", index, "within"), derive.within)
    for where, value in _values(doc):
        if value.count_earlier is not None:
            yield from _within_problems(
                mapping, (*where, "count_earlier", "within"), value.count_earlier.within
            )
        if value.of != "row" and not _thread_of(doc):
            yield mapping.problem(
                (*where, "of"),
                f"{'.'.join(map(str, where))}.of: '{value.of}' needs a thread_root value "
                "somewhere in the mapping (it says which column links a row to its parent)",
            )
    roots = {(v.thread_root.id, v.thread_root.parent) for _, v in _values(doc) if v.thread_root}
    if len(roots) > 1:
        yield mapping.problem(
            (), "every thread_root in one mapping must use the same id and parent columns"
        )


def _within_problems(mapping: Mapping, where: Location, within: str) -> typing.Iterator[Problem]:
    if within.startswith(RECORD_PREFIX):
        name = within.removeprefix(RECORD_PREFIX)
        if name not in RECORD_FIELDS:
            yield mapping.problem(
                where,
                f"{'.'.join(map(str, where))}: '{within}' is not a record field"
                f"{did_you_mean(name, RECORD_FIELDS)}; use record.case_id, record.customer_id, ... "
                "or a column name",
            )
        elif getattr(mapping.doc.record, name) is None:
            yield mapping.problem(
                where, f"{'.'.join(map(str, where))}: record.{name} is not mapped"
            )


def _thread_of(doc: MappingDoc) -> ThreadRoot | None:
    return next((v.thread_root for _, v in _values(doc) if v.thread_root), None)


def thread_of(mapping: Mapping) -> ThreadRoot | None:
    """The mapping's reply-chain columns (from its thread_root values), if any."""
    return _thread_of(mapping.doc)


def _values(doc: MappingDoc) -> typing.Iterator[tuple[Location, Value]]:
    """Every Value in the mapping, nested ``or`` values included, with its location."""

    def walk(where: Location, value: Value) -> typing.Iterator[tuple[Location, Value]]:
        yield where, value
        if value.or_ is not None:
            yield from walk((*where, "or"), value.or_)

    for name in RECORD_FIELDS:
        value = getattr(doc.record, name)
        if value is not None:
            yield from walk(("record", name), value)
    for name, value in doc.record.attributes.items():
        yield from walk(("record", "attributes", name), value)
    for index, derive in enumerate(doc.derive):
        for name, value in derive.record.items():
            yield from walk(("derive", index, "record", name), value)


def _condition_columns(where: Location, condition: Condition | None):
    if condition is not None:
        for column in condition.tests:
            yield (*where, column), column


def _columns(doc: MappingDoc) -> typing.Iterator[tuple[Location, str]]:
    yield ("timestamp", "column"), doc.timestamp.column
    for index, skip in enumerate(doc.skip):
        yield from _condition_columns(("skip", index, "when"), skip.when)
    for where, value in _values(doc):
        if value.column is not None:
            yield (*where, "column"), value.column
        if value.template is not None:
            for match in _PLACEHOLDER.finditer(value.template):
                yield (*where, "template"), match.group(1)
        if value.thread_root is not None:
            yield (*where, "thread_root", "id"), value.thread_root.id
            yield (*where, "thread_root", "parent"), value.thread_root.parent
        if value.count_earlier is not None:
            within = value.count_earlier.within
            if not within.startswith(RECORD_PREFIX):
                yield (*where, "count_earlier", "within"), within
            yield from _condition_columns(
                (*where, "count_earlier", "when"), value.count_earlier.when
            )
        yield from _condition_columns((*where, "when"), value.when)
    for index, derive in enumerate(doc.derive):
        yield ("derive", index, "on_change"), derive.on_change
        if not derive.within.startswith(RECORD_PREFIX):
            yield ("derive", index, "within"), derive.within


def _explain(doc: YamlDocument, error: dict) -> Problem:
    loc = tuple(_alias(part) for part in error["loc"] if not _is_union_tag(part))
    name = ".".join(str(p) for p in loc) or "(top)"
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_at(loc[:-1])
        hint = did_you_mean(str(loc[-1]), allowed)
        message = f"{name}: unknown key{hint}"
        if allowed:
            message += f"; allowed: {', '.join(allowed)}"
        return doc.problem(loc, message, at_key=True)
    if kind == "missing":
        return doc.problem(loc[:-1], f"{name}: required key missing", at_key=True)
    message = error["msg"].removeprefix("Value error, ")
    if kind not in ("value_error",) and "input" in error:
        message += f" (got {error['input']!r})"
    return doc.problem(loc, f"{name}: {message}")


def _alias(part: Any) -> Any:
    return {"as_": "as", "or_": "or"}.get(part, part)


def _is_union_tag(part: Any) -> bool:
    # pydantic names the union member it tried (e.g. 'str', 'list[...]', 'Value'): not a key.
    return isinstance(part, str) and (
        part in ("str", "int", "float", "bool", "Value") or "[" in part
    )


_SHAPES: dict[str, type[BaseModel]] = {
    "": MappingDoc,
    "source": Source,
    "timestamp": Timestamp,
    "record": RecordSpec,
}


def _allowed_at(loc: tuple) -> list[str]:
    if not loc:
        return list(MappingDoc.model_fields)
    if loc[0] in ("skip",):
        return ["when", "reason"]
    if loc[0] == "derive" and len(loc) == 2:
        return list(Derive.model_fields)
    if loc[0] == "record" and len(loc) == 1:
        return list(RecordSpec.model_fields)
    if len(loc) == 1 and loc[0] in _SHAPES:
        return list(_SHAPES[loc[0]].model_fields)
    if loc[-1] == "thread_root":
        return ["id", "parent"]
    if loc[-1] == "count_earlier":
        return ["within", "when"]
    return [_alias(n) for n in Value.model_fields]


def _text(value: Any) -> str:
    """A YAML scalar as the text a CSV cell would hold (True -> "True", 1 -> "1")."""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def cell_text(value: Any) -> str:
    return _text(value)
