"""A promise's version: a short, stable hash of its normalised definition.

Normalised means parsed: ``within: 1d`` and ``within: 24h``, or the same keys in another
order, give the same version. Every part of a definition counts (a ``matches`` pattern as
its author wrote it included): a version identifies exactly the definition that decided an
outcome. Only what is derived from another part or says where the definition lives is left
out: fields declared ``compare=False`` (the file, the translated pattern) and the version
itself. The calendar a deadline uses is part of its meaning, so its definition is hashed
in too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from datetime import date, time, timedelta
from typing import Any


def canonical(value: Any) -> Any:
    """A JSON-able form that is equal exactly when the definitions mean the same."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {"@": type(value).__name__}
        for f in dataclasses.fields(value):
            if f.compare and f.init and f.name != "version":
                out[f.name] = canonical(getattr(value, f.name))
        return out
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, frozenset | set):
        return sorted(canonical(v) for v in value)
    if isinstance(value, tuple | list):
        return [canonical(v) for v in value]
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, date | time):
        return value.isoformat()
    return value


def version_of(*parts: Any) -> str:
    text = json.dumps([canonical(p) for p in parts], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]
