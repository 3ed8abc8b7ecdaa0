"""Replacing identifiers wherever they appear: exact values, outcome keys, free text."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import String, cast, or_, select
from sqlalchemy.orm import Session

from engine.privacy.pseudonyms import EXPIRED
from engine.storage.bulk import chunked


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def mentioning(session: Session, model: Any, columns: list[Any], needles: list[str]) -> list[Any]:
    """Rows of ``model`` whose text or JSON ``columns`` contain any of ``needles`` (a
    superset: callers rewrite exact tokens only)."""
    found: dict[int, Any] = {}
    for chunk in chunked(needles, 20):
        terms = []
        for column in columns:
            is_json = column.type.__class__.__name__ == "JSON"
            target = cast(column, String) if is_json else column
            for needle in chunk:
                text = json.dumps(needle)[1:-1] if is_json else needle
                terms.append(target.like(_like(text), escape="\\"))
        found.update((row.id, row) for row in session.scalars(select(model).where(or_(*terms))))
    return [found[i] for i in sorted(found)]


# --- rewriting identifiers --------------------------------------------------------------------


class Rewriter:
    """Replaces identifiers: exactly in values (JSON, keys ``<scope>#<n>``, ``expired:<id>``),
    as whole tokens in free text (reasons, notes)."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping
        alternatives = "|".join(re.escape(k) for k in sorted(mapping, key=len, reverse=True))
        self.pattern = (
            re.compile(rf"(?<![\w\-.@])({alternatives})(?![\w\-.@])") if mapping else None
        )

    def value(self, text: str | None) -> str | None:
        if text is None:
            return None
        if text in self.mapping:
            return self.mapping[text]
        if text.startswith(EXPIRED) and text[len(EXPIRED) :] in self.mapping:
            return EXPIRED + self.mapping[text[len(EXPIRED) :]]
        return text

    def key(self, key: str | None) -> str | None:
        if key is None or key in self.mapping:
            return self.value(key)
        scope, hash_, number = key.rpartition("#")
        if hash_ and scope in self.mapping:
            return f"{self.mapping[scope]}#{number}"
        return key

    def text(self, text: str | None) -> str | None:
        if text is None or self.pattern is None:
            return text
        return self.pattern.sub(lambda m: self.mapping[m.group(1)], text)

    def json(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.value(value)
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if isinstance(value, dict):
            return {k: self.json(v) for k, v in value.items()}
        return value


def set_if_changed(row: Any, name: str, value: Any) -> bool:
    if getattr(row, name) == value:
        return False
    setattr(row, name, value)
    return True
