"""Read a promises directory into a :class:`Catalog`, reporting every problem at once.

Layout: ``teams.yaml`` (owning teams and their alert routes), ``calendars.yaml`` (business
calendars, optional) and one ``*.yaml`` file per promise; a ``mapping.yaml`` (how an export's
rows become records, see :mod:`engine.ingest.mapping`) is not a promise. Sub-directories (templates,
example catalogs) are not part of the catalog.
"""

from __future__ import annotations

import dataclasses
import hashlib
import typing
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from rules.business_time import BusinessCalendar
from rules.calendars import build_calendar, zone_problem
from rules.compiler import MAX_TYPED_FIELDS
from rules.documents import (
    KIND_DOCS,
    ROUTE_DOCS,
    BurnRateDoc,
    CalendarDoc,
    CalendarsFileDoc,
    DeadlineDoc,
    LimitDoc,
    NeverDoc,
    PromiseDoc,
    SilenceDoc,
    TeamDoc,
    TeamsFileDoc,
    WebhookRouteDoc,
)
from rules.durations import (
    MAX_DURATION,
    BusinessDays,
    format_duration,
    parse_business_days,
    parse_duration,
)
from rules.errors import DefinitionError, Problem
from rules.matches import Report, did_you_mean, field_problem, parse_match
from rules.models import (
    DEFAULT_BURN_RATES,
    ROLES,
    BurnRate,
    Catalog,
    ChatRoute,
    DeadlinePromise,
    EmailRoute,
    LimitPromise,
    LogRoute,
    Match,
    NeverPromise,
    Promise,
    Route,
    Silence,
    Team,
    WebhookRoute,
)
from rules.version import version_of
from rules.yaml_source import Location, YamlDocument, read_yaml

M = typing.TypeVar("M", bound=BaseModel)

TEAMS_FILE = "teams.yaml"
CALENDARS_FILE = "calendars.yaml"
MAPPING_FILE = "mapping.yaml"  # how to import an export (engine/mapping.py), not a promise


@dataclass
class CheckResult:
    """What ``promise check`` reports: the catalog when it loaded, and every problem."""

    catalog: Catalog | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


def files_fingerprint(directory: Path) -> str:
    """Changes whenever a catalog file is added, removed or edited (cheap: stat only)."""
    entries = (
        sorted(
            (p.name, p.stat().st_size, p.stat().st_mtime_ns)
            for p in Path(directory).iterdir()
            if p.suffix in (".yaml", ".yml")
        )
        if Path(directory).is_dir()
        else []
    )
    return hashlib.sha256(repr(entries).encode()).hexdigest()


def load_catalog(directory: Path) -> Catalog:
    """The catalog in ``directory``; raises DefinitionError listing every error."""
    result = check_directory(directory)
    if result.catalog is None:
        raise DefinitionError(result.errors)
    return result.catalog


def problem_at(promise: Promise, location: Location, message: str) -> Problem:
    """A problem found after loading (by the rules core), at ``location`` in the promise's
    file, which is read again for the line (the first, if it has gone since)."""
    doc = read_yaml(Path(promise.source))
    if isinstance(doc, Problem):
        return Problem(Path(promise.source), 1, message)
    return doc.problem(location, message)


def check_directory(directory: Path) -> CheckResult:
    directory = Path(directory)
    if not directory.is_dir():
        return CheckResult(None, [Problem(directory, 0, "no such directory of promises")])
    loader = _Loader()
    teams = loader.teams(directory / TEAMS_FILE)
    calendars = loader.calendars(directory / CALENDARS_FILE)
    promises: dict[str, Promise] = {}
    first_seen: dict[str, tuple[Path, int]] = {}
    files = sorted(
        p
        for p in directory.iterdir()
        if p.suffix in (".yaml", ".yml")
        and p.name not in (TEAMS_FILE, CALENDARS_FILE, MAPPING_FILE)
    )
    for file in files:
        doc = loader.read(file)
        if doc is None:
            continue
        promise = loader.promise(doc, teams, calendars)
        if promise is None:
            continue
        if promise.id in first_seen:
            where, line = first_seen[promise.id]
            loader.report(
                doc, ("id",), f"duplicate promise id '{promise.id}': also defined at {where}:{line}"
            )
            continue
        first_seen[promise.id] = (file, doc.line(("id",)))
        promises[promise.id] = promise
    if files and not (directory / TEAMS_FILE).exists():
        loader.problems.append(
            Problem(
                directory / TEAMS_FILE,
                1,
                "missing: every promise's owner must be a team listed in teams.yaml",
            )
        )
    for doc, where, promise_id in loader.silenced_promises:
        if promise_id not in promises:
            loader.report(
                doc,
                where,
                f"unknown promise '{promise_id}'{did_you_mean(promise_id, list(promises))}",
            )
    problems = sorted(loader.problems)
    if any(p.severity == "error" for p in problems):
        return CheckResult(None, problems)
    catalog = Catalog(
        promises=dict(sorted(promises.items())),
        teams=teams or {},
        calendars=calendars or {},
    )
    return CheckResult(catalog, problems)


class _Loader:
    """Collects problems while building the pieces of a catalog."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        # Teams and calendars that exist but are invalid: already reported, so a promise
        # naming one is not also told that it is unknown.
        self.defined: set[str] = set()
        # Silences naming a promise, checked once every promise is known.
        self.silenced_promises: list[tuple[YamlDocument, Location, str]] = []

    def report(
        self,
        doc: YamlDocument,
        location: Location,
        message: str,
        *,
        at_key: bool = False,
        warning: bool = False,
    ) -> None:
        problem = doc.problem(location, message, at_key=at_key)
        if warning:
            problem = dataclasses.replace(problem, severity="warning")
        self.problems.append(problem)

    def read(self, file: Path) -> YamlDocument | None:
        doc = read_yaml(file)
        if isinstance(doc, Problem):
            self.problems.append(doc)
            return None
        if not isinstance(doc.data, dict):
            found = {None: "nothing (the file is empty)", list: "a list"}.get(
                None if doc.data is None else type(doc.data), f"the value {doc.data!r}"
            )
            top = "expected a mapping of keys to values at the top of the file"
            self.report(doc, (), f"{top}; found {found}")
            return None
        return doc

    def validate(
        self, doc: YamlDocument, model: type[M], data: Any, prefix: Location = ()
    ) -> M | None:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors():
                message, at_key, where = _explain(error, model, tuple(error["loc"]))
                self.report(doc, (*prefix, *where), message, at_key=at_key)
            return None

    # --- teams.yaml ---------------------------------------------------------------------------

    def teams(self, file: Path) -> dict[str, Team] | None:
        if not file.exists():
            return None
        doc = self.read(file)
        parsed = self.validate(doc, TeamsFileDoc, doc.data) if doc else None
        if doc is None or parsed is None:
            return None
        teams = {}
        for team_id, raw_team in parsed.teams.items():
            team = self.validate(doc, TeamDoc, raw_team, ("teams", team_id))
            self.defined.add(team_id)
            if team is None:
                continue
            routes = []
            for index, raw in enumerate(team.alerts):
                route = self.route(doc, raw, ("teams", team_id, "alerts", index))
                if route is not None:
                    routes.append(route)
            where = ("teams", team_id)
            digest = None
            if team.digest is not None:
                try:
                    digest = parse_duration(team.digest.every)
                except ValueError as exc:
                    self.report(doc, (*where, "digest", "every"), str(exc))
            silences = [
                silence
                for index, raw in enumerate(team.silences)
                if (silence := self.silence(doc, raw, team_id, (*where, "silences", index)))
            ]
            if team.timezone is not None and (unknown := zone_problem(team.timezone)):
                self.report(doc, (*where, "timezone"), unknown)
            teams[team_id] = Team(
                id=team_id,
                name=team.name,
                timezone=team.timezone,
                routes=tuple(routes),
                digest_every=digest,
                silences=tuple(silences),
                burn_rates=_rules_of(team.burn_rates),
            )
        return teams

    def silence(self, doc: YamlDocument, raw: Any, team: str, where: Location) -> Silence | None:
        parsed = self.validate(doc, SilenceDoc, raw, where)
        if parsed is None:
            return None
        moments = []
        for key, text in (("from", parsed.from_), ("until", parsed.until)):
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                moment = None
            if moment is None or moment.tzinfo is None:
                self.report(
                    doc,
                    (*where, key),
                    f"{key} must be an ISO 8601 time with a UTC offset, e.g. "
                    f"2024-03-01T09:00:00+00:00; got {text!r}",
                )
                return None
            moments.append(moment)
        if moments[1] <= moments[0]:
            self.report(doc, (*where, "until"), "until must be later than from")
            return None
        if parsed.promise is not None:
            self.silenced_promises.append((doc, (*where, "promise"), parsed.promise))
        return Silence(team, moments[0], moments[1], parsed.reason, parsed.by, parsed.promise)

    def route(self, doc: YamlDocument, raw: dict, where: Location) -> Route | None:
        kinds = [k for k in ROUTE_DOCS if k in raw]
        if len(kinds) != 1:
            found = (
                f"found {', '.join(kinds)}"
                if kinds
                else "found "
                + ", ".join(f"'{k}'{did_you_mean(str(k), list(ROUTE_DOCS))}" for k in raw)
            )
            self.report(
                doc,
                where,
                f"each alert route names exactly one of: {', '.join(ROUTE_DOCS)}; {found}",
            )
            return None
        parsed = self.validate(doc, ROUTE_DOCS[kinds[0]], raw, where)
        if parsed is None:
            return None
        alerts = parsed.alerts
        if isinstance(parsed, WebhookRouteDoc):
            secret = parsed.secret[2:-1] if parsed.secret else None
            return WebhookRoute(url=parsed.webhook, secret_env=secret, alerts=alerts)
        if kinds[0] == "email":
            return EmailRoute(address=raw["email"], alerts=alerts)
        if kinds[0] in ("slack", "teams"):
            return ChatRoute(platform=kinds[0], url_env=str(raw[kinds[0]])[2:-1], alerts=alerts)
        return LogRoute(alerts=alerts)

    # --- calendars.yaml -----------------------------------------------------------------------

    def calendars(self, file: Path) -> dict[str, BusinessCalendar] | None:
        if not file.exists():
            return None
        doc = self.read(file)
        parsed = self.validate(doc, CalendarsFileDoc, doc.data) if doc else None
        if doc is None or parsed is None:
            return None
        calendars = {}
        for name, raw_calendar in parsed.calendars.items():
            self.defined.add(name)
            cal_doc = self.validate(doc, CalendarDoc, raw_calendar, ("calendars", name))
            if cal_doc is None:
                continue
            calendar, errors = build_calendar(cal_doc)
            for location, message, at_key in errors:
                self.report(doc, ("calendars", name, *location), message, at_key=at_key)
            if calendar is not None:
                calendars[name] = calendar
        return calendars

    # --- one promise --------------------------------------------------------------------------

    def promise(
        self,
        doc: YamlDocument,
        teams: dict[str, Team] | None,
        calendars: dict[str, BusinessCalendar] | None,
    ) -> Promise | None:
        kind = doc.data.get("kind")
        if not isinstance(kind, str) or kind not in KIND_DOCS:  # a list is not hashable
            message = (
                f"unknown kind {kind!r}{did_you_mean(str(kind), list(KIND_DOCS))}; "
                if "kind" in doc.data
                else "missing required key 'kind'; "
            )
            self.report(doc, ("kind",), message + f"kinds: {', '.join(KIND_DOCS)}")
            return None
        before = len(self.problems)
        parsed = self.validate(doc, KIND_DOCS[kind], doc.data)
        if parsed is None:
            return None
        matches = {
            name: parse_match(raw, (name,), self._reporter(doc))
            for name in ROLES
            if (raw := getattr(parsed, name, None)) is not None
        }
        self._check_field(doc, ("scope",), parsed.scope)
        for index, name in enumerate(getattr(parsed, "same", [])):
            self._check_field(doc, ("same", index), name)
        self._check_attribute_paths(doc, parsed, matches)
        within = self._within(doc, parsed)
        if teams is not None and parsed.owner not in teams and parsed.owner not in self.defined:
            self.report(
                doc,
                ("owner",),
                f"unknown team '{parsed.owner}'"
                f"{did_you_mean(parsed.owner, list(teams))}; teams are listed in teams.yaml",
            )
        if isinstance(parsed, DeadlineDoc):
            self._check_deadline(doc, parsed, within, calendars)
        if doc.file.stem != parsed.id:
            self.report(
                doc,
                ("id",),
                f"file name should be {parsed.id}.yaml so the promise is easy to find",
                warning=True,
            )
        if any(p.severity == "error" for p in self.problems[before:]):
            return None
        calendar = (
            calendars.get(parsed.calendar)
            if isinstance(parsed, DeadlineDoc) and parsed.calendar and calendars
            else None
        )
        team = (teams or {}).get(parsed.owner)
        return _build(parsed, matches, within, str(doc.file), calendar, team)

    def _reporter(self, doc: YamlDocument) -> Report:
        def report(
            location: Location, message: str, *, at_key: bool = False, warning: bool = False
        ) -> None:
            self.report(doc, location, message, at_key=at_key, warning=warning)

        return report

    def _check_attribute_paths(
        self, doc: YamlDocument, parsed: PromiseDoc, matches: dict[str, Match | None]
    ) -> None:
        """Each attribute path a promise names adds fields to the rules core's facts."""
        named = {name for m in matches.values() if m for name, _ in m.conditions}
        named.update(n for n in getattr(parsed, "same", []) if isinstance(n, str))
        paths = [n for n in named if n.startswith("attributes.")]
        if len(paths) > MAX_TYPED_FIELDS:
            self.report(
                doc,
                ("kind",),
                f"this promise names {len(paths)} attribute paths in its matches and 'same'; "
                f"the rules core holds at most {MAX_TYPED_FIELDS} per promise",
            )

    def _check_field(self, doc: YamlDocument, location: Location, name: str) -> None:
        problem = field_problem(name)
        if problem:
            self.report(doc, location, problem)

    def _within(self, doc: YamlDocument, parsed: PromiseDoc) -> timedelta | BusinessDays | None:
        """The ``within`` value: business days only for a deadline with a calendar, and a
        warning where a plain ``d`` with a calendar is likely meant as business days."""
        text: str | None = getattr(parsed, "within", None)
        if text is None:
            return None
        calendar = parsed.calendar if isinstance(parsed, DeadlineDoc) else None
        try:
            days = parse_business_days(text)
            within = days if days is not None else parse_duration(text)
        except ValueError as exc:
            self.report(doc, ("within",), str(exc))
            return None
        if isinstance(within, BusinessDays):
            if calendar is not None:
                return within
            self.report(
                doc,
                ("within",),
                f"'{text}' counts business days, which need a business calendar: add "
                f"'calendar:' naming one from calendars.yaml, or write '{within.days}d' for "
                f"{within.days} x 24 hours around the clock"
                if isinstance(parsed, DeadlineDoc)
                else f"'{text}': business days are only for a deadline with a calendar; a "
                f"{parsed.kind} window is elapsed time, e.g. '{within.days}d'",
            )
            return None
        if calendar is not None and "d" in text:
            hours = int(within.total_seconds()) // 3_600
            minutes = format_duration(within - timedelta(hours=hours)).removeprefix("0s")
            days = within.days
            self.report(
                doc,
                ("within",),
                f"'{text}' with calendar '{calendar}' is {hours} hours of business time "
                f"(a 'd' is 24 hours of opening hours), not {days} business "
                f"day{'s' if days > 1 else ''}: write '{days}bd' for business "
                f"days, or '{hours}h{minutes}' for business hours",
                warning=True,
            )
        return within

    def _check_deadline(
        self,
        doc: YamlDocument,
        parsed: DeadlineDoc,
        within: timedelta | BusinessDays | None,
        calendars: dict[str, BusinessCalendar] | None,
    ) -> None:
        if (parsed.pause is None) != (parsed.resume is None):
            present, absent = ("pause", "resume") if parsed.resume is None else ("resume", "pause")
            self.report(
                doc,
                (present,),
                f"'{present}' needs a '{absent}' match: the clock must "
                "know when to stop and when to run again",
                at_key=True,
            )
        if (
            parsed.calendar is not None
            and parsed.calendar not in (calendars or {})
            and parsed.calendar not in self.defined
        ):
            known = list(calendars or {})
            self.report(
                doc,
                ("calendar",),
                f"unknown calendar '{parsed.calendar}'"
                f"{did_you_mean(parsed.calendar, known)}; calendars are listed in "
                "calendars.yaml" + (f" ({', '.join(known)})" if known else ""),
            )
        calendar = (calendars or {}).get(parsed.calendar or "")
        if calendar is not None and isinstance(within, timedelta):
            # Business time passes only while the calendar is open: the due time must still
            # come within 100 years (MAX_DURATION) of the start, holidays aside (business
            # days have their own, lower, bound: MAX_BUSINESS_DAYS).
            week = calendar.weekly_open
            hours = week / timedelta(hours=1) * (MAX_DURATION / timedelta(weeks=1))
            most = timedelta(hours=int(hours))
            if within > most:
                self.report(
                    doc,
                    ("within",),
                    f"{format_duration(within)} of business time on calendar "
                    f"'{parsed.calendar}' (open {format_duration(week)} a week) takes more than "
                    f"100 years to pass; the longest is {format_duration(most)}",
                )


def _rules_of(written: list[BurnRateDoc] | None) -> tuple[BurnRate, ...] | None:
    if written is None:
        return None
    return tuple(BurnRate(b.long, b.short, b.factor) for b in written)


def _burn_rates(parsed: PromiseDoc, team: Team | None) -> tuple[BurnRate, ...]:
    """As written (``[]``: none), else for a promise with an error budget its team's, else the
    defaults; a promise without one has none."""
    own = _rules_of(parsed.burn_rates)
    if own is not None:
        return own
    if parsed.objective is None or parsed.objective >= 1:
        return ()
    return DEFAULT_BURN_RATES if team is None or team.burn_rates is None else team.burn_rates


def _build(
    parsed: PromiseDoc,
    matches: dict,
    within: timedelta | BusinessDays | None,
    source: str,
    calendar: BusinessCalendar | None,
    team: Team | None,
) -> Promise:
    common = dict(
        id=parsed.id,
        title=parsed.title,
        owner=parsed.owner,
        scope=parsed.scope,
        description=parsed.description,
        objective=parsed.objective,
        burn_rates=_burn_rates(parsed, team),
        source=source,
    )
    promise: Promise
    if isinstance(parsed, DeadlineDoc):
        promise = DeadlinePromise(
            **common,
            version="",
            start=matches["start"],
            stop=matches["stop"],
            within=within,
            pause=matches.get("pause"),
            resume=matches.get("resume"),
            cancel=matches.get("cancel"),
            calendar=parsed.calendar,
            warn_at=parsed.warn_at,
        )
    elif isinstance(parsed, NeverDoc):
        promise = NeverPromise(
            **common,
            version="",
            first=matches["first"],
            then=matches["then"],
            same=tuple(parsed.same),
            within=within,
        )
    else:
        assert isinstance(parsed, LimitDoc)
        promise = LimitPromise(
            **common, version="", count=matches["count"], max=parsed.max, within=within
        )
    return dataclasses.replace(promise, version=version_of(promise, calendar))


def _explain(error: dict, model: type[BaseModel], loc: tuple) -> tuple[str, bool, tuple]:
    """Turn one pydantic error into (message, at_key, location) in an author's words."""
    kind = error["type"]
    name = ".".join(str(part) for part in loc)
    if kind == "extra_forbidden":
        allowed = _fields_at(model, loc[:-1])
        return (
            f"unknown key '{loc[-1]}'{did_you_mean(str(loc[-1]), allowed)}; "
            f"allowed here: {', '.join(allowed)}",
            True,
            loc,
        )
    if kind == "missing":
        return f"missing required key '{loc[-1]}'", True, loc[:-1]
    message = error["msg"].removeprefix("Value error, ")
    if kind == "value_error":
        return message, False, loc
    return f"'{name}': {message[0].lower()}{message[1:]}, got {error['input']!r}", False, loc


def _fields_at(model: Any, loc: tuple) -> list[str]:
    """The keys allowed at ``loc`` inside ``model``, for "did you mean" suggestions."""
    for part in loc:
        if isinstance(model, type) and issubclass(model, BaseModel):
            info = model.model_fields.get(str(part))
            model = info.annotation if info else None
        else:
            args = [a for a in typing.get_args(model) if a is not type(None)]
            model = args[-1] if args else None
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    args = [a for a in typing.get_args(model) if isinstance(a, type) and issubclass(a, BaseModel)]
    return list(args[0].model_fields) if args else []
