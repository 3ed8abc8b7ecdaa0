"""Business-time arithmetic for promises such as "answered within 8 business hours".

Two operations are needed: add a business duration to an instant (when is a promise due?)
and measure the business time between two instants (how long did it actually take?).
``AlwaysOpen`` is the 24x7 calendar used when a promise names no calendar.

Design notes for ``BusinessCalendar``:

* Opening hours are local wall-clock times in ``timezone``.  An interval end of
  ``time(0, 0)`` means 24:00, the midnight that ends the day, because no interval can
  legitimately end at the start of its own day.  Shifts that cross midnight are written as
  two intervals (``22:00-00:00`` on one day, ``00:00-06:00`` on the next); touching
  intervals are merged.
* Wall times are turned into instants per local date, so DST is honoured: 09:00-17:00 is
  8 hours on a change day too.  A wall time that does not exist (spring-forward gap)
  resolves to the instant the clocks jump; a wall time that occurs twice (fall-back)
  resolves to its first occurrence (``fold=0``, the stdlib default).  Both rules keep the
  wall-to-instant mapping non-decreasing, so intervals never invert or overlap: an interval
  lying wholly inside a gap is empty, and one spanning a fall-back hour counts the real
  elapsed time (e.g. 00:00-24:00 is 23h or 25h on change days).
* Holidays (``holidays`` package) and ``closed`` dates close the whole local day.
* ``between(a, b)`` with ``b < a`` returns ``-between(b, a)``, so
  ``between(a, b) + between(b, c) == between(a, c)`` holds for any order.
* Arithmetic is done on integer microseconds since the Unix epoch, so round trips such as
  ``between(t, add(t, d)) == d`` are exact.  Open intervals are built one local year at a
  time, with running totals, so ``add`` and ``between`` are two bisections per year touched.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

__all__ = ["AlwaysOpen", "BusinessCalendar", "Calendar"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_DAY = timedelta(days=1)
_MIDNIGHT = time(0, 0)
_US_PER_YEAR = 31_556_952_000_000  # mean Gregorian year
# add() gives up after this many consecutive local years without a single open instant.
_MAX_EMPTY_YEARS = 10


@runtime_checkable
class Calendar(Protocol):
    """What promise checks need from a calendar; results are aware UTC datetimes."""

    def add(self, start: datetime, duration: timedelta) -> datetime: ...

    def between(self, start: datetime, end: datetime) -> timedelta: ...


def _require_aware(value: datetime, name: str) -> None:
    # Naive datetimes are ambiguous about which instant they mean; refuse rather than guess.
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value!r}")


def _require_duration(duration: timedelta) -> None:
    if not isinstance(duration, timedelta):
        raise TypeError(f"duration must be a timedelta, got {type(duration).__name__}")
    if duration < timedelta(0):
        raise ValueError(f"duration must not be negative, got {duration!r}")


def _to_us(value: datetime) -> int:
    # Subtracting from a UTC epoch compares real instants, unlike same-tzinfo arithmetic,
    # which Python does in wall time.
    return (value - _EPOCH) // _US


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True)
class AlwaysOpen:
    """The 24x7 calendar: business time is elapsed time."""

    def add(self, start: datetime, duration: timedelta) -> datetime:
        _require_aware(start, "start")
        _require_duration(duration)
        # Convert first: aware + timedelta in a DST zone would add wall-clock time.
        return start.astimezone(UTC) + duration

    def between(self, start: datetime, end: datetime) -> timedelta:
        _require_aware(start, "start")
        _require_aware(end, "end")
        return end.astimezone(UTC) - start.astimezone(UTC)

    def is_open(self, at: datetime) -> bool:
        _require_aware(at, "at")
        return True


@dataclass(frozen=True, slots=True)
class _Year:
    """Open intervals of one local year as UTC microseconds, with running business totals."""

    starts: list[int]
    ends: list[int]
    done: list[int]  # business time elapsed in this year at ends[i]
    total: int

    def position(self, us: int) -> int:
        """Business time elapsed in this year up to instant ``us``."""
        i = bisect_right(self.starts, us) - 1
        if i < 0:
            return 0
        return self.done[i] - max(self.ends[i] - us, 0)

    def instant(self, target: int) -> int:
        """Earliest instant at which ``target`` (0 < target <= total) has elapsed."""
        i = bisect_left(self.done, target)
        return self.ends[i] - (self.done[i] - target)


@dataclass(frozen=True, eq=False)
class BusinessCalendar:
    """Opening hours in a time zone, minus public holidays and explicitly closed dates.

    ``hours`` maps weekday (0=Mon..6=Sun) to sorted, non-overlapping ``(start, end)`` wall
    times; missing days are closed and an end of ``time(0, 0)`` means 24:00.  Equality is
    identity so instances can key caches cheaply.
    """

    timezone: str
    hours: Mapping[int, tuple[tuple[time, time], ...]]
    country: str | None = None
    subdiv: str | None = None
    closed: frozenset[date] = frozenset()
    _zone: ZoneInfo = field(init=False, repr=False)
    _week: tuple[tuple[tuple[timedelta, timedelta], ...], ...] = field(init=False, repr=False)
    _holidays: holidays.HolidayBase | None = field(init=False, repr=False)
    _years: dict[int, _Year] = field(init=False, repr=False, default_factory=dict)
    _year_starts: dict[int, int] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise ValueError(f"unknown timezone {self.timezone!r}") from exc
        hours, week = _normalise_hours(self.hours)
        if not any(week):
            raise ValueError("calendar has no open hours")
        if self.subdiv is not None and self.country is None:
            raise ValueError("subdiv given without country")
        hols = None
        if self.country is not None:
            try:
                hols = holidays.country_holidays(self.country, subdiv=self.subdiv)
            except NotImplementedError as exc:
                raise ValueError(
                    f"no holidays for country={self.country!r} subdiv={self.subdiv!r}"
                ) from exc
        set_ = object.__setattr__
        set_(self, "hours", hours)
        set_(self, "closed", frozenset(self.closed))
        set_(self, "_zone", zone)
        set_(self, "_week", week)
        set_(self, "_holidays", hols)

    @property
    def weekly_open(self) -> timedelta:
        """Open time in a week as the hours are written (DST changes and closed days aside)."""
        return sum((hi - lo for day in self._week for lo, hi in day), timedelta(0))

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """Earliest instant by which ``duration`` of business time has elapsed since ``start``.

        Earliest means a deadline falls at closing time rather than the next opening.
        """
        _require_aware(start, "start")
        _require_duration(duration)
        us = _to_us(start)
        remaining = duration // _US
        if remaining == 0:
            return start.astimezone(UTC)
        year = self._year_of(us)
        data = self._year(year)
        elapsed = data.position(us)
        empty_years = 0
        while elapsed + remaining > data.total:
            remaining -= data.total - elapsed
            empty_years = empty_years + 1 if data.total == 0 else 0
            if empty_years > _MAX_EMPTY_YEARS:
                raise ValueError(
                    f"no open business time in {_MAX_EMPTY_YEARS} years after {start.isoformat()}"
                )
            year += 1
            data = self._year(year)
            elapsed = 0
        return _from_us(data.instant(elapsed + remaining))

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Business time in ``[start, end)``; negative when ``end`` precedes ``start``."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        a, b = _to_us(start), _to_us(end)
        sign = 1
        if b < a:
            a, b, sign = b, a, -1
        year_a, year_b = self._year_of(a), self._year_of(b)
        if year_a == year_b:
            data = self._year(year_a)
            total = data.position(b) - data.position(a)
        else:
            total = self._year(year_a).total - self._year(year_a).position(a)
            total += sum(self._year(y).total for y in range(year_a + 1, year_b))
            total += self._year(year_b).position(b)
        return timedelta(microseconds=sign * total)

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` lies inside an open interval (start inclusive, end exclusive)."""
        _require_aware(at, "at")
        us = _to_us(at)
        data = self._year(self._year_of(us))
        i = bisect_right(data.starts, us) - 1
        return i >= 0 and us < data.ends[i]

    # -- internals -------------------------------------------------------------------------

    def _is_closed(self, day: date) -> bool:
        return day in self.closed or (self._holidays is not None and day in self._holidays)

    def _year_start(self, year: int) -> int:
        """Instant at which local ``year`` begins (its Jan 1 00:00, resolved as documented)."""
        cached = self._year_starts.get(year)
        if cached is None:
            cached = _wall_to_us(datetime(year, 1, 1), self._zone)
            self._year_starts[year] = cached
        return cached

    def _year_of(self, us: int) -> int:
        """Local year whose intervals could contain ``us``, by instant rather than wall time."""
        year = 1970 + us // _US_PER_YEAR  # close enough; the loops make it exact
        while us < self._year_start(year):
            year -= 1
        while us >= self._year_start(year + 1):
            year += 1
        return year

    def _year(self, year: int) -> _Year:
        data = self._years.get(year)
        if data is None:
            data = self._build_year(year)
            self._years[year] = data
        return data

    def _build_year(self, year: int) -> _Year:
        if not 1 <= year <= 9998:
            raise ValueError(f"year {year} is outside the supported range")
        starts: list[int] = []
        ends: list[int] = []
        day = date(year, 1, 1)
        while day.year == year:
            intervals = self._week[day.weekday()]
            if intervals and not self._is_closed(day):
                midnight = datetime.combine(day, _MIDNIGHT)
                for open_at, close_at in intervals:
                    lo = _wall_to_us(midnight + open_at, self._zone)
                    hi = _wall_to_us(midnight + close_at, self._zone)
                    if lo >= hi:  # wholly inside a DST gap
                        continue
                    if ends and ends[-1] >= lo:
                        ends[-1] = hi
                    else:
                        starts.append(lo)
                        ends.append(hi)
            day += _DAY
        done: list[int] = []
        total = 0
        for lo, hi in zip(starts, ends, strict=True):
            total += hi - lo
            done.append(total)
        return _Year(starts, ends, done, total)


def _normalise_hours(
    hours: Mapping[int, tuple[tuple[time, time], ...]],
) -> tuple[
    Mapping[int, tuple[tuple[time, time], ...]],
    tuple[tuple[tuple[timedelta, timedelta], ...], ...],
]:
    """Validate ``hours`` once and freeze it, so later edits by the caller cannot leak in."""
    frozen: dict[int, tuple[tuple[time, time], ...]] = {}
    week: list[tuple[tuple[timedelta, timedelta], ...]] = [()] * 7
    for weekday, intervals in hours.items():
        if not isinstance(weekday, int) or isinstance(weekday, bool) or not 0 <= weekday <= 6:
            raise ValueError(f"weekday must be an int 0 (Mon) .. 6 (Sun), got {weekday!r}")
        day_intervals: list[tuple[time, time]] = []
        offsets: list[tuple[timedelta, timedelta]] = []
        previous_end = timedelta(0)
        for interval in intervals:
            open_at, close_at = interval
            for value in (open_at, close_at):
                if not isinstance(value, time) or value.tzinfo is not None:
                    raise ValueError(f"opening hours must be naive datetime.time, got {value!r}")
            lo = _time_offset(open_at)
            hi = _DAY if close_at == _MIDNIGHT else _time_offset(close_at)
            if lo >= hi:
                raise ValueError(
                    f"weekday {weekday}: interval {open_at}-{close_at} must end after it starts"
                    " (use time(0, 0) as the end for 24:00)"
                )
            if lo < previous_end:
                raise ValueError(f"weekday {weekday}: intervals must be sorted and non-overlapping")
            previous_end = hi
            day_intervals.append((open_at, close_at))
            offsets.append((lo, hi))
        frozen[weekday] = tuple(day_intervals)
        week[weekday] = tuple(offsets)
    return MappingProxyType(frozen), tuple(week)


def _time_offset(value: time) -> timedelta:
    return timedelta(
        hours=value.hour, minutes=value.minute, seconds=value.second, microseconds=value.microsecond
    )


def _wall_to_us(wall: datetime, zone: ZoneInfo) -> int:
    """Instant for a naive local wall time; non-decreasing in ``wall`` across DST changes.

    Ambiguous times take their first occurrence; nonexistent ones take the instant the clocks
    jumped, found by bisection because zoneinfo does not expose its transitions.
    """
    first = wall.replace(tzinfo=zone)
    us = _to_us(first)
    if _from_us(us).astimezone(zone).replace(tzinfo=None) == wall:
        return us
    other = _to_us(wall.replace(tzinfo=zone, fold=1))
    lo, hi = min(us, other), max(us, other)
    before = _from_us(lo).astimezone(zone).utcoffset()
    while hi - lo > 1:  # invariant: offset(lo) == before != offset(hi)
        mid = (lo + hi) // 2
        if _from_us(mid).astimezone(zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return hi
