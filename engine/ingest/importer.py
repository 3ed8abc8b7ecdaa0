"""Apply a mapping (:mod:`engine.ingest.mapping`) to a CSV export: rows in, interaction records out.

Reading copes with what real exports do:

* a header that repeats a name: the second ``Variant`` is ``Variant.2``, the third
  ``Variant.3``; every column can also be named by position, ``#1`` for the first (an
  empty header name is only reachable that way);
* a bare carriage return (CR without LF) inside an unquoted field: read as a space instead
  of ending the row;
* missing values: cells listed in the mapping's ``source.missing`` (default: empty) are
  absent; whole-number ids written as ``3.0`` (a spreadsheet's float column) match ``3``.

Every row is accounted for: read, then skipped (by a ``skip`` rule, counted per reason),
rejected (it maps to an invalid record, or to a record id an earlier row gave other content;
counted per field and reason), a duplicate (the same record as an earlier row) or mapped.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from engine.ingest.dedup import Deduplicator
from engine.ingest.mapping import (
    _PLACEHOLDER,
    RECORD_PREFIX,
    Condition,
    Mapping,
    MappingError,
    Value,
    cell_text,
    thread_of,
)
from engine.records import DEFAULT_LIMITS, Interaction, RecordLimits, parse_record
from rules.models import RECORD_FIELDS

_BARE_CR = re.compile(r"\r(?!\n)")
_WHOLE_FLOAT = re.compile(r"-?\d+\.0+")


@dataclass
class Row:
    number: int  # 1-based data row (the header is not counted)
    line: int  # 1-based line of the file where the row starts
    cells: dict[str, str]  # column name -> cell, missing values left out
    at: datetime | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # computed record fields (cache)


@dataclass
class ImportResult:
    """What an import did, row by row, counted."""

    file: Path
    rows: int = 0
    records: list[Interaction] = field(default_factory=list)
    mapped: int = 0
    duplicates: int = 0  # rows whose record an earlier row (or file) already made
    derived: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    first_line: dict[str, int] = field(default_factory=dict)  # reason -> first line it hit

    def lines(self) -> list[str]:
        """A plain-text account: rows read, mapped, derived, skipped and rejected, by reason."""
        out = [
            f"{self.file}: {self.rows} rows read, {self.mapped} mapped, "
            f"{sum(self.skipped.values())} skipped, {sum(self.rejected.values())} rejected; "
            f"{len(self.records)} records"
        ]
        for kind, count in sorted(self.derived.items()):
            out.append(f"  + {count} derived '{kind}' records")
        if self.duplicates:
            out.append(f"  = {self.duplicates} rows repeat the record of an earlier row")
        for reason, count in self.skipped.most_common():
            out.append(f"  skipped {count}: {reason} (first at line {self.first_line[reason]})")
        for reason, count in self.rejected.most_common():
            out.append(f"  rejected {count}: {reason} (first at line {self.first_line[reason]})")
        return out


# --- reading ---------------------------------------------------------------------------------


def header_names(raw: list[str]) -> list[str]:
    """Disambiguate repeated names: the n-th occurrence (n >= 2) of ``X`` is ``X.n``."""
    seen: Counter[str] = Counter()
    names = []
    for name in raw:
        name = name.strip()
        seen[name] += 1
        names.append(name if seen[name] == 1 else f"{name}.{seen[name]}")
    return names


def read_rows(
    file: Path, *, delimiter: str = ",", encoding: str = "utf-8", missing: list[str] | None = None
) -> tuple[list[str], Iterator[Row]]:
    """The column names (then their ``#n`` aliases) and an iterator over the data rows."""
    absent = {m.strip() for m in (missing if missing is not None else [""])}
    with Path(file).open(encoding=encoding, errors="replace", newline="") as handle:
        text = handle.read()
    text = _BARE_CR.sub(" ", text.removeprefix("\ufeff"))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        names = header_names(next(reader))
    except StopIteration:
        return [], iter(())

    def rows() -> Iterator[Row]:
        number = 0
        line = reader.line_num + 1
        for values in reader:
            start, line = line, reader.line_num + 1
            if not any(v.strip() for v in values):
                continue
            number += 1
            cells: dict[str, str] = {}
            for index, value in enumerate(values):
                if value.strip() in absent:
                    continue
                cells[f"#{index + 1}"] = value
                if index < len(names) and names[index]:
                    cells[names[index]] = value
            yield Row(number, start, cells)

    return [*(n for n in names if n), *(f"#{i + 1}" for i in range(len(names)))], rows()


# --- mapping ---------------------------------------------------------------------------------


class _Rejected(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


class _Skipped(_Rejected):
    """A row the mapping says to leave out (``skip_if_missing``), not a bad row."""


def holds(condition: Condition | None, cells: dict[str, str]) -> bool:
    if condition is None:
        return True
    return all(_test(cells.get(column), test) for column, test in condition.tests.items())


def _test(cell: str | None, test: Any) -> bool:
    if isinstance(test, dict):
        op, arg = next(iter(test.items()))
        if op == "missing":
            return (cell is None) == arg
        if op == "matches":
            return cell is not None and re.fullmatch(str(arg), cell) is not None
        return not _test(cell, arg)
    if cell is None:
        return False
    if isinstance(test, list):
        return cell in {cell_text(v) for v in test}
    return cell == cell_text(test)


def _id_key(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return text.split(".")[0] if _WHOLE_FLOAT.fullmatch(text) else text


class _Mapper:
    """Computes record fields for rows, with access to other rows (parents, groups)."""

    def __init__(self, mapping: Mapping, rows: list[Row]) -> None:
        self.mapping = mapping
        self.rows = rows
        self.thread = thread_of(mapping)
        self.by_id: dict[str, Row] = {}
        if self.thread is not None:
            for row in rows:
                key = _id_key(row.cells.get(self.thread.id))
                if key is not None:
                    self.by_id.setdefault(key, row)
        self.counts: dict[int, dict[int, int]] = {}  # id(Value) -> row number -> count

    # -- values

    def value(self, spec: Value, row: Row) -> Any:
        target = self.target(spec, row)
        result = (
            self._value(spec, row, target)
            if target is not None and holds(spec.when, target.cells)
            else None
        )
        if result is None and spec.or_ is not None:
            return self.value(spec.or_, row)
        return result

    def target(self, spec: Value, row: Row) -> Row | None:
        """The row a value reads (and its ``when`` tests): the row, its parent or its root."""
        if spec.of == "parent":
            return self.parent(row)
        if spec.of == "root":
            root = self.root(row)
            return self.by_id.get(root) if root is not None else None
        return row

    def _value(self, spec: Value, row: Row, target: Row) -> Any:
        raw: Any
        if spec.const is not None:
            raw = spec.const
        elif spec.column is not None:
            raw = target.cells.get(spec.column)
        elif spec.template is not None:
            raw = _fill(spec.template, target)
        elif spec.thread_root is not None:
            raw = self.root(row)
        else:
            raw = self.count_earlier(spec, row)
        if raw is not None and spec.map is not None:
            key = cell_text(raw)
            raw = spec.map.get(key, spec.default)
        elif raw is None and spec.default is not None:
            raw = spec.default
        return _convert(raw, spec.as_)

    def parent(self, row: Row) -> Row | None:
        assert self.thread is not None  # checked when the mapping loaded
        key = _id_key(row.cells.get(self.thread.parent))
        return self.by_id.get(key) if key is not None else None

    def root(self, row: Row) -> str | None:
        """The id at the top of ``row``'s reply chain (a missing parent's id ends it)."""
        assert self.thread is not None
        current, seen = row, set()
        while True:
            key = _id_key(current.cells.get(self.thread.id))
            parent = _id_key(current.cells.get(self.thread.parent))
            if parent is None or parent in seen or parent == key:
                return key
            seen.add(key)
            parent_row = self.by_id.get(parent)
            if parent_row is None:
                return parent
            current = parent_row

    def count_earlier(self, spec: Value, row: Row) -> int:
        counts = self.counts.get(id(spec))
        if counts is None:
            assert spec.count_earlier is not None
            counts = {}
            for group in self.groups(spec.count_earlier.within).values():
                seen = 0
                for member in group:
                    counts[member.number] = seen
                    if holds(spec.count_earlier.when, member.cells):
                        seen += 1
            self.counts[id(spec)] = counts
        return counts.get(row.number, 0)

    def groups(self, within: str) -> dict[Any, list[Row]]:
        """Rows with a timestamp by their ``within`` value, each group in event-time order."""
        groups: dict[Any, list[Row]] = defaultdict(list)
        for row in self.rows:
            if row.at is None:
                continue
            key = self.group_key(within, row)
            if key is not None:
                groups[key].append(row)
        for group in groups.values():
            group.sort(key=lambda r: (r.at, r.number))
        return groups

    def group_key(self, within: str, row: Row) -> Any:
        if within.startswith(RECORD_PREFIX):
            name = within.removeprefix(RECORD_PREFIX)
            spec = getattr(self.mapping.doc.record, name)
            return self.value(spec, row)
        return row.cells.get(within)

    # -- records

    def record(self, row: Row, at: datetime) -> dict[str, Any]:
        spec = self.mapping.doc.record
        raw: dict[str, Any] = {"occurred_at": at.isoformat()}
        for name in RECORD_FIELDS:  # occurred_at comes from the mapping's timestamp
            value_spec = getattr(spec, name)
            if value_spec is not None:
                value = self.value(value_spec, row)
                if value is None and value_spec.skip_if_missing:
                    raise _Skipped(value_spec.skip_if_missing)
                if value is not None:
                    raw[name] = value if isinstance(value, str) else cell_text(value)
        attributes = {}
        for name, value_spec in spec.attributes.items():
            value = self.value(value_spec, row)
            if value is None and value_spec.skip_if_missing:
                raise _Skipped(value_spec.skip_if_missing)
            if value is not None:
                attributes[name] = value
        if attributes:
            raw["attributes"] = attributes
        return raw


def _fill(template: str, row: Row) -> str | None:
    missing = False

    def one(match: re.Match[str]) -> str:
        nonlocal missing
        name, spec = match.group(1), match.group(2) or ""
        value: Any = row.number if name == "row" else row.cells.get(name)
        if value is None:
            missing = True
            return ""
        return format(value, spec)

    text = _PLACEHOLDER.sub(one, template)
    return None if missing else text


def _convert(value: Any, kind: str | None) -> Any:
    if value is None or kind in (None, "text"):
        return value if value is None or kind is None else cell_text(value)
    text = cell_text(value).strip()
    try:
        if kind == "integer":
            return int(float(text)) if _WHOLE_FLOAT.fullmatch(text) else int(text)
        if kind == "number":
            return float(text)
    except ValueError:
        kind_text = "an integer" if kind == "integer" else "a number"
        raise _Rejected(f"'{text}' is not {kind_text}") from None
    lowered = text.lower()
    if lowered in ("true", "yes", "1", "y", "t"):
        return True
    if lowered in ("false", "no", "0", "n", "f"):
        return False
    raise _Rejected(f"'{text}' is not true or false")


def _timestamp(mapping: Mapping, row: Row) -> datetime:
    spec = mapping.doc.timestamp
    text = row.cells.get(spec.column)
    if text is None:
        raise _Rejected(f"timestamp: column '{spec.column}' is empty")
    try:
        moment = (
            datetime.strptime(text.strip(), spec.format)
            if spec.format
            else datetime.fromisoformat(text.strip())
        )
    except ValueError:
        expected = f"format {spec.format!r}" if spec.format else "ISO 8601"
        raise _Rejected(f"timestamp: '{spec.column}' does not match {expected}") from None
    if moment.tzinfo is None:
        if spec.timezone is None:
            raise _Rejected(
                f"timestamp: '{spec.column}' has no UTC offset and the mapping names no timezone"
            )
        moment = moment.replace(tzinfo=ZoneInfo(spec.timezone))
    return moment


def import_files(
    files: Iterable[Path],
    mapping: Mapping,
    on_row: Callable[[int], None] = lambda n: None,
    limits: RecordLimits = DEFAULT_LIMITS,
) -> list[ImportResult]:
    """:func:`import_file` for each file, with one :class:`Deduplicator` across them all: a
    record id that an earlier file made is a duplicate, or refused if its content differs."""
    known = Deduplicator()
    return [import_file(file, mapping, on_row, limits, known=known) for file in files]


def import_file(
    file: Path,
    mapping: Mapping,
    on_row: Callable[[int], None] = lambda n: None,
    limits: RecordLimits = DEFAULT_LIMITS,
    *,
    known: Deduplicator | None = None,
) -> ImportResult:
    """Map every row of ``file``; records come back in event-time order, ids unique (also
    across the files that share ``known``).

    Raises MappingError when the file lacks a column the mapping names.
    """
    known = known if known is not None else Deduplicator()
    source = mapping.doc.source
    header, rows_iter = read_rows(
        file, delimiter=source.delimiter, encoding=source.encoding, missing=source.missing
    )
    mapping.check_columns(header, file)
    result = ImportResult(Path(file))
    kept: list[Row] = []
    for row in rows_iter:
        result.rows += 1
        on_row(1)
        rule = next((s for s in mapping.doc.skip if holds(s.when, row.cells)), None)
        if rule is not None:
            _count(result, result.skipped, rule.reason, row)
            continue
        try:
            row.at = _timestamp(mapping, row)
        except _Rejected as exc:
            _count(result, result.rejected, exc.reason, row)
            continue
        kept.append(row)
    mapper = _Mapper(mapping, kept)
    by_row: dict[int, Interaction] = {}
    for row in kept:
        assert row.at is not None
        try:
            raw = mapper.record(row, row.at)
        except _Skipped as exc:
            _count(result, result.skipped, exc.reason, row)
            continue
        except _Rejected as exc:
            _count(result, result.rejected, exc.reason, row)
            continue
        parsed = parse_record(raw, limits)
        if isinstance(parsed, list):
            reason = "; ".join(str(p) for p in parsed)
            _count(result, result.rejected, _general(reason), row)
            continue
        answer = known.admit(parsed)
        if answer.status == "duplicate":
            result.duplicates += 1
        elif answer.status == "rejected":
            _count(result, result.rejected, "; ".join(map(str, answer.problems)), row)
        else:
            by_row[row.number] = parsed
            result.mapped += 1
    derived: list[Interaction] = []
    for derive in mapping.doc.derive:
        mapped_rows = [r for r in kept if r.number in by_row]
        derived_mapper = _Mapper(mapping, mapped_rows)
        for group in derived_mapper.groups(derive.within).values():
            for before, row in itertools.pairwise(group):
                old, new = before.cells.get(derive.on_change), row.cells.get(derive.on_change)
                if old is None or new is None or old == new:
                    continue
                record = _derived(derived_mapper, derive, by_row[row.number], row, old, new, limits)
                if isinstance(record, str):
                    _count(result, result.rejected, f"derived {derive.type}: {record}", row)
                    continue
                answer = known.admit(record)
                if answer.status == "rejected":
                    problems = "; ".join(map(str, answer.problems))
                    _count(result, result.rejected, f"derived {derive.type}: {problems}", row)
                elif answer.status == "accepted":
                    derived.append(record)
                    result.derived[derive.type] += 1
    result.records = sorted([*by_row.values(), *derived], key=lambda r: r.order)
    return result


def _derived(
    mapper: _Mapper,
    derive: Any,
    base: Interaction,
    row: Row,
    old: str,
    new: str,
    limits: RecordLimits,
) -> Interaction | str:
    raw = base.to_json()
    raw["id"] = f"{base.id}/{derive.type}"
    raw["type"] = derive.type
    attributes = dict(raw.get("attributes", {}))
    for name, spec in derive.record.items():
        if name == "attributes":
            continue
        value = mapper.value(spec, row)
        if value is None:
            raw.pop(name, None)
        else:
            raw[name] = value if isinstance(value, str) else cell_text(value)
    attributes["change"] = {"column": derive.on_change, "from": old, "to": new}
    raw["attributes"] = attributes
    parsed = parse_record(raw, limits)
    if isinstance(parsed, list):
        return "; ".join(str(p) for p in parsed)
    return parsed


def _general(reason: str) -> str:
    """Rejection reasons without the per-row value, so equal problems count together."""
    return re.sub(r" \(got .*\)$", "", reason)


def _count(result: ImportResult, counter: Counter[str], reason: str, row: Row) -> None:
    counter[reason] += 1
    result.first_line.setdefault(reason, row.line)


__all__ = [
    "ImportResult",
    "MappingError",
    "header_names",
    "import_file",
    "import_files",
    "read_rows",
]
