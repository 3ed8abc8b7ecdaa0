r"""Regular expressions for ``matches`` conditions, translated to the rules core's dialect.

Rule authors write the familiar Python/PCRE syntax. durable-rules has its own small regex
engine (full-string match, ``%`` instead of ``\`` for escapes, no anchors, no look-around),
so a pattern is checked with :mod:`re` first, then translated construct by construct;
anything without an exact equivalent is refused with a message instead of silently
matching something else.

Control characters are one such thing: the rules core sees a value, and a pattern, in its
JSON-escaped form, so a tab is the two characters ``\t`` to it (``..x`` matches a tab
then ``x``; ``[\t]`` matches a ``t``). Patterns may therefore not contain them (``\t``,
``\n``...), ``\s`` means the space only, and no pattern matches a value that holds one
exactly as Python would (docs/durable-rules-findings.md).

Repetition counts are another: the core allows at most ``{100}`` and misreads what it does
not refuse (``{,5}``, ``{0}``, ``{65636}``), so each count is checked and spelled out. What
only the core itself can tell (a pattern whose automaton outgrows its tables) is found by
compiling every promise there (``engine/evaluation/core_check.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Characters that durable-rules' regex parser treats as operators; a literal one is escaped
# with "%". Classes are spelled out because durable-rules' "%w" has no underscore.
_CORE_META = set(".|?*+()[]{}%")
_CLASS_ESCAPES = {"d": "0-9", "w": "A-Za-z0-9_", "s": " "}
_NEGATED = {"D": "d", "W": "w", "S": "s"}
_CONTROL_ESCAPES = set("tnrfva")
# Python reads "{" as a repetition only in these shapes ("{}" and the rest are literal).
_REPEAT = re.compile(r"\{(\d*)(?:(,)(\d*))?\}")
MAX_REPEAT = 100
"""The rules core's largest repetition count (``MAX_INTERVAL`` in its regex.c): it refuses
a larger upper bound, and reads counts as 16-bit numbers, so ``{65636}`` meant ``{100}``."""


def _control(source: str) -> ValueError:
    return ValueError(
        f"{source!r} holds a control character (tab, newline...), which the rules core "
        "cannot match: it sees them escaped. Match a space with ' ' or '\\s'"
    )


@dataclass(frozen=True)
class CoreRegex:
    """A pattern ready for durable-rules: ``pattern`` for ``$mt``, or ``$imt`` if ignoring case."""

    pattern: str
    ignore_case: bool


def _literal(char: str) -> str:
    return f"%{char}" if char in _CORE_META else char


def _translate_class(source: str, start: int) -> tuple[str, int]:
    """Translate ``[...]`` starting at ``start``; return the text and the index after ``]``."""
    out = ["["]
    i = start + 1
    if i < len(source) and source[i] == "^":
        out.append("^")
        i += 1
    first = True
    leading_dash = False  # the core rejects a leading "-" but takes a trailing one literally
    while i < len(source):
        char = source[i]
        if char == "]" and not first:
            out.append("-]" if leading_dash else "]")
            return "".join(out), i + 1
        if char == "-" and first:
            leading_dash = True
            i += 1
            continue
        if char == "\\":
            nxt = source[i + 1]
            if nxt in _CLASS_ESCAPES:
                out.append(_CLASS_ESCAPES[nxt])
            elif nxt in _CONTROL_ESCAPES:
                raise _control(source)
            elif nxt in _NEGATED or nxt.isalnum():
                raise ValueError(f"'\\{nxt}' inside [...] is not supported by the rules core")
            elif nxt == "-":
                raise ValueError("write a literal '-' first or last inside [...], not as '\\-'")
            else:
                out.append(_literal(nxt))
            i += 2
        else:
            out.append("%%" if char == "%" else ("%]" if char == "]" else char))
            i += 1
        first = False
    raise ValueError("unterminated [...]")  # re.compile catches this first


def translate(source: str) -> CoreRegex:
    """Check ``source`` as a Python regex and translate it; ValueError names what is unsupported."""
    try:
        re.compile(source)
    except re.error as exc:
        raise ValueError(f"invalid regex {source!r}: {exc}") from None
    except RecursionError:  # Python's parser recurses per group: never a traceback
        raise ValueError(f"groups nested too deeply in {source!r}") from None
    if any(char < " " or char == "\x7f" for char in source):
        raise _control(source)
    ignore_case = source.startswith("(?i)")
    body = source[4:] if ignore_case else source
    if body.startswith("^"):
        body = body[1:]
    if body.endswith("$") and not body.endswith("\\$"):
        body = body[:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            nxt = body[i + 1]
            if nxt in _CLASS_ESCAPES:
                out.append(f"[{_CLASS_ESCAPES[nxt]}]")
            elif nxt in _NEGATED:
                out.append(f"[^{_CLASS_ESCAPES[_NEGATED[nxt]]}]")
            elif nxt in _CONTROL_ESCAPES:
                raise _control(source)
            elif nxt.isalnum():
                raise ValueError(f"'\\{nxt}' is not supported by the rules core in {source!r}")
            else:
                out.append(_literal(nxt))
            i += 2
            continue
        if char == "[":
            text, i = _translate_class(body, i)
            out.append(text)
            continue
        if char == "(" and body.startswith("(?", i):
            if not body.startswith("(?:", i):
                raise ValueError(
                    f"'(?...)' groups other than '(?:' and a leading '(?i)' are not supported "
                    f"by the rules core in {source!r}"
                )
            out.append("(")
            i += 3
            continue
        if char == "{" and (repeat := _REPEAT.match(body, i)) and repeat.group(1, 2) != ("", None):
            out.append(_repeat(source, *repeat.groups()))
            i = repeat.end()
            if i < len(body) and body[i] in "?+":
                raise ValueError(f"lazy or possessive quantifiers are not supported in {source!r}")
            continue
        if char in "{}":  # not a repetition: a literal brace
            out.append(_literal(char))
            i += 1
            continue
        if char in "*+?" and i + 1 < len(body) and body[i + 1] in "?+":
            raise ValueError(f"lazy or possessive quantifiers are not supported in {source!r}")
        elif char in "^$":
            raise ValueError(
                f"'{char}' is only allowed at the very start or end of {source!r}: "
                "patterns always match the whole value"
            )
        out.append("%%" if char == "%" else char)
        i += 1
    return CoreRegex("".join(out), ignore_case)


def _repeat(source: str, low: str, comma: str | None, high: str | None) -> str:
    """A ``{m}``, ``{m,}``, ``{,n}`` or ``{m,n}`` in the core's spelling, where an upper
    bound of 0 means "no bound", so ``{0}`` cannot be said at all."""
    least = int(low or 0)
    most = None if comma and not high else int(high if comma else low)
    if max(least, most or 0) > MAX_REPEAT:
        raise ValueError(
            f"repetition counts above {MAX_REPEAT} are not supported by the rules core in "
            f"{source!r}; use '+' or '*' for long runs"
        )
    if most == 0:
        raise ValueError(
            f"repeating zero times cannot be said in the rules core: remove it from {source!r}"
        )
    if most is None:
        return f"{{{least},}}"
    return f"{{{least}}}" if least == most else f"{{{least},{most}}}"
