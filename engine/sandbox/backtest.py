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
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
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
    """A one-promise draft's outcomes over the stored history, and which differ from the
    stored outcomes of the promise with its id."""
    ((pid, promise),) = draft.promises.items()
    latest, current = _judge(draft, sessions)[pid]
    mine = sorted(latest.values(), key=lambda o: (o.opened_at, o.key))
    changed = [
        {"key": key, "scope": scope, "current": was, "draft": now}
        for key, scope, was, now in _differences(latest, current)
    ]
    return Backtest(
        promise=pid,
        version=promise.version,
        outcomes=[o.to_json() for o in mine],
        summary=dict(Counter(o.state for o in mine)),
        current_summary=dict(Counter(o.state for o in current.values())) if current else None,
        changed=changed,
    )


@dataclass
class Impact:
    """What putting a draft catalog in force would change for one promise, over outcomes
    opened in a period: its stored and its draft outcomes by state, and the keys of every
    opportunity whose state would change, by transition (``kept→broken``, ``new``, ``gone``)."""

    promise: str
    status: str  # "changed", "unchanged", "new promise" or "removed"
    current: dict[str, int]
    draft: dict[str, int]
    transitions: dict[str, list[str]]


def impact(
    draft: Catalog,
    sessions: sessionmaker[Session],
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Impact]:
    """Each promise of ``draft``, and each promise with stored outcomes that the draft no
    longer has, judged over the stored history as :func:`backtest` judges one; nothing is
    stored. Only outcomes opened in [``since``, ``until``) count."""

    def inside(outcomes: dict[str, Outcome]) -> dict[str, Outcome]:
        return {
            k: o
            for k, o in outcomes.items()
            if (since is None or o.opened_at >= since) and (until is None or o.opened_at < until)
        }

    with sessions() as session:
        stored = outcome_table.promise_ids(session)
    judged = _judge(draft, sessions)
    found = []
    for pid in sorted(set(draft.promises) | stored):
        latest, current = judged[pid] if pid in judged else ({}, _stored(sessions, pid))
        latest, current = inside(latest), inside(current)
        transitions: dict[str, list[str]] = {}
        for key, _, was, now in _differences(latest, current):
            name = "new" if was is None else "gone" if now is None else f"{was}→{now}"
            transitions.setdefault(name, []).append(key)
        found.append(
            Impact(
                promise=pid,
                status=_status(pid in draft.promises, pid in stored, bool(transitions)),
                current=dict(Counter(o.state for o in current.values())),
                draft=dict(Counter(o.state for o in latest.values())),
                transitions=transitions,
            )
        )
    return found


def _status(drafted: bool, stored: bool, changes: bool) -> str:
    if not drafted:
        return "removed"
    if not stored:
        return "new promise"
    return "changed" if changes else "unchanged"


def _judge(
    draft: Catalog, sessions: sessionmaker[Session]
) -> dict[str, tuple[dict[str, Outcome], dict[str, Outcome]]]:
    """For each promise of ``draft``: its outcomes over every stored record, and the stored
    outcomes of the promise with its id, by key. Every record goes through in one stream for
    all of them, except in sealed scopes: those are judged one by one, as the worker judges
    them (:func:`engine.evaluation.history.judge`)."""
    streamed: dict[str, dict[str, Outcome]] = {pid: {} for pid in draft.promises}
    evaluator = Evaluator(draft, lambda o: streamed[o.promise].__setitem__(o.key, o))
    judged = {}
    with sessions() as session:
        for record in record_table.all_records(session):
            evaluator.add(record)
        clock = state_table.get_clock(session)
        if clock:
            evaluator.advance(from_micros(clock))
        every_sealed = history.sealed_scopes(session)
        for pid, promise in draft.promises.items():
            rows = outcome_table.outcomes_of(session, pid)
            sealed = {pair for pair in every_sealed if pair[0] == pid}
            latest = history.outside(streamed[pid], pid, sealed)
            for _, scope in sorted(sealed):
                stored = {k: r for k, r in rows.items() if r.scope == scope}
                records = record_table.scope_records(session, promise.scope, scope)
                latest |= history.judge(evaluator, promise, scope, records, stored, evaluator.clock)
            judged[pid] = (latest, {k: outcome_table.row_to_outcome(r) for k, r in rows.items()})
    return judged


def _stored(sessions: sessionmaker[Session], pid: str) -> dict[str, Outcome]:
    with sessions() as session:
        rows = outcome_table.outcomes_of(session, pid)
        return {k: outcome_table.row_to_outcome(r) for k, r in rows.items()}


def _differences(
    latest: dict[str, Outcome], current: dict[str, Outcome]
) -> Iterator[tuple[str, str, str | None, str | None]]:
    """(key, scope, stored state, draft state) of each opportunity whose state differs
    (None: it is not an opportunity on that side)."""
    for key in sorted(set(latest) | set(current)):
        was = current[key].state if key in current else None
        now = latest[key].state if key in latest else None
        if was != now:
            yield key, (latest.get(key) or current[key]).scope, was, now
