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
* The wall clock decides (docs/semantics.md, "Business time"): an instant is open when the
  local clock at that instant shows a time inside the opening hours of the date it shows.
  So a wall time that does not exist (spring-forward gap) is never open: hours that begin
  inside the gap open when the clocks jump. A wall time that occurs twice (fall-back) is
  open, or closed, both times: hours of 02:30-06:00 on the night clocks go back from 03:00
  to 02:00 are closed during the repeated 02:00-02:30 and open during the repeated
  02:30-03:00, and a calendar open 00:00-24:00 every day is exactly 24x7 (23h or 25h on
  change days).  Open intervals are built per stretch of constant UTC offset, where wall
  time is instant plus offset, so they never invert or overlap.
* Holidays (``holidays`` package) and ``closed`` dates close the whole local day.
* ``between(a, b)`` with ``b < a`` returns ``-between(b, a)``, so
  ``between(a, b) + between(b, c) == between(a, c)`` holds for any order.
* Arithmetic is done on integer microseconds since the Unix epoch, so round trips such as
  ``between(t, add(t, d)) == d`` are exact.  Open intervals are built one local year at a
  time, with running totals, so ``add`` and ``between`` are two bisections per year touched.
* ``add_business_days`` serves ``within: 5bd``: the close of business on the 5th business
  day after the start's local date, a business day being a date with open time.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping
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
# UTC offsets are probed this often (µs) to find their changes; no zone changes twice within it.
_PROBE = 6 * 3_600_000_000
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
    days: list[int]  # ordinals of the local dates with open time (business days), sorted
    closes: list[int]  # close of business of days[i]: the end of its last open time

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
    _week: tuple[tuple[tuple[int, int], ...], ...] = field(init=False, repr=False)  # µs of day
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
        micros = sum(hi - lo for day in self._week for lo, hi in day)  # _week is µs of day
        return timedelta(microseconds=micros)

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
        years = self._years_from(us, start)
        data = next(years)
        elapsed = data.position(us)
        while elapsed + remaining > data.total:
            remaining -= data.total - elapsed
            data, elapsed = next(years), 0
        return _from_us(data.instant(elapsed + remaining))

    def add_business_days(self, start: datetime, days: int) -> datetime:
        """Close of business on the ``days``-th business day after ``start``'s local date.

        The start's own date never counts, whatever the hour: "by close of business on the
        third business day following the day it was received".
        """
        _require_aware(start, "start")
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise ValueError(f"days must be a positive int, got {days!r}")
        years = self._years_from(_to_us(start), start)
        after = start.astimezone(self._zone).date().toordinal()
        while True:
            data = next(years)
            i = bisect_right(data.days, after)
            if len(data.days) - i >= days:
                return _from_us(data.closes[i + days - 1])
            days -= len(data.days) - i
            after = max(after, data.days[-1]) if data.days else after

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

    def _years_from(self, us: int, start: datetime) -> Iterator[_Year]:
        """The local year holding instant ``us``, then each following one; a calendar that
        stays shut for more than ``_MAX_EMPTY_YEARS`` years in a row is an error, not a hang."""
        year, empty = self._year_of(us), 0
        while True:
            data = self._year(year)
            yield data
            empty = empty + 1 if data.total == 0 else 0
            if empty > _MAX_EMPTY_YEARS:
                raise ValueError(
                    f"no open business time in {_MAX_EMPTY_YEARS} years after {start.isoformat()}"
                )
            year += 1

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
        closes: dict[int, int] = {}  # date ordinal -> end of its last open time so far
        first, last = self._year_start(year), self._year_start(year + 1)
        for lo, hi, offset in _offset_stretches(self._zone, first, last):
            # Within a stretch the wall clock shows instant + offset: a date's hours are
            # the instants [midnight + open - offset, midnight + close - offset).
            day = _from_us(lo + offset).date()
            while (midnight := _to_us(datetime.combine(day, _MIDNIGHT, UTC))) < hi + offset:
                intervals = () if self._is_closed(day) else self._week[day.weekday()]
                for open_at, close_at in intervals:
                    a = max(lo, midnight + open_at - offset)
                    b = min(hi, midnight + close_at - offset)
                    if a >= b:
                        continue
                    if ends and ends[-1] == a:
                        ends[-1] = b
                    else:
                        starts.append(a)
                        ends.append(b)
                    closes[day.toordinal()] = b
                day += _DAY
        done: list[int] = []
        total = 0
        for lo, hi in zip(starts, ends, strict=True):
            total += hi - lo
            done.append(total)
        days = sorted(closes)
        return _Year(starts, ends, done, total, days, [closes[d] for d in days])


def _normalise_hours(
    hours: Mapping[int, tuple[tuple[time, time], ...]],
) -> tuple[
    Mapping[int, tuple[tuple[time, time], ...]],
    tuple[tuple[tuple[int, int], ...], ...],
]:
    """Validate ``hours`` once and freeze it, so later edits by the caller cannot leak in."""
    frozen: dict[int, tuple[tuple[time, time], ...]] = {}
    week: list[tuple[tuple[int, int], ...]] = [()] * 7
    for weekday, intervals in hours.items():
        if not isinstance(weekday, int) or isinstance(weekday, bool) or not 0 <= weekday <= 6:
            raise ValueError(f"weekday must be an int 0 (Mon) .. 6 (Sun), got {weekday!r}")
        day_intervals: list[tuple[time, time]] = []
        offsets: list[tuple[int, int]] = []
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
            offsets.append((lo // _US, hi // _US))
        frozen[weekday] = tuple(day_intervals)
        week[weekday] = tuple(offsets)
    return MappingProxyType(frozen), tuple(week)


def _time_offset(value: time) -> timedelta:
    return timedelta(
        hours=value.hour, minutes=value.minute, seconds=value.second, microseconds=value.microsecond
    )


def _offset_us(zone: ZoneInfo, us: int) -> int:
    return _from_us(us).astimezone(zone).utcoffset() // _US


def _offset_change(zone: ZoneInfo, a: int, b: int) -> int:
    """The first instant in ``(a, b]`` whose UTC offset differs from ``a``'s (``b``'s does)."""
    offset = _offset_us(zone, a)
    while b - a > 1:
        mid = (a + b) // 2
        if _offset_us(zone, mid) == offset:
            a = mid
        else:
            b = mid
    return b


def _offset_stretches(zone: ZoneInfo, first: int, last: int) -> Iterator[tuple[int, int, int]]:
    """``[lo, hi)`` pieces of ``[first, last)`` over which ``zone``'s UTC offset is constant,
    with that offset (µs). zoneinfo does not expose its transitions: they are found by
    probing every ``_PROBE`` and bisecting to the microsecond."""
    lo, offset = first, _offset_us(zone, first)
    probe = first
    while probe < last:
        step = min(probe + _PROBE, last)
        if _offset_us(zone, step) == offset:
            probe = step
            continue
        b = _offset_change(zone, probe, step)
        yield lo, b, offset
        lo, offset, probe = b, _offset_us(zone, b), b
    if lo < last:
        yield lo, last, offset


def _wall_to_us(wall: datetime, zone: ZoneInfo) -> int:
    """Instant for a naive local wall time (where a local year begins).

    Ambiguous times take their first occurrence; nonexistent ones take the instant the clocks
    jumped, found by bisection because zoneinfo does not expose its transitions.
    """
    first = wall.replace(tzinfo=zone)
    us = _to_us(first)
    if _from_us(us).astimezone(zone).replace(tzinfo=None) == wall:
        return us
    other = _to_us(wall.replace(tzinfo=zone, fold=1))
    return _offset_change(zone, min(us, other), max(us, other))
