"""Random catalogs over the whole promise language, and histories that hit and miss them.

The differential tests (tests/test_differential.py) run every generated (catalog, history)
through every path of the engine and compare each outcome with the reference evaluator.
A catalog is drawn as YAML documents, written to a directory and read by
``rules.loader.load_catalog``, so what is generated is exactly what ``promise check``
accepts. Records are drawn from small pools of values per field (so that conditions and
``same`` fields hit often), usually aimed at one role's match (so that roles fire), and
sometimes nudged off it again (so that they narrowly miss). Values of every JSON kind share
fields (``"1"`` and ``1``, objects where scalars are expected), as senders write them.
"""

from __future__ import annotations

import copy
import io
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import assume, event
from hypothesis import strategies as st
from ruamel.yaml import YAML

import reference
from rules.errors import DefinitionError
from rules.loader import load_catalog
from rules.models import Catalog, DeadlinePromise, LimitPromise, Match, NeverPromise

TEAM = "ops"

# --- values ----------------------------------------------------------------------------------

POOLS: dict[str, list[Any]] = {
    "type": ["message", "info_requested", "info_provided", "handoff"],
    "channel": ["email", "chat", "phone"],
    "direction": ["inbound", "outbound", "internal"],
    "customer_id": ["C1", "C2"],
    "case_id": ["K1", "K2", ""],
    "team": ["claims", "sales", ""],
    "agent": ["a1", "a2"],
    "attributes.item": ["iban", "address", "Iban", "1", 1],
    "attributes.n": [-1, 0, 1, 2, 2.5, "2", True],
    "attributes.ref": ["B1", "B2", 7],
    "attributes.meta.level": ["low", "high"],
}
"""Each field's values, in records and in conditions alike."""
REQUIRED = ("customer_id", "channel", "direction", "type")
"""Fields every record has (SPEC §2); the others may be missing."""
META = [{"level": "low"}, "low", ["low", "high"]]
"""``attributes.meta`` as an object, or a scalar or list where paths expect an object."""
SCOPES = ["customer_id", "case_id", "attributes.ref", "attributes.meta.level"]
SAME_FIELDS = [
    "customer_id",
    "type",
    "channel",
    "direction",
    "case_id",
    "team",
    "agent",
    "attributes.item",
    "attributes.meta",  # an object, text or a list: the same when equal as JSON
    "attributes.meta.level",
]
NUMBERS = [-1, 0, 1, 2, 2.5]
IDS = ["r01", "r02"]
"""Values for conditions on ``id`` (records get their own ids)."""
MATCH_FIELDS = [*POOLS, "id", "attributes.meta"]

# Instants near DST changes and public holidays, so that calendars meet both.
ANCHORS = [
    datetime(2024, 3, 8, tzinfo=UTC),  # US spring forward on the 10th
    datetime(2024, 3, 28, tzinfo=UTC),  # Easter (GB, DE, AU), EU spring forward 31st
    datetime(2024, 4, 5, tzinfo=UTC),  # Sydney falls back on the 7th
    datetime(2024, 10, 4, tzinfo=UTC),  # Sydney springs forward on the 6th
    datetime(2024, 10, 25, tzinfo=UTC),  # EU falls back on the 27th
    datetime(2024, 11, 1, tzinfo=UTC),  # US falls back on the 3rd
    datetime(2024, 12, 23, tzinfo=UTC),  # Christmas
]
SPAN = timedelta(days=6)
"""Records lie within this span after their anchor."""
QUARTERS = SPAN // timedelta(minutes=15)
ZONES = [
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
]
HOLIDAYS: list[dict[str, str] | None] = [
    None,
    {"country": "GB", "subdiv": "ENG"},
    {"country": "US"},
    {"country": "DE"},
    {"country": "AU", "subdiv": "NSW"},
]
OFFSETS = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]


def _values(field: str) -> list[Any]:
    if field == "id":
        return IDS
    if field == "attributes.meta":
        return ["low", "high"]
    return POOLS[field]


def _patterns(field: str) -> st.SearchStrategy[str]:
    """Regular expressions that ``rules.regex`` translates and the rules core compiles,
    built around the field's own values so that they hit as well as miss."""
    value = st.sampled_from([v for v in _values(field) if isinstance(v, str) and v])
    return st.one_of(
        value,
        value.map(lambda v: v[:2] + ".*"),
        value.map(lambda v: "(?i)" + v.upper()),
        value.map(lambda v: "^" + v + "$"),
        st.lists(value, min_size=2, max_size=3).map("|".join),
        st.sampled_from(
            [r"[a-h].*", r"\w+", r"\d+", r"[^e]+", r".{1,4}", r"(?:in|out)bound", r"i[bB]an?"]
        ),
    )


def _condition(field: str, *, inside_not: bool = False) -> st.SearchStrategy:
    """One condition on ``field`` in YAML form, of any form of the language, with values of
    any kind on any field (text against numbers, comparisons of text, patterns on numbers)."""
    pool = st.sampled_from(_values(field))
    exists = st.booleans().map(lambda b: {"exists": b})
    forms = [pool, exists, pool.map(lambda v: {"ne": v})]
    forms.append(st.lists(pool, min_size=1, max_size=3, unique=True))  # one-of, even of one
    operator = st.sampled_from(["gte", "gt", "lte", "lt"])
    forms.append(st.builds(lambda op, v: {op: v}, operator, st.sampled_from(NUMBERS)))
    if inside_not:  # `promise check` refuses `not` around `matches`
        return st.one_of(*forms)
    forms.append(_patterns(field).map(lambda p: {"matches": p}))
    forms.append(_condition(field, inside_not=True).map(lambda inner: {"not": inner}))
    return st.one_of(*forms)


@st.composite
def _match(draw: st.DrawFn) -> dict[str, Any]:
    """1 to 3 conditions; usually one on `type`, as in real promises."""
    fields = draw(st.lists(st.sampled_from(MATCH_FIELDS), max_size=2, unique=True))
    if draw(st.integers(0, 3)) or not fields:
        fields = ["type", *[f for f in fields if f != "type"]]
    return {field: draw(_condition(field)) for field in fields}


def _duration() -> st.SearchStrategy[str]:
    """From seconds to days, some in mixed units."""
    return st.sampled_from(["90s", "45m", "1h", "2h", "8h", "1h30m", "1d", "2d", "1d12h"])


def _business_days() -> st.SearchStrategy[str]:
    """``bd``, only for a deadline with a calendar: due within the histories' span or after."""
    return st.sampled_from(["1bd", "2bd", "3bd", "5bd"])


# --- calendars ---------------------------------------------------------------------------------


def _clock(quarter: int) -> str:
    return f"{quarter // 4:02d}:{15 * (quarter % 4):02d}"


@st.composite
def _hours(draw: st.DrawFn) -> str:
    """One or two intervals (a lunch break) in quarter hours; ``24:00`` ends a day."""
    bounds = sorted(draw(st.lists(st.integers(0, 96), min_size=2, max_size=4, unique=True)))
    pairs = zip(bounds[0::2], bounds[1::2], strict=False)
    return ", ".join(f"{_clock(a)}-{_clock(b)}" for a, b in pairs)


@st.composite
def _calendar(draw: st.DrawFn, anchor: datetime) -> dict[str, Any]:
    days = draw(
        st.sampled_from(
            [["mon-fri"], ["mon-fri", "sat"], ["mon,wed,fri", "sun"], ["mon-sun"], ["tue-sat"]]
        )
    )
    calendar: dict[str, Any] = {
        "timezone": draw(st.sampled_from(ZONES)),
        "hours": {spec: draw(_hours()) for spec in days},
    }
    holidays = draw(st.sampled_from(HOLIDAYS))
    if holidays:
        calendar["holidays"] = holidays
    closed = draw(st.lists(st.integers(0, SPAN.days), max_size=2, unique=True))
    if closed:
        calendar["closed"] = [(anchor + timedelta(days=d)).date().isoformat() for d in closed]
    return calendar


# --- promises ----------------------------------------------------------------------------------


@st.composite
def _promise(draw: st.DrawFn, pid: str, calendars: list[str]) -> dict[str, Any]:
    kind = draw(st.sampled_from(["deadline", "never", "limit"]))
    doc: dict[str, Any] = {
        "id": pid,
        "title": f"generated {kind} promise",
        "owner": TEAM,
        "kind": kind,
        "scope": draw(st.sampled_from(SCOPES)),
    }
    if kind == "deadline":
        doc["start"], doc["stop"] = draw(_match()), draw(_match())
        if draw(st.booleans()):
            doc["pause"], doc["resume"] = draw(_match()), draw(_match())
        if draw(st.booleans()):
            doc["cancel"] = draw(_match())
        calendar = draw(st.sampled_from([None, *calendars]))
        if calendar:
            doc["calendar"] = calendar
        doc["within"] = draw(_duration() | _business_days() if calendar else _duration())
        if draw(st.booleans()):
            doc["warn_at"] = draw(st.sampled_from([0.25, 0.5, 0.75, 1.0, 0.3333]))
    elif kind == "never":
        doc["first"] = draw(_match())
        doc["then"] = draw(_match())
        same = draw(st.lists(st.sampled_from(SAME_FIELDS), max_size=3, unique=True))
        if same:
            doc["same"] = same
        if draw(st.booleans()):
            doc["within"] = draw(_duration())
    else:
        doc["count"] = draw(_match())
        doc["max"] = draw(st.integers(0, 3))
        if draw(st.booleans()):
            doc["within"] = draw(_duration())
    return doc


_YAML = YAML(typ="safe", pure=True)
_YAML.default_flow_style = None


def to_yaml(doc: Any) -> str:
    out = io.StringIO()
    _YAML.dump(doc, out)
    return out.getvalue()


class Generated:
    """A catalog as written (``files``: name to document) and as loaded; ``anchor`` is
    where its histories begin."""

    def __init__(self, files: dict[str, Any], catalog: Catalog, anchor: datetime) -> None:
        self.files, self.catalog, self.anchor = files, catalog, anchor

    def __repr__(self) -> str:
        """The files as YAML: what hypothesis prints of a failing example."""
        return "\n".join(f"# {name}\n{to_yaml(doc)}" for name, doc in self.files.items())


_LOADED: dict[str, Catalog | DefinitionError] = {}


def _loaded(files: dict[str, Any]) -> Catalog | DefinitionError:
    """What ``promise check`` makes of these files: the catalog, or why it refuses them.
    Remembered: shrinking a failure draws the same catalogs again and again."""
    key = repr(files)
    if key not in _LOADED:
        if len(_LOADED) > 2_000:
            _LOADED.clear()
        with tempfile.TemporaryDirectory() as folder:
            for name, doc in files.items():
                (Path(folder) / name).write_text(to_yaml(doc), encoding="utf-8")
            try:
                _LOADED[key] = load_catalog(Path(folder))
            except DefinitionError as exc:
                _LOADED[key] = exc
    return _LOADED[key]


def load(files: dict[str, Any]) -> Catalog | None:
    """The catalog that ``promise check`` accepts from these files, or None."""
    catalog = _loaded(files)
    return catalog if isinstance(catalog, Catalog) else None


@st.composite
def catalogs(draw: st.DrawFn) -> Generated:
    """1 to 3 promises of any kinds, sharing up to two calendars."""
    anchor = draw(st.sampled_from(ANCHORS))
    calendars = {f"cal{n}": draw(_calendar(anchor)) for n in range(draw(st.integers(0, 2)))}
    files: dict[str, Any] = {"teams.yaml": {"teams": {TEAM: {"name": "Operations"}}}}
    if calendars:
        files["calendars.yaml"] = {"calendars": calendars}
    for n in range(draw(st.integers(1, 3))):
        files[f"p{n}.yaml"] = draw(_promise(f"p{n}", list(calendars)))
    catalog = _loaded(files)
    if isinstance(catalog, DefinitionError):
        event("catalog refused", catalog.problems[0].message)
    assume(isinstance(catalog, Catalog))
    assert isinstance(catalog, Catalog)
    return Generated(files, catalog, anchor)


# --- histories ---------------------------------------------------------------------------------


def _roles(catalog: Catalog) -> list[Match]:
    """Every match of every promise: what records are aimed at."""
    found: list[Match | None] = []
    for promise in catalog.promises.values():
        if isinstance(promise, DeadlinePromise):
            found += [promise.start, promise.stop, promise.pause, promise.resume, promise.cancel]
        elif isinstance(promise, NeverPromise):
            found += [promise.first, promise.then]
        else:
            assert isinstance(promise, LimitPromise)
            found.append(promise.count)
    return [m for m in found if m is not None]


def _put(record: dict[str, Any], field: str, value: Any) -> None:
    """Set ``field`` (a record field or ``attributes.<path>``); ABSENT removes it."""
    *parents, last = field.split(".")
    for part in parents:
        if not isinstance(record.get(part), dict):
            if value is reference.ABSENT:
                return
            record[part] = {}
        record = record[part]
    if value is reference.ABSENT:
        record.pop(last, None)
    else:
        record[last] = value


def _choices(field: str) -> list[Any]:
    values = META if field == "attributes.meta" else POOLS[field]
    return values + ([] if field in REQUIRED else [reference.ABSENT])


def _fits(field: str, condition: Any, value: Any) -> bool:
    record: dict[str, Any] = {}
    _put(record, field, value)
    return reference.match_holds(Match(((field, condition),)), record)


@st.composite
def _record(
    draw: st.DrawFn, roles: list[Match], like: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A record's fields (no id or time yet): random values, or those of ``like``, often
    aimed at one of ``roles``."""
    record: dict[str, Any] = copy.deepcopy(like) if like else {}
    if like is None:
        for field in POOLS:
            _put(record, field, draw(st.sampled_from(_choices(field))))
        if draw(st.integers(0, 9)) == 0:  # a scalar or a list where paths expect an object
            _put(record, "attributes.meta", draw(st.sampled_from(META)))
    aim = draw(st.sampled_from([None, *roles]))
    if aim is None:
        return record
    settable = [(f, c) for f, c in aim.conditions if f != "id"]
    for field, condition in settable:
        fits = [v for v in _choices(field) if _fits(field, condition, v)]
        if fits:
            _put(record, field, draw(st.sampled_from(fits)))
    if settable and draw(st.integers(0, 4)) == 0:  # a near miss: one aimed field redrawn
        field = draw(st.sampled_from([f for f, _ in settable]))
        _put(record, field, draw(st.sampled_from(_choices(field))))
    return record


@st.composite
def histories(draw: st.DrawFn, generated: Generated) -> list[dict[str, Any]]:
    """1 to 20 records after the catalog's anchor, within 2 hours (deadlines still open),
    a day or ``SPAN``, with ties in ``occurred_at`` and offsets other than UTC. Ids follow
    the order drawn, not time, so ties are broken both ways. A quarter of the records copy
    an earlier one's fields before aiming at a role, so that scopes and ``same`` fields
    repeat (a ``first`` then its ``then``: a never broken)."""
    reach = draw(st.sampled_from([8, 4 * 24, QUARTERS]))
    ties = draw(st.lists(st.integers(0, reach), min_size=1, max_size=4))
    at_least = draw(st.sampled_from([1, 4, 10]))  # long histories too, after a large catalog
    roles = _roles(generated.catalog)
    records: list[dict[str, Any]] = []
    for n in range(draw(st.integers(at_least, 20))):
        like = draw(st.sampled_from(records)) if records and draw(st.integers(0, 3)) == 0 else None
        record = draw(_record(roles, like))  # its id and time are replaced below
        quarter = draw(st.sampled_from(ties) | st.integers(0, reach))
        seconds = draw(st.sampled_from([0, 0, 0, 59]))
        at = generated.anchor + timedelta(minutes=15 * quarter, seconds=seconds)
        offset = draw(st.sampled_from(OFFSETS))
        records.append({**record, "id": f"r{n:02d}", "occurred_at": at.astimezone(offset)})
    return records


@st.composite
def next_records(
    draw: st.DrawFn, generated: Generated, records: list[dict[str, Any]]
) -> dict[str, Any]:
    """One more record, at the last one's time or a little later, for pre-flight: usually
    aimed at a role that breaks a promise when it comes (a never's ``then``, a limit's
    ``count``), often as a copy of an earlier record that it could repeat (same scope, same
    ``same`` fields)."""
    promises = generated.catalog.promises.values()
    pairs = [(p.first, p.then) for p in promises if isinstance(p, NeverPromise)]
    pairs += [(p.count, p.count) for p in promises if isinstance(p, LimitPromise)]
    last = max((r["occurred_at"] for r in records), default=generated.anchor)
    at = last + timedelta(minutes=15 * draw(st.sampled_from([0, 0, 1, 4, 96])))
    if pairs:
        earlier, role = draw(st.sampled_from(pairs))
        repeated = [r for r in records if reference.match_holds(earlier, r)]
        like = draw(st.sampled_from(repeated)) if repeated and draw(st.booleans()) else None
        record = draw(_record([role], like))
    else:
        record = draw(_record(_roles(generated.catalog)))
    return {**record, "id": "r90", "occurred_at": at}


def untils(records: list[dict[str, Any]]) -> st.SearchStrategy[datetime | None]:
    """No ``--until``, or one from 2 hours before the last record to 2 days after it."""
    if not records:
        return st.none()
    last = max(r["occurred_at"] for r in records)
    return st.none() | st.integers(-8, 4 * 48).map(lambda q: last + timedelta(minutes=15 * q))
