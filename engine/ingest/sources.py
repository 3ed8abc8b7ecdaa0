"""Reading interaction records from files: JSONL (one record per line) or CSV.

CSV columns are the record's fields; a column named ``attributes.<path>`` fills that
attribute, and an empty cell means "absent". Every bad line is reported with its number
and skipped; the rest is kept.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.ingest.decoding import BadBatch, decode_json
from engine.records import DEFAULT_LIMITS, Interaction, RecordLimits, Rejection, parse_record


@dataclass(frozen=True)
class BadLine:
    file: Path
    line: int
    problems: list[Rejection]

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: " + "; ".join(map(str, self.problems))


def read_records(
    file: Path, limits: RecordLimits = DEFAULT_LIMITS
) -> Iterator[tuple[int, Interaction | BadLine]]:
    """Yield (line number, record) for each line of ``file``, or a BadLine saying what is wrong."""
    raw_rows = _csv_rows(file) if file.suffix.lower() == ".csv" else _jsonl_rows(file)
    for line, raw in raw_rows:
        if isinstance(raw, Rejection):
            yield line, BadLine(file, line, [raw])
            continue
        parsed = parse_record(raw, limits)
        yield line, (BadLine(file, line, parsed) if isinstance(parsed, list) else parsed)


def _jsonl_rows(file: Path) -> Iterator[tuple[int, Any]]:
    """Each line's JSON, or why it has none (invalid UTF-8 is refused, not replaced: a
    record's ids must not silently change)."""
    with file.open("rb") as handle:
        for number, data in enumerate(handle, start=1):
            if not data.strip():
                continue
            try:
                yield number, decode_json(data, "the line")
            except BadBatch as exc:
                yield number, Rejection("(line)", str(exc))


def _csv_rows(file: Path) -> Iterator[tuple[int, Any]]:
    with file.open(encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            record: dict[str, Any] = {}
            for column, cell in row.items():
                if column is None or cell is None or cell == "":
                    continue
                if column.startswith("attributes."):
                    _put(record.setdefault("attributes", {}), column.split(".")[1:], _cell(cell))
                else:
                    record[column] = cell
            yield reader.line_num, record


def _put(target: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value


def _cell(text: str) -> Any:
    """Numbers in CSV attributes become numbers, so ``{lte: 6}`` can compare them."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text
