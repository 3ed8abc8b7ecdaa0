"""YAML reading that remembers where every key and value came from.

ruamel.yaml's round-trip loader keeps line numbers on each mapping and sequence; the
rest of the language works on plain Python values and asks :class:`YamlDocument` for a
line when it has something to report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.reader import ReaderError

from rules.errors import Problem

Location = tuple[str | int, ...]


@dataclass(frozen=True)
class YamlDocument:
    """A parsed file: ``data`` as plain Python values, and the tree that knows the lines."""

    file: Path
    data: Any
    _tree: Any

    def line(self, location: Location, *, at_key: bool = False) -> int:
        """The 1-based line of the value at ``location`` (or of its key, with ``at_key``).

        A location that does not exist (a missing key) resolves to its nearest parent, which
        is where an author would add it.
        """
        node, line = self._tree, 1
        for depth, part in enumerate(location):
            last = depth == len(location) - 1
            if isinstance(node, CommentedMap) and part in node:
                key_line, _, value_line, _ = _map_positions(node, part)
                line = key_line if (last and at_key) else value_line
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        return line

    def problem(self, location: Location, message: str, *, at_key: bool = False) -> Problem:
        return Problem(self.file, self.line(location, at_key=at_key), message)


def _map_positions(node: CommentedMap, key: object) -> tuple[int, int, int, int]:
    key_line, key_col = node.lc.key(key)
    value_line, value_col = node.lc.value(key)
    return key_line + 1, key_col, value_line + 1, value_col


def _plain(node: Any) -> Any:
    """Strip ruamel's wrapper types so values hash, compare and serialise like JSON."""
    if isinstance(node, dict):
        return {
            str(k) if not isinstance(k, bool | int | float) else k: _plain(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, date):
        return node
    return node


def read_yaml(file: Path) -> YamlDocument | Problem:
    """Parse one file, or return the syntax problem with its line."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Problem(file, 1, f"cannot read file: {exc}")
    try:
        tree = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        reason = exc.problem or exc.context or "invalid YAML"
        return Problem(file, line, f"YAML syntax error: {reason}")
    except ReaderError as exc:  # a character YAML does not allow, found before parsing
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return Problem(file, line, f"YAML syntax error: {exc.reason} (U+{code:04X})")
    return YamlDocument(file, _plain(tree), tree)
