"""A scenario's world: the real engine over a fresh SQLite database, the records the
scenario sent, and what it looked at last.

Each scenario gets its own database, a copy of one migrated empty file (migrating takes far
longer than copying), and a :class:`PromiseService` over the catalog under test. Each record
step ingests its record at once; the engine decides in event time, so "a record arrives
late" is simply a record earlier than what the engine already judged.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from itertools import count
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from engine.alerting.status import Alert, AlertFilter, list_alerts
from engine.authoring.dates import format_day
from engine.outcomes import Outcome
from engine.service import PromiseService
from engine.storage.database import make_engine, migrate, session_factory
from rules.models import Catalog


def words(state: str) -> str:
    """``at_risk`` as a feature writes it: ``at risk``."""
    return state.replace("_", " ")


class Databases:
    """Fresh SQLite databases in one folder, each a copy of a migrated empty one."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.template = self.folder / "empty.db"
        engine = make_engine(f"sqlite:///{self.template}")
        migrate(engine)
        engine.dispose()
        self._numbers = count(1)

    @contextmanager
    def fresh(self) -> Iterator[sessionmaker[Session]]:
        path = self.folder / f"scenario-{next(self._numbers)}.db"
        shutil.copyfile(self.template, path)
        engine = make_engine(f"sqlite:///{path}")
        try:
            yield session_factory(engine)
        finally:
            engine.dispose()
            for leftover in self.folder.glob(f"{path.name}*"):
                leftover.unlink()

    @classmethod
    @contextmanager
    def temporary(cls) -> Iterator[Databases]:
        with tempfile.TemporaryDirectory(prefix="promise-test-") as folder:
            yield cls(Path(folder))


@dataclass
class Written:
    """A record as the scenario wrote it: what it may be called, and the moment it named."""

    id: str
    position: int
    occurred_at: datetime
    names: frozenset[str]

    @property
    def day(self) -> date:
        return self.occurred_at.date()


@dataclass
class World:
    """The scenario's view of the engine: the records it sent, whose case is whose, and the
    outcome the last ``the "..." promise is ...`` step looked at."""

    service: PromiseService
    written: dict[str, Written] = field(default_factory=dict)
    case_customers: dict[str, str] = field(default_factory=dict)
    judged_until: datetime | None = None
    """The latest moment the engine has judged: the latest record or clock step so far."""
    outcome: Outcome | None = None

    @property
    def catalog(self) -> Catalog:
        return self.service.catalog

    def advance(self, when: datetime) -> None:
        self.service.advance(when)
        self._judged(when)

    def _judged(self, when: datetime) -> None:
        if self.judged_until is None or when > self.judged_until:
            self.judged_until = when

    def customer_of(self, case: str) -> str:
        if case not in self.case_customers:
            raise ValueError(
                f'case "{case}" has no customer yet: start with a step that names both, '
                f'e.g. customer "C-1" emails contact-centre about case "{case}" on ...'
            )
        return self.case_customers[case]

    def send(self, when: datetime, names: set[str], *, late: bool = False, **fields: Any) -> str:
        """Ingest one record now; ``late`` insists that a later moment was already judged.
        Without an ``id`` the record is called ``r001``, ``r002``, ... in order."""
        if late and (self.judged_until is None or self.judged_until <= when):
            raise ValueError(
                f"this record is not late: nothing after {when.isoformat()} has been judged yet"
            )
        position = len(self.written) + 1
        record_id = str(fields.pop("id", None) or f"r{position:03d}")
        if record_id in self.written:
            raise ValueError(f"record id {record_id!r} is used twice in this scenario")
        if fields.get("case_id") and fields.get("customer_id"):
            self.case_customers.setdefault(fields["case_id"], fields["customer_id"])
        record = {"id": record_id, "occurred_at": when.isoformat(), **fields}
        [answer] = self.service.ingest([record])
        if answer.status != "accepted":
            problems = "; ".join(f"{p.field}: {p.reason}" for p in answer.problems)
            raise ValueError(f"the engine refused record {record}: {answer.status} {problems}")
        self.written[record_id] = Written(
            record_id, position, when, frozenset({*names, record_id, f"#{position}"})
        )
        self._judged(when)
        return record_id

    def promise(self, promise_id: str) -> str:
        """``promise_id`` when the catalog has it; else an error listing the known ones."""
        if promise_id not in self.catalog.promises:
            known = ", ".join(sorted(self.catalog.promises)) or "none"
            raise ValueError(f"the catalog has no promise {promise_id!r}; its promises: {known}")
        return promise_id

    def outcomes(self, promise: str, who: str | None = None) -> list[Outcome]:
        """The promise's outcomes (for a customer or scope), in order of opening."""
        self.promise(promise)
        return sorted(
            (
                o
                for o in self.service.outcomes()
                if o.promise == promise and who in (None, o.scope, o.customer_id)
            ),
            key=lambda o: (o.opened_at, o.key),
        )

    def alerts(self, **where: Any) -> list[Alert]:
        found, _ = list_alerts(self.service.sessions, AlertFilter(**where), None, 10_000)
        return found

    def name(self, record_id: str) -> str:
        """A record as a reader knows it: its id and the names its step gave it."""
        w = self.written.get(record_id)
        if w is None:
            return record_id
        called = sorted(w.names - {w.id, f"#{w.position}"})
        return (
            f"{w.id} ({' / '.join(called)} of {format_day(w.day)} {w.occurred_at:%H:%M})"
            if called
            else w.id
        )

    def describe(self, outcome: Outcome, zone: tzinfo | None = None) -> str:
        def at(moment: datetime | None) -> str:
            return "-" if moment is None else moment_text(moment, zone)

        return (
            f"{words(outcome.state)} for {outcome.scope} (opened {at(outcome.opened_at)}, "
            f"due {at(outcome.due_at)}, decided {at(outcome.decided_at)}, at risk from "
            f"{at(outcome.warn_at)}, evidence {', '.join(map(self.name, outcome.evidence))})"
        )

    def snapshot(self) -> str:
        """Everything the engine decided in this scenario, for a failing step's report."""
        lines = ["records sent:"]
        lines += [f"  {self.name(w.id)}" for w in self.written.values()] or ["  none"]
        lines.append("outcomes:")
        for outcome in sorted(self.service.outcomes(), key=lambda o: (o.promise, o.opened_at)):
            lines.append(f"  {outcome.promise}: {self.describe(outcome)}")
        if lines[-1] == "outcomes:":
            lines.append("  none")
        lines.append("alerts:")
        lines += [f"  {alert_text(a)}" for a in self.alerts()] or ["  none"]
        return "\n".join(lines)


def moment_text(moment: datetime, zone: tzinfo | None = None) -> str:
    """A moment as features write it: ``Mon 2024-03-04 15:00 UTC``."""
    local = moment.astimezone(zone) if zone is not None else moment
    name = str(zone) if zone is not None else (local.tzname() or "UTC")
    return f"{format_day(local.date())} {local:%H:%M} {name}"


def alert_text(alert: Alert) -> str:
    who = (alert.outcome or {}).get("scope") or alert.customer_id
    return f"{alert.kind} to {alert.team}: {alert.promise} is {words(alert.state)} for {who}"
