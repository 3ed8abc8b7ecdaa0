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
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.tokens import (
    BlockEndToken,
    BlockMappingStartToken,
    BlockSequenceStartToken,
    FlowMappingEndToken,
    FlowMappingStartToken,
    FlowSequenceEndToken,
    FlowSequenceStartToken,
)

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


MAX_FILE_BYTES = 1024 * 1024
"""A definition file is a few KiB; a bigger one is a mistake and would take seconds to parse."""
MAX_NESTING = 50
"""Deeper YAML is refused before it is parsed: ruamel's composer recurses (RecursionError
at ~300 flow levels, after seconds of work)."""
MAX_VALUES = 100_000
"""Values after aliases are expanded: a "billion laughs" file of ten lines names 3.5e9."""
_STR_TAG = "tag:yaml.org,2002:str"
_OPENERS = (BlockMappingStartToken, BlockSequenceStartToken)
_FLOW_OPENERS = (FlowMappingStartToken, FlowSequenceStartToken)
_CLOSERS = (BlockEndToken, FlowMappingEndToken, FlowSequenceEndToken)


class _Refused(Exception):
    """A value the promise language cannot hold, at ``location``."""

    def __init__(self, location: Location, message: str) -> None:
        super().__init__(message)
        self.location = location
        self.message = message


def _plain(node: Any, where: Location = (), seen: list[int] | None = None) -> Any:
    """Strip ruamel's wrapper types so values hash, compare and serialise like JSON.

    Refuses (raises _Refused) what no definition needs and later stages cannot handle: YAML
    tags, NUL and lone surrogates in text, and more than ``MAX_VALUES`` values, counted as
    aliases expand (each alias is a copy here), or a recursive alias.
    """
    seen = [0] if seen is None else seen
    seen[0] += 1
    if seen[0] > MAX_VALUES:
        raise _Refused(where[:1], f"more than {MAX_VALUES:,} values once YAML aliases are expanded")
    if len(where) > MAX_NESTING:
        raise _Refused(where, f"nested more than {MAX_NESTING} levels (a recursive alias?)")
    tag = getattr(getattr(node, "tag", None), "value", None)
    if isinstance(node, TaggedScalar) and tag == _STR_TAG:
        node = str(node.value)
    elif tag is not None or isinstance(node, TaggedScalar | bytes | set):
        shown = tag or type(node).__name__
        raise _Refused(where, f"YAML tags ({shown}) are not part of the promise language")
    if isinstance(node, dict):
        plain = {}
        for k, v in node.items():
            key = str(k) if not isinstance(k, bool | int | float) else k
            _check_text(key, where)
            plain[key] = _plain(v, (*where, key), seen)
        return plain
    if isinstance(node, list):
        return [_plain(v, (*where, n), seen) for n, v in enumerate(node)]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        _check_text(node, where)
        return str(node)
    if isinstance(node, date) or node is None:
        return node
    raise _Refused(where, f"a YAML {type(node).__name__} is not part of the promise language")


def _check_text(text: Any, where: Location) -> None:
    if isinstance(text, str) and "\x00" in text:
        raise _Refused(where, "text must not contain NUL (\\0) characters")
    if isinstance(text, str) and any("\ud800" <= c <= "\udfff" for c in text):
        raise _Refused(where, "text must be valid Unicode: no lone surrogates (\\ud800)")


def _too_deep(text: str) -> int | None:
    """The line at which ``text`` nests more than MAX_NESTING levels, read token by token
    (the scanner does not recurse), or None."""
    depth = 0
    for token in YAML(typ="rt").scan(text):
        if isinstance(token, _OPENERS + _FLOW_OPENERS):
            depth += 1
            if depth > MAX_NESTING:
                return int(token.start_mark.line) + 1
        elif isinstance(token, _CLOSERS):
            depth -= 1
    return None


def _not_utf8(file: Path, raw: bytes, exc: UnicodeDecodeError) -> Problem:
    at = exc.start
    line = raw.count(b"\n", 0, at) + 1
    column = at - raw.rfind(b"\n", 0, at)
    hint = " (it looks like UTF-16)" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
    return Problem(
        file,
        line,
        f"not UTF-8 text{hint}: byte 0x{raw[at]:02x} at column {column} is {exc.reason}; "
        "save the file as UTF-8",
    )


def _syntax_reason(exc: MarkedYAMLError) -> str:
    """ruamel's words, completed: its problem alone ("but found another document") is often
    half a sentence, and a tab deserves to be called one."""
    problem, context = exc.problem or "", exc.context or ""
    if "'\\t'" in problem or "tab" in problem:
        return f"a tab character ({problem}): YAML is indented with spaces, never tabs"
    reason = problem or context or "invalid YAML"
    if problem and context:
        started, found = exc.context_mark, exc.problem_mark
        if started is not None and found is not None and started.line != found.line:
            context += f" that starts at line {started.line + 1}"
        reason = f"{context}, {problem}" if problem.startswith("but") else f"{problem} ({context})"
    return reason


def read_yaml(file: Path) -> YamlDocument | Problem:
    """Parse one file, or return the problem (unreadable, not UTF-8, syntax) with its line."""
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            return Problem(
                file, 1, f"the file is {size:,} bytes; a definition file is at most 1 MiB"
            )
        raw = file.read_bytes()
    except OSError as exc:
        return Problem(file, 1, f"cannot read file: {exc.strerror or exc}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _not_utf8(file, raw, exc)
    try:
        deep = _too_deep(text)
        if deep is not None:
            return Problem(file, deep, f"YAML nested more than {MAX_NESTING} levels deep")
        tree = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        return Problem(file, line, f"YAML syntax error: {_syntax_reason(exc)}")
    except ReaderError as exc:  # a character YAML does not allow, found before parsing
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return Problem(file, line, f"YAML syntax error: {exc.reason} (U+{code:04X})")
    except RecursionError:  # a recursive alias, say: never a traceback
        return Problem(file, 1, "YAML nested too deeply to read")
    try:
        data = _plain(tree)
    except _Refused as exc:
        return YamlDocument(file, None, tree).problem(exc.location, exc.message)
    except RecursionError:
        return Problem(file, 1, "YAML nested too deeply to read")
    return YamlDocument(file, data, tree)
