"""Backtest a draft promise over the stored history: its outcomes, and how they differ from
the version in force. Nothing is stored.

The draft is validated exactly as ``promise check`` would, the rules core compiling it
included (in a scratch copy of the catalog with the running teams and calendars), so
problems come back as ``draft.yaml:LINE: ...``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from engine.clock import from_micros
from engine.evaluation import history
from engine.evaluation.core_check import check_catalog
from engine.evaluation.evaluator import Evaluator
from engine.outcomes import Outcome
from engine.storage import outcome_table, record_table, state_table
from rules.errors import DefinitionError, Problem
from rules.loader import CALENDARS_FILE, TEAMS_FILE
from rules.models import Catalog

DRAFT = "draft.yaml"


@dataclass
class Backtest:
    promise: str
    version: str
    outcomes: list[dict[str, Any]]
    summary: dict[str, int]
    current_summary: dict[str, int] | None
    changed: list[dict[str, Any]] = field(default_factory=list)


def load_draft(catalog_dir: Path, text: str) -> Catalog:
    """A one-promise catalog from ``text``; DefinitionError names lines in ``draft.yaml``."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for name in (TEAMS_FILE, CALENDARS_FILE):
            if (catalog_dir / name).exists():
                shutil.copy(catalog_dir / name, folder / name)
        (folder / DRAFT).write_text(text, encoding="utf-8")
        result = check_catalog(folder)  # in the rules core too: the draft must run there
        errors = [Problem(Path(p.file.name), p.line, p.message) for p in result.errors]
        if result.catalog is None or errors:
            raise DefinitionError(errors)
        return result.catalog


def backtest(draft: Catalog, sessions: sessionmaker[Session]) -> Backtest:
    """Every stored record in one stream, except in sealed scopes: those are judged one by
    one, as the worker judges them (:func:`engine.evaluation.history.judge`)."""
    ((pid, promise),) = draft.promises.items()
    streamed: dict[str, Outcome] = {}
    evaluator = Evaluator(draft, lambda o: streamed.__setitem__(o.key, o))
    with sessions() as session:
        for record in record_table.all_records(session):
            evaluator.add(record)
        clock = state_table.get_clock(session)
        if clock:
            evaluator.advance(from_micros(clock))
        rows = outcome_table.outcomes_of(session, pid)
        sealed = {pair for pair in history.sealed_scopes(session) if pair[0] == pid}
        latest = history.outside(streamed, pid, sealed)
        for _, scope in sorted(sealed):
            stored = {k: r for k, r in rows.items() if r.scope == scope}
            records = record_table.scope_records(session, promise.scope, scope)
            latest |= history.judge(evaluator, promise, scope, records, stored, evaluator.clock)
    current = {k: outcome_table.row_to_outcome(r) for k, r in rows.items()}
    mine = sorted(latest.values(), key=lambda o: (o.opened_at, o.key))
    changed = [
        {
            "key": key,
            "scope": (latest.get(key) or current[key]).scope,
            "current": current[key].state if key in current else None,
            "draft": latest[key].state if key in latest else None,
        }
        for key in sorted(set(latest) | set(current))
        if (latest[key].state if key in latest else None)
        != (current[key].state if key in current else None)
    ]
    return Backtest(
        promise=pid,
        version=promise.version,
        outcomes=[o.to_json() for o in mine],
        summary=dict(Counter(o.state for o in mine)),
        current_summary=dict(Counter(o.state for o in current.values())) if current else None,
        changed=changed,
    )
