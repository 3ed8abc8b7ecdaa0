"""Mapping files (engine/mapping.py) and the importer (engine/importer.py), on small CSVs."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.ingest.importer import header_names, import_file, read_rows
from engine.ingest.mapping import MappingError, load_mapping

BASE = """\
timestamp: {column: When, timezone: Europe/Rome, format: "%Y-%m-%d %H:%M"}
record:
  id: {template: "{Case}-{row:03d}"}
  case_id: {column: Case}
  customer_id: {column: Who}
  channel: web
  direction: {column: What, map: {asked: inbound}, default: internal}
  type: {column: What, map: {asked: opened, answered: response}, default: activity}
  agent: {column: Agent}
"""


def _write(tmp_path: Path, name: str, text: str, *, newline: str | None = None) -> Path:
    path = tmp_path / name
    with path.open("w", encoding="utf-8", newline=newline) as handle:
        handle.write(text)
    return path


def _import(tmp_path: Path, csv_text: str, mapping_text: str = BASE, **extra: str):
    mapping = load_mapping(_write(tmp_path, "mapping.yaml", mapping_text))
    return import_file(_write(tmp_path, "export.csv", csv_text, **extra), mapping)


def test_rows_become_records_with_deterministic_ids_in_the_named_zone(tmp_path: Path) -> None:
    result = _import(
        tmp_path,
        "Case,What,When,Who,Agent\n"
        "K1,asked,2024-03-01 10:00,c1,\n"
        "K1,answered,2024-03-01 10:30,c1,a1\n",
    )
    first, second = result.records
    assert first.to_json() == {
        "id": "K1-001",
        "occurred_at": "2024-03-01T09:00:00+00:00",
        "customer_id": "c1",
        "case_id": "K1",
        "channel": "web",
        "direction": "inbound",
        "type": "opened",
    }
    assert (second.id, second.type, second.direction, second.agent) == (
        "K1-002",
        "response",
        "internal",
        "a1",
    )
    again = _import(tmp_path, "Case,What,When,Who,Agent\nK1,asked,2024-03-01 10:00,c1,\n")
    assert again.records[0] == first


def test_repeated_headers_are_numbered_and_every_column_has_a_position(tmp_path: Path) -> None:
    assert header_names(["Variant", "x", "Variant", "Variant"]) == [
        "Variant",
        "x",
        "Variant.2",
        "Variant.3",
    ]
    path = _write(tmp_path, "a.csv", ",id,Variant,Variant\n0,7,a,b\n")
    names, rows = read_rows(path)
    assert names == ["id", "Variant", "Variant.2", "#1", "#2", "#3", "#4"]
    [row] = list(rows)
    assert row.cells == {"#1": "0", "#2": "7", "id": "7", "#3": "a", "Variant": "a"} | {
        "#4": "b",
        "Variant.2": "b",
    }


def test_a_bare_carriage_return_inside_a_field_does_not_split_the_row(tmp_path: Path) -> None:
    path = _write(tmp_path, "cr.csv", "id,text,n\n1,hello\rworld,2\n3,ok,4\n", newline="")
    _, rows = read_rows(path)
    assert [r.cells["text"] for r in rows] == ["hello world", "ok"]
    crlf = _write(tmp_path, "crlf.csv", "id,text\r\n1,a\r\n2,b\r\n", newline="")
    assert [r.cells["text"] for r in read_rows(crlf)[1]] == ["a", "b"]


def test_missing_values_are_absent_and_required_ones_are_counted(tmp_path: Path) -> None:
    mapping = BASE.replace("timestamp:", 'source: {missing: ["", "?"]}\ntimestamp:')
    result = _import(
        tmp_path,
        "Case,What,When,Who,Agent\n"
        "K1,asked,2024-03-01 10:00,?,?\n"
        "K2,asked,2024-03-01 10:00,c2,?\n"
        "K3,asked,yesterday,c3,a\n",
        mapping,
    )
    assert [r.id for r in result.records] == ["K2-002"]
    assert result.records[0].agent is None
    assert dict(result.rejected) == {
        "customer_id: required": 1,
        "timestamp: 'When' does not match format '%Y-%m-%d %H:%M'": 1,
    }
    assert result.first_line == {
        "customer_id: required": 2,
        "timestamp: 'When' does not match format '%Y-%m-%d %H:%M'": 4,
    }


def test_skip_rules_are_counted_per_reason(tmp_path: Path) -> None:
    mapping = BASE + (
        "skip:\n"
        "  - when: {What: [spam, test]}\n"
        "    reason: not a customer interaction\n"
        "  - when: {Who: {matches: 'bot-\\d+'}}\n"
        "    reason: automated\n"
    )
    result = _import(
        tmp_path,
        "Case,What,When,Who,Agent\n"
        "K1,spam,2024-03-01 10:00,c1,\n"
        "K1,test,2024-03-01 10:00,c1,\n"
        "K1,asked,2024-03-01 10:00,bot-7,\n"
        "K1,asked,2024-03-01 10:00,c1,\n",
        mapping,
    )
    assert dict(result.skipped) == {"not a customer interaction": 2, "automated": 1}
    assert (result.rows, result.mapped) == (4, 1)
    assert "skipped 2: not a customer interaction (first at line 2)" in "\n".join(result.lines())


def test_a_change_of_column_within_a_group_derives_a_record(tmp_path: Path) -> None:
    mapping = BASE + (
        "derive:\n"
        "  - {on_change: Agent, within: Case, type: handoff, record: {direction: internal}}\n"
    )
    result = _import(
        tmp_path,
        "Case,What,When,Who,Agent\n"
        "K1,asked,2024-03-01 10:00,c1,a1\n"
        "K2,asked,2024-03-01 10:05,c2,a2\n"
        "K1,answered,2024-03-01 11:00,c1,a1\n"
        "K1,answered,2024-03-01 12:00,c1,a3\n"  # a1 -> a3: a handoff
        "K1,answered,2024-03-01 09:00,c1,a9\n",  # earlier in time: a9 -> a1 is one too
        mapping,
    )
    handoffs = [r for r in result.records if r.type == "handoff"]
    assert [(h.id, h.attributes["change"]) for h in handoffs] == [
        ("K1-001/handoff", {"column": "Agent", "from": "a9", "to": "a1"}),
        ("K1-004/handoff", {"column": "Agent", "from": "a1", "to": "a3"}),
    ]
    assert handoffs[1].direction == "internal" and handoffs[1].case_id == "K1"
    assert dict(result.derived) == {"handoff": 2}


def test_a_row_repeating_a_record_is_a_duplicate_and_one_changing_it_is_refused(
    tmp_path: Path,
) -> None:
    """docs/mapping.md: a row whose content changed under the same id is refused as a
    conflict (the first row's record stays); the same record again is a duplicate."""
    mapping = BASE.replace('{template: "{Case}-{row:03d}"}', "{column: Id}")
    result = _import(
        tmp_path,
        "Id,Case,What,When,Who,Agent\n"
        "r1,K1,asked,2024-03-01 10:00,c1,\n"
        "r1,K1,asked,2024-03-01 10:00,c1,\n"  # the same record again
        "r1,K1,asked,2024-03-01 10:05,c1,\n"  # another record under the same id
        "r2,K1,answered,2024-03-01 10:30,c1,a1\n",
        mapping,
    )
    assert [(r.id, r.occurred_at.minute) for r in result.records] == [("r1", 0), ("r2", 30)]
    assert (result.rows, result.mapped, result.duplicates) == (4, 2, 1)
    assert dict(result.rejected) == {
        "id: 'r1' is already stored with different content; a record id can only ever mean "
        "one record": 1
    }
    assert result.first_line == {next(iter(result.rejected)): 4}


THREADS = """\
timestamp: {column: at}
record:
  id: {template: "m{id}"}
  case_id: {thread_root: {id: id, parent: reply_to}}
  customer_id:
    column: author
    when: {inbound: "True"}
    or: {column: author, of: parent, when: {inbound: "True"}}
  channel: social
  direction: {column: inbound, map: {"True": inbound, "False": outbound}}
  type: message
  attributes:
    replies_before: {count_earlier: {within: record.case_id, when: {inbound: "False"}}}
"""


def test_threads_count_earlier_and_parents(tmp_path: Path) -> None:
    result = _import(
        tmp_path,
        "id,author,inbound,at,reply_to\n"
        "1,ann,True,2024-03-01T10:00:00Z,\n"
        "2,ann,True,2024-03-01T10:05:00Z,1.0\n"  # 1.0 is how a float column writes 1
        "3,acme,False,2024-03-01T10:10:00Z,2\n"
        "4,ann,True,2024-03-01T10:20:00Z,3\n"
        "5,bob,True,2024-03-01T10:00:00Z,99\n"  # answers a tweet not in the file
        "6,acme,False,2024-03-01T10:30:00Z,5\n",
        THREADS,
    )
    by_id = {r.id: r for r in result.records}
    assert {i: by_id[f"m{i}"].case_id for i in range(1, 7)} == {
        1: "1",
        2: "1",
        3: "1",
        4: "1",
        5: "99",
        6: "99",
    }
    assert [by_id[f"m{i}"].attributes["replies_before"] for i in range(1, 5)] == [0, 0, 0, 1]
    assert (by_id["m3"].customer_id, by_id["m6"].customer_id) == ("ann", "bob")


def _problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(MappingError) as caught:
        load_mapping(_write(tmp_path, "mapping.yaml", text))
    return [str(p) for p in caught.value.problems]


def test_mapping_errors_name_the_file_line_and_key(tmp_path: Path) -> None:
    where = tmp_path / "mapping.yaml"
    text = BASE.replace("  channel: web\n", "  chanel: web\n").replace("Europe/Rome", "Europe/Roma")
    assert _problems(tmp_path, text) == [
        f"{where}:1: timestamp.timezone: unknown time zone 'Europe/Roma': use an IANA name "
        "such as Europe/Rome",
        f"{where}:2: record.channel: required key missing",
        f"{where}:6: record.chanel: unknown key (did you mean 'channel'?); allowed: id, "
        "customer_id, channel, direction, type, case_id, team, agent, attributes",
    ]
    two_sources = BASE.replace("{column: Agent}", "{column: Agent, const: x}")
    [problem] = _problems(tmp_path, two_sources)
    assert problem.startswith(f"{where}:9: record.agent: a value needs exactly one source")
    bad_of = BASE.replace("{column: Agent}", "{column: Agent, of: parent}")
    [problem] = _problems(tmp_path, bad_of)
    assert problem.startswith(f"{where}:9: record.agent.of: 'parent' needs a thread_root")


def test_a_column_the_file_lacks_is_named_with_its_line(tmp_path: Path) -> None:
    mapping = load_mapping(_write(tmp_path, "mapping.yaml", BASE.replace("Agent}", "Agnet}")))
    export = _write(tmp_path, "export.csv", "Case,What,When,Who,Agent\n")
    with pytest.raises(MappingError) as caught:
        import_file(export, mapping)
    [problem] = caught.value.problems
    assert str(problem).startswith(
        f"{tmp_path / 'mapping.yaml'}:9: record.agent.column: no column 'Agnet' in {export} "
        "(did you mean 'Agent'?)"
    )
