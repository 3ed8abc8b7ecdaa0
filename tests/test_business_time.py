"""Business-time arithmetic: known cases from business-time libraries, DST, and properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference
from rules.business_time import AlwaysOpen, BusinessCalendar, Calendar

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
US = timedelta(microseconds=1)
NINE_TO_FIVE = ((time(9), time(17)),)
WEEKDAYS = range(5)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def as_utc(moment: datetime) -> datetime:
    """Same-zone comparisons and subtraction use wall time in Python; compare instants."""
    return moment.astimezone(UTC)


def weekdays(*intervals: tuple[time, time]) -> dict[int, tuple[tuple[time, time], ...]]:
    return {day: intervals for day in WEEKDAYS}


NINE_TO_FIVE_UTC = BusinessCalendar("UTC", weekdays(*NINE_TO_FIVE))
UK_OFFICE = BusinessCalendar(
    "Europe/London", weekdays((time(9), time(17, 30))), country="GB", subdiv="ENG"
)


# -- cases from public business-time libraries' test suites ---------------------------------


def test_saturday_plus_two_hours_lands_monday_morning() -> None:
    assert NINE_TO_FIVE_UTC.add(utc(2016, 1, 23, 13, 14), timedelta(hours=2)) == utc(
        2016, 1, 25, 11
    )


def test_saturday_plus_twelve_hours_lands_tuesday_afternoon() -> None:
    assert NINE_TO_FIVE_UTC.add(utc(2016, 1, 23, 13, 14), timedelta(hours=12)) == utc(
        2016, 1, 26, 13
    )


def test_friday_opening_plus_full_day_lands_friday_closing_not_monday() -> None:
    assert NINE_TO_FIVE_UTC.add(utc(2016, 1, 22, 9), timedelta(hours=8)) == utc(2016, 1, 22, 17)


def test_wednesday_morning_plus_full_day_lands_same_time_thursday() -> None:
    assert NINE_TO_FIVE_UTC.add(utc(2010, 8, 4, 9, 35), timedelta(hours=8)) == utc(
        2010, 8, 5, 9, 35
    )


def test_friday_afternoon_plus_one_hour_lands_monday_morning() -> None:
    assert NINE_TO_FIVE_UTC.add(utc(2010, 4, 9, 16, 50), timedelta(hours=1)) == utc(
        2010, 4, 12, 9, 50
    )


def test_friday_afternoon_plus_one_hour_skips_closed_monday() -> None:
    calendar = BusinessCalendar(
        "UTC", weekdays(*NINE_TO_FIVE), closed=frozenset({date(2010, 7, 5)})
    )
    assert calendar.add(utc(2010, 7, 2, 16, 50), timedelta(hours=1)) == utc(2010, 7, 6, 9, 50)


def test_week_with_lunch_breaks_is_forty_business_hours() -> None:
    calendar = BusinessCalendar("UTC", weekdays((time(9), time(12)), (time(13), time(18))))
    assert calendar.between(utc(2016, 1, 18, 9), utc(2016, 1, 25, 9)) == timedelta(hours=40)


def test_add_zero_returns_start_even_when_closed() -> None:
    saturday = utc(2016, 1, 23, 13, 14)
    assert NINE_TO_FIVE_UTC.add(saturday, timedelta(0)) == saturday


# -- UK office with English bank holidays -----------------------------------------------------


def test_uk_email_before_easter_is_due_tuesday_after_easter_monday() -> None:
    # Thu 16:00-17:30 GMT gives 1.5h; Good Friday, the weekend and Easter Monday are closed;
    # the other 6.5h run from 09:00 on Tuesday, now BST (UTC+1): 15:30 local, 14:30 UTC.
    sent = datetime(2024, 3, 28, 16, tzinfo=LONDON)
    due = UK_OFFICE.add(sent, timedelta(hours=8))
    assert due == utc(2024, 4, 2, 14, 30)
    assert due.astimezone(LONDON) == datetime(2024, 4, 2, 15, 30, tzinfo=LONDON)
    assert due.tzinfo is UTC


def test_uk_bank_holidays_close_the_whole_day() -> None:
    good_friday = datetime(2024, 3, 29, 12, tzinfo=LONDON)
    assert not UK_OFFICE.is_open(good_friday)
    assert UK_OFFICE.is_open(datetime(2024, 3, 28, 12, tzinfo=LONDON))
    assert UK_OFFICE.between(
        datetime(2024, 3, 29, 0, tzinfo=LONDON), datetime(2024, 4, 2, 0, tzinfo=LONDON)
    ) == timedelta(0)


def test_uk_weekend_christmas_uses_observed_substitute_days() -> None:
    # Christmas 2021 fell on Saturday: the bank holidays were Mon 27 and Tue 28 December.
    assert UK_OFFICE.add(datetime(2021, 12, 24, 17, tzinfo=LONDON), timedelta(hours=1)) == datetime(
        2021, 12, 29, 9, 30, tzinfo=LONDON
    )


# -- business days: the close of business on the Nth business day after the start's date -----


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        (london(2024, 3, 4, 10), 1, london(2024, 3, 5, 17, 30)),  # Mon -> Tue
        (london(2024, 3, 4, 10), 2, london(2024, 3, 6, 17, 30)),  # Mon -> Wed
        (london(2024, 3, 4, 8), 1, london(2024, 3, 5, 17, 30)),  # before opening: same
        (london(2024, 3, 4, 20), 1, london(2024, 3, 5, 17, 30)),  # after closing: same
        (london(2024, 3, 1, 16), 1, london(2024, 3, 4, 17, 30)),  # Fri -> Mon
        (london(2024, 3, 2, 12), 1, london(2024, 3, 4, 17, 30)),  # Sat -> Mon
        (london(2024, 3, 1, 16), 5, london(2024, 3, 8, 17, 30)),  # Fri -> next Fri
        # Maundy Thursday: Good Friday, the weekend and Easter Monday are not business days.
        (london(2024, 3, 28, 16), 1, london(2024, 4, 2, 17, 30)),
    ],
)
def test_business_days_end_at_the_close_of_the_nth_business_day_after_the_start(
    start: datetime, days: int, due: datetime
) -> None:
    assert UK_OFFICE.add_business_days(start, days) == due
    assert UK_OFFICE.add_business_days(start, days).tzinfo is UTC


def test_business_days_count_from_the_calendars_local_date() -> None:
    office = BusinessCalendar("Europe/Berlin", weekdays(*NINE_TO_FIVE))
    # Monday 23:30 UTC is already Tuesday 00:30 in Berlin: Tuesday is the start's date.
    assert office.add_business_days(utc(2024, 3, 4, 23, 30), 1) == utc(2024, 3, 6, 16)


def test_close_of_business_is_the_end_of_the_days_last_open_time() -> None:
    lunch = BusinessCalendar("UTC", weekdays((time(9), time(12)), (time(13), time(18))))
    assert lunch.add_business_days(utc(2024, 3, 4, 10), 1) == utc(2024, 3, 5, 18)
    nights = BusinessCalendar("UTC", {0: ((time(22), time(0)),), 1: ((time(0), time(6)),)})
    sunday = utc(2024, 3, 3, 12)
    assert nights.add_business_days(sunday, 1) == utc(2024, 3, 5)  # Monday's 24:00
    assert nights.add_business_days(sunday, 2) == utc(2024, 3, 5, 6)  # Tuesday's 06:00


@pytest.mark.parametrize("days", [0, -1, True, 1.5])
def test_business_days_must_be_a_positive_int(days: object) -> None:
    with pytest.raises(ValueError, match="positive int"):
        UK_OFFICE.add_business_days(utc(2024, 3, 4), days)  # type: ignore[arg-type]


# -- DST ---------------------------------------------------------------------------------------


def test_london_friday_before_spring_change_lands_monday_in_bst() -> None:
    calendar = BusinessCalendar("Europe/London", weekdays(*NINE_TO_FIVE))
    friday = datetime(2024, 3, 29, 16, tzinfo=LONDON)  # GMT, UTC+0
    due = calendar.add(friday, timedelta(hours=3))
    assert due == datetime(2024, 4, 1, 11, tzinfo=LONDON)  # BST
    assert due == utc(2024, 4, 1, 10)
    assert calendar.between(friday, due) == timedelta(hours=3)


def test_new_york_friday_before_spring_change_lands_monday_in_edt() -> None:
    calendar = BusinessCalendar("America/New_York", weekdays(*NINE_TO_FIVE))
    friday = datetime(2024, 3, 8, 15, tzinfo=NEW_YORK)  # EST, UTC-5
    due = calendar.add(friday, timedelta(hours=4))
    assert due == datetime(2024, 3, 11, 11, tzinfo=NEW_YORK)  # EDT, UTC-4
    assert due == utc(2024, 3, 11, 15)


def test_new_york_friday_before_autumn_change_lands_monday_in_est() -> None:
    calendar = BusinessCalendar("America/New_York", weekdays(*NINE_TO_FIVE))
    due = calendar.add(datetime(2024, 11, 1, 16, tzinfo=NEW_YORK), timedelta(hours=2))
    assert due == utc(2024, 11, 4, 15)  # 10:00 EST


def test_office_day_on_a_dst_change_day_is_still_eight_hours() -> None:
    calendar = BusinessCalendar("Europe/London", {6: NINE_TO_FIVE})
    for sunday in (date(2024, 3, 31), date(2024, 10, 27)):
        start = datetime.combine(sunday, time(0), tzinfo=LONDON)
        assert calendar.between(start, start + timedelta(days=1)) == timedelta(hours=8)


def test_whole_day_counts_real_elapsed_time_on_dst_change_days() -> None:
    calendar = BusinessCalendar("Europe/London", {6: ((time(0), time(0)),)})
    spring = calendar.between(utc(2024, 3, 30), utc(2024, 4, 1))
    autumn = calendar.between(utc(2024, 10, 26), utc(2024, 10, 28))
    assert (spring, autumn) == (timedelta(hours=23), timedelta(hours=25))


def test_interval_inside_spring_gap_is_empty() -> None:
    # 01:00-02:00 does not exist in London on 2024-03-31; nothing is open that night.
    calendar = BusinessCalendar("Europe/London", {6: ((time(1, 15), time(1, 45)),)})
    assert calendar.between(utc(2024, 3, 30), utc(2024, 4, 1)) == timedelta(0)
    assert calendar.between(utc(2024, 3, 23), utc(2024, 3, 25)) == timedelta(minutes=30)


def test_interval_starting_in_spring_gap_opens_when_clocks_jump() -> None:
    calendar = BusinessCalendar("Europe/London", {6: ((time(1, 30), time(3)),)})
    assert calendar.between(utc(2024, 3, 30), utc(2024, 4, 1)) == timedelta(hours=1)
    assert calendar.add(utc(2024, 3, 30), timedelta(minutes=1)) == utc(2024, 3, 31, 1, 1)


# The wall clock decides (docs/semantics.md, "Business time"). In Europe/Berlin the clocks go
# forward at 01:00Z on 2024-03-31 (02:00 CET becomes 03:00 CEST: 02:00-03:00 never shows)
# and back at 01:00Z on 2024-10-27 (03:00 CEST becomes 02:00 CET: 02:00-03:00 shows twice,
# 00:00-01:00Z and 01:00-02:00Z).
BERLIN = ZoneInfo("Europe/Berlin")
SPRING_SAT, AUTUMN_SAT = utc(2024, 3, 30), utc(2024, 10, 26)


def sundays(*intervals: tuple[time, time]) -> BusinessCalendar:
    return BusinessCalendar("Europe/Berlin", {6: intervals})


def test_opening_inside_the_spring_gap_opens_when_the_clocks_jump() -> None:
    calendar = sundays((time(2, 30), time(6)))
    assert calendar.between(SPRING_SAT, SPRING_SAT + timedelta(days=2)) == timedelta(hours=3)
    assert not calendar.is_open(utc(2024, 3, 31, 0, 59))  # 01:59 CET
    assert calendar.is_open(utc(2024, 3, 31, 1))  # 03:00 CEST
    assert calendar.add(SPRING_SAT, timedelta(minutes=1)) == utc(2024, 3, 31, 1, 1)


def test_closing_inside_the_spring_gap_closes_when_the_clocks_jump() -> None:
    calendar = sundays((time(0), time(2, 30)))
    assert calendar.between(SPRING_SAT, SPRING_SAT + timedelta(days=2)) == timedelta(hours=2)
    assert calendar.is_open(utc(2024, 3, 31, 0, 59))
    assert not calendar.is_open(utc(2024, 3, 31, 1))
    assert calendar.add(SPRING_SAT, timedelta(hours=2)) == utc(2024, 3, 31, 1)
    assert calendar.add_business_days(SPRING_SAT, 1) == utc(2024, 3, 31, 1)


def test_hours_wholly_inside_the_spring_gap_are_closed_that_day() -> None:
    calendar = sundays((time(2, 15), time(2, 45)))
    assert calendar.between(SPRING_SAT, SPRING_SAT + timedelta(days=2)) == timedelta(0)
    # ... so that Sunday is not a business day: the next one is a week later.
    assert calendar.add_business_days(SPRING_SAT, 1) == datetime(2024, 4, 7, 2, 45, tzinfo=BERLIN)


def test_opening_inside_the_autumn_overlap_leaves_the_repeated_time_before_it_closed() -> None:
    # Issue #14's repro: hours 02:30-06:00 from 2024-10-27T00:00Z. Open 00:30-01:00Z (02:30-03:00
    # CEST) and 01:30-05:00Z (02:30-06:00 CET); the repeated 02:00-02:30 (01:00-01:30Z) is
    # closed, because the clock shows a time before opening.
    calendar = sundays((time(2, 30), time(6)))
    start = utc(2024, 10, 27)
    assert calendar.between(start, start + timedelta(days=1)) == timedelta(hours=4)
    assert not calendar.is_open(utc(2024, 10, 27, 1, 15))  # 02:15 CET
    assert calendar.is_open(utc(2024, 10, 27, 1, 30))  # 02:30 CET, shown for the second time
    assert calendar.add(start, timedelta(minutes=30)) == utc(2024, 10, 27, 1)
    assert calendar.add(start, timedelta(minutes=31)) == utc(2024, 10, 27, 1, 31)
    assert calendar.add(start, timedelta(hours=4)) == utc(2024, 10, 27, 5)  # 06:00 CET


def test_closing_inside_the_autumn_overlap_is_open_again_while_the_clock_repeats() -> None:
    calendar = sundays((time(0), time(2, 30)))
    start = utc(2024, 10, 26, 22)  # Sunday 00:00 CEST
    assert calendar.between(start, start + timedelta(days=1)) == timedelta(hours=3)
    assert not calendar.is_open(utc(2024, 10, 27, 0, 45))  # 02:45 CEST
    assert calendar.is_open(utc(2024, 10, 27, 1, 15))  # 02:15 CET
    assert calendar.add(start, timedelta(hours=2, minutes=30)) == utc(2024, 10, 27, 0, 30)
    assert calendar.add(start, timedelta(hours=2, minutes=31)) == utc(2024, 10, 27, 1, 1)
    # Sunday's close of business is the last time its clock leaves the hours: 02:30 CET.
    assert calendar.add_business_days(AUTUMN_SAT, 1) == utc(2024, 10, 27, 1, 30)


def test_hours_wholly_inside_the_autumn_overlap_are_open_each_time_the_clock_shows_them() -> None:
    calendar = sundays((time(2, 15), time(2, 45)))
    assert calendar.between(AUTUMN_SAT, AUTUMN_SAT + timedelta(days=2)) == timedelta(hours=1)
    assert calendar.add(AUTUMN_SAT, timedelta(minutes=31)) == utc(2024, 10, 27, 1, 16)


def test_a_calendar_open_round_the_clock_is_exactly_24x7_across_both_changes() -> None:
    calendar = BusinessCalendar("Europe/Berlin", {day: ((time(0), time(0)),) for day in range(7)})
    always = AlwaysOpen()
    for saturday in (SPRING_SAT, AUTUMN_SAT):
        for minutes in range(0, 48 * 60, 7):
            moment = saturday + timedelta(minutes=minutes)
            assert calendar.is_open(moment)
            assert calendar.add(saturday, timedelta(minutes=minutes)) == moment
            assert calendar.between(saturday, moment) == always.between(saturday, moment)


def test_midnight_dst_change_in_santiago_is_handled() -> None:
    # Chile springs forward at 24:00 Saturday, so Sunday 00:00 local does not exist.
    calendar = BusinessCalendar("America/Santiago", {6: ((time(0), time(2)),)})
    santiago = ZoneInfo("America/Santiago")
    sunday = datetime(2024, 9, 8, 12, tzinfo=santiago)
    assert calendar.between(sunday - timedelta(days=1), sunday) == timedelta(hours=1)


# -- end of day, ranges, validation ------------------------------------------------------------


def test_midnight_end_means_end_of_day_and_joins_next_day() -> None:
    calendar = BusinessCalendar("UTC", {0: ((time(22), time(0)),), 1: ((time(0), time(6)),)})
    assert calendar.between(utc(2024, 1, 1), utc(2024, 1, 3)) == timedelta(hours=8)
    assert calendar.is_open(utc(2024, 1, 2, 0))
    assert calendar.add(utc(2024, 1, 1, 23), timedelta(hours=2)) == utc(2024, 1, 2, 1)


def test_between_reversed_is_negative() -> None:
    a, b = utc(2016, 1, 18, 9), utc(2016, 1, 19, 12)
    assert NINE_TO_FIVE_UTC.between(a, b) == timedelta(hours=11)
    assert NINE_TO_FIVE_UTC.between(b, a) == -timedelta(hours=11)


def test_between_spans_many_years() -> None:
    calendar = BusinessCalendar("UTC", {day: ((time(0), time(0)),) for day in range(7)})
    start, end = utc(2001, 6, 1), utc(2021, 6, 1)
    assert calendar.between(start, end) == end - start


def test_is_open_is_start_inclusive_end_exclusive() -> None:
    assert NINE_TO_FIVE_UTC.is_open(utc(2016, 1, 22, 9))
    assert not NINE_TO_FIVE_UTC.is_open(utc(2016, 1, 22, 17))
    assert not NINE_TO_FIVE_UTC.is_open(utc(2016, 1, 23, 12))


def test_inputs_in_other_zones_are_read_as_instants_and_returned_in_utc() -> None:
    tokyo = datetime(2016, 1, 22, 18, tzinfo=ZoneInfo("Asia/Tokyo"))  # Fri 09:00 UTC
    result = NINE_TO_FIVE_UTC.add(tokyo, timedelta(hours=8))
    assert result == utc(2016, 1, 22, 17)
    assert result.tzinfo is UTC


@pytest.mark.parametrize("calendar", [NINE_TO_FIVE_UTC, AlwaysOpen()], ids=type)
def test_naive_datetime_is_rejected(calendar: Calendar) -> None:
    naive = datetime(2016, 1, 22, 9)
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.add(naive, timedelta(hours=1))
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.between(utc(2016, 1, 22, 9), naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.between(naive, utc(2016, 1, 22, 9))


def test_naive_datetime_is_rejected_by_is_open() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        NINE_TO_FIVE_UTC.is_open(datetime(2016, 1, 22, 9))


@pytest.mark.parametrize("calendar", [NINE_TO_FIVE_UTC, AlwaysOpen()], ids=type)
def test_negative_duration_is_rejected(calendar: Calendar) -> None:
    with pytest.raises(ValueError, match="negative"):
        calendar.add(utc(2016, 1, 22, 9), timedelta(hours=-1))


@pytest.mark.parametrize("hours", [{}, {0: ()}, {day: () for day in range(7)}])
def test_calendar_without_open_hours_is_rejected(hours: dict) -> None:
    with pytest.raises(ValueError, match="calendar has no open hours"):
        BusinessCalendar("UTC", hours)


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ({0: ((time(17), time(9)),)}, "must end after it starts"),
        ({0: ((time(9), time(9)),)}, "must end after it starts"),
        ({0: ((time(13), time(17)), (time(9), time(12)))}, "sorted and non-overlapping"),
        ({0: ((time(9), time(13)), (time(12), time(17)))}, "sorted and non-overlapping"),
        ({7: NINE_TO_FIVE}, "weekday"),
        ({0: ((time(9, tzinfo=UTC), time(17)),)}, "naive"),
    ],
)
def test_malformed_hours_are_rejected(hours: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BusinessCalendar("UTC", hours)


def test_unknown_timezone_and_country_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown timezone"):
        BusinessCalendar("Mars/Olympus_Mons", weekdays(*NINE_TO_FIVE))
    with pytest.raises(ValueError, match="no holidays"):
        BusinessCalendar("UTC", weekdays(*NINE_TO_FIVE), country="XX")


def test_hours_are_copied_so_later_caller_edits_do_not_leak_in() -> None:
    hours = weekdays(*NINE_TO_FIVE)
    calendar = BusinessCalendar("UTC", hours)
    hours[5] = NINE_TO_FIVE
    assert not calendar.is_open(utc(2016, 1, 23, 12))


def test_add_gives_up_after_ten_years_without_open_time() -> None:
    mondays = frozenset(date(2024, 1, 1) + timedelta(weeks=week) for week in range(52 * 15))
    calendar = BusinessCalendar("UTC", {0: NINE_TO_FIVE}, closed=mondays)
    with pytest.raises(ValueError, match="no open business time"):
        calendar.add(utc(2024, 1, 1), timedelta(hours=1))
    with pytest.raises(ValueError, match="no open business time"):
        calendar.add_business_days(utc(2024, 1, 1), 1)


def test_always_open_is_plain_arithmetic_on_instants() -> None:
    always = AlwaysOpen()
    # Across the London spring change: 24 elapsed hours, not 24 wall-clock hours.
    start = datetime(2024, 3, 30, 12, tzinfo=LONDON)
    assert always.add(start, timedelta(hours=24)) == datetime(2024, 3, 31, 13, tzinfo=LONDON)
    assert always.add(start, timedelta(hours=24)).tzinfo is UTC
    assert always.between(start, datetime(2024, 3, 31, 12, tzinfo=LONDON)) == timedelta(hours=23)
    assert always.between(utc(2024, 1, 2), utc(2024, 1, 1)) == -timedelta(days=1)
    assert isinstance(always, Calendar)
    assert isinstance(UK_OFFICE, Calendar)


# -- properties --------------------------------------------------------------------------------

CALENDARS = [
    UK_OFFICE,
    BusinessCalendar(
        "Europe/London",
        weekdays((time(9), time(12, 30)), (time(13, 30), time(17, 30))),
        country="GB",
        subdiv="ENG",
        closed=frozenset({date(2024, 12, 24), date(2025, 12, 24)}),
    ),
    BusinessCalendar(
        "America/New_York",
        {
            **weekdays((time(8), time(12)), (time(13), time(18))),
            5: ((time(10), time(14)),),
        },
        country="US",
        subdiv="NY",
    ),
    # Night hours that straddle the 01:00/02:00 DST changes and midnight.
    BusinessCalendar(
        "Europe/London",
        {
            0: ((time(0), time(1)),),
            5: ((time(23), time(0)),),
            6: ((time(0, 30), time(2, 30)), (time(23), time(0))),
        },
    ),
    BusinessCalendar("America/New_York", {6: ((time(1, 30), time(2, 30)),)}),
]
ZONES = [UTC, LONDON, NEW_YORK, ZoneInfo("Asia/Kolkata")]

calendars = st.sampled_from(CALENDARS)
instants = st.builds(
    lambda moment, zone: moment.astimezone(zone),
    st.datetimes(datetime(2015, 1, 1), datetime(2030, 12, 31), timezones=st.just(UTC)),
    st.sampled_from(ZONES),
)
durations = st.one_of(
    st.timedeltas(timedelta(0), timedelta(weeks=3)),
    st.integers(0, 200).map(lambda minutes: timedelta(minutes=15 * minutes)),
)
modest = settings(max_examples=200, deadline=None)


@modest
@given(calendars, instants, durations)
def test_between_undoes_add(
    calendar: BusinessCalendar, start: datetime, duration: timedelta
) -> None:
    assert calendar.between(start, calendar.add(start, duration)) == duration


@modest
@given(calendars, instants, durations)
def test_add_lands_where_business_time_just_elapsed(
    calendar: BusinessCalendar, start: datetime, duration: timedelta
) -> None:
    due = calendar.add(start, duration)
    assert due >= start
    if duration:
        # Open just before the result (it is inside an interval or at its end) ...
        assert calendar.is_open(due - US)
        assert calendar.between(due - US, due) == US
        # ... and it is the earliest such instant.
        assert calendar.between(start, due - US) == duration - US


@modest
@given(calendars, instants, instants, durations)
def test_add_is_monotonic_in_start(
    calendar: BusinessCalendar, a: datetime, b: datetime, duration: timedelta
) -> None:
    early, late = sorted((a, b), key=as_utc)
    assert calendar.add(early, duration) <= calendar.add(late, duration)


@modest
@given(calendars, instants, durations, durations)
def test_add_is_monotonic_in_duration(
    calendar: BusinessCalendar, start: datetime, d1: timedelta, d2: timedelta
) -> None:
    short, long = sorted((d1, d2))
    assert calendar.add(start, short) <= calendar.add(start, long)
    assert calendar.add(calendar.add(start, short), long - short) == calendar.add(start, long)


@modest
@given(calendars, instants, instants, instants)
def test_between_is_additive_in_any_order(
    calendar: BusinessCalendar, a: datetime, b: datetime, c: datetime
) -> None:
    assert calendar.between(a, b) + calendar.between(b, c) == calendar.between(a, c)
    assert calendar.between(b, a) == -calendar.between(a, b)


@modest
@given(calendars, instants, instants)
def test_between_never_exceeds_elapsed_time(
    calendar: BusinessCalendar, a: datetime, b: datetime
) -> None:
    early, late = sorted((a, b), key=as_utc)
    assert timedelta(0) <= calendar.between(early, late) <= as_utc(late) - as_utc(early)


@modest
@given(calendars, instants)
def test_is_open_agrees_with_between(calendar: BusinessCalendar, at: datetime) -> None:
    assert calendar.is_open(at) == (calendar.between(at, as_utc(at) + US) == US)


@modest
@given(instants, durations)
def test_always_open_round_trips(start: datetime, duration: timedelta) -> None:
    always = AlwaysOpen()
    assert always.between(start, always.add(start, duration)) == duration


# -- the same arithmetic as the reference evaluator's, written independently ------------------

# Zones whose clocks change: at 01:00Z (Europe), at local 02:00 (New York), at midnight
# (Santiago) and by half an hour (Lord Howe); and two that never change.
REFERENCE_ZONES = [
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "UTC",
]
HOLIDAYS = [None, ("DE", "BE"), ("GB", "ENG"), ("US", "NY"), ("CL", None), ("AU", "NSW")]


def _change_days(zone: str) -> list[datetime]:
    """UTC midnights of the 2023-2025 dates whose local day is not 24 hours long."""
    tz = ZoneInfo(zone)
    found = []
    for n in range(3 * 366):
        day = date(2023, 1, 1) + timedelta(days=n)
        start, end = (as_utc(datetime.combine(d, time(), tz)) for d in (day, day + timedelta(1)))
        if end - start != timedelta(days=1):
            found.append(datetime.combine(day, time(), UTC))
    return found


CHANGE_DAYS = {zone: _change_days(zone) for zone in REFERENCE_ZONES}


@st.composite
def opening_hours(draw: st.DrawFn) -> tuple[tuple[time, time], ...]:
    """0-3 intervals on a quarter-hour grid (lunch breaks, night hours, 24:00 ends)."""
    count = draw(st.integers(0, 3))
    quarters = sorted(draw(st.sets(st.integers(0, 96), min_size=2 * count, max_size=2 * count)))

    def clock(quarter: int) -> time:
        return time(0) if quarter == 96 else time(quarter // 4, 15 * (quarter % 4))

    return tuple((clock(a), clock(b)) for a, b in zip(quarters[::2], quarters[1::2], strict=True))


@st.composite
def reference_cases(draw: st.DrawFn) -> tuple[BusinessCalendar, datetime]:
    """A random calendar and an instant, often within a day or two of a clock change."""
    zone = draw(st.sampled_from(REFERENCE_ZONES))
    hours = {day: draw(opening_hours()) for day in range(7)}
    if not any(hours.values()):
        hours[0] = NINE_TO_FIVE
    country, subdiv = draw(st.sampled_from(HOLIDAYS)) or (None, None)
    closed = draw(st.frozensets(st.dates(date(2023, 1, 1), date(2025, 12, 31)), max_size=4))
    calendar = BusinessCalendar(zone, hours, country=country, subdiv=subdiv, closed=closed)
    near_change = st.builds(
        lambda day, offset: day + offset,
        st.sampled_from(CHANGE_DAYS[zone] or [utc(2024, 6, 1)]),
        st.timedeltas(-timedelta(days=1), timedelta(days=2)),
    )
    anytime = st.datetimes(datetime(2023, 1, 1), datetime(2025, 12, 1), timezones=st.just(UTC))
    return calendar, draw(st.one_of(near_change, anytime))


short_durations = st.one_of(
    st.timedeltas(timedelta(0), timedelta(days=8)),
    st.integers(0, 12 * 4).map(lambda quarters: timedelta(minutes=15 * quarters)),
)


@settings(max_examples=300, deadline=None)
@given(reference_cases(), short_durations, st.timedeltas(-timedelta(days=8), timedelta(days=8)))
def test_business_time_agrees_with_the_reference_evaluators(
    case: tuple[BusinessCalendar, datetime], duration: timedelta, span: timedelta
) -> None:
    calendar, start = case
    oracle = reference.OpeningHours(calendar)
    assert calendar.is_open(start) == oracle.is_open(start)
    assert calendar.add(start, duration) == oracle.add(start, duration)
    assert calendar.between(start, start + span) == oracle.between(start, start + span)


@settings(max_examples=200, deadline=None)
@given(reference_cases(), st.integers(1, 12))
def test_business_days_agree_with_the_reference_evaluators(
    case: tuple[BusinessCalendar, datetime], days: int
) -> None:
    calendar, start = case
    oracle = reference.OpeningHours(calendar)
    assert calendar.add_business_days(start, days) == oracle.close_of_business(start, days)
