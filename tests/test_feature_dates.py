"""The dates of the feature files: ``<Weekday> YYYY-MM-DD HH:MM [zone]``, weekday checked."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from engine.authoring.dates import format_day, parse_day, parse_moment

LONDON = ZoneInfo("Europe/London")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Fri 2024-03-01 10:00", datetime(2024, 3, 1, 10, 0, tzinfo=UTC)),
        ("Fri 2024-03-01 10:00 UTC", datetime(2024, 3, 1, 10, 0, tzinfo=UTC)),
        ("Tue 2024-04-02 15:30 Europe/London", datetime(2024, 4, 2, 15, 30, tzinfo=LONDON)),
        ("Friday 2024-03-01 10:00", datetime(2024, 3, 1, 10, 0, tzinfo=UTC)),
        ("fri 2024-03-01 23:59", datetime(2024, 3, 1, 23, 59, tzinfo=UTC)),
        (
            "Mon 2024-04-01 09:00 +01:00",
            datetime(2024, 4, 1, 9, 0, tzinfo=timezone(timedelta(hours=1))),
        ),
        (
            "Mon 2024-04-01 09:00 -05:30",
            datetime(2024, 4, 1, 9, 0, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
        ),
    ],
)
def test_moments_parse_with_utc_as_the_default_zone(text: str, expected: datetime) -> None:
    parsed = parse_moment(text)
    assert parsed == expected
    assert parsed.tzinfo is not None


def test_a_london_moment_in_summer_time_is_an_hour_ahead_of_utc() -> None:
    assert parse_moment("Tue 2024-04-02 15:30 Europe/London") == datetime(
        2024, 4, 2, 14, 30, tzinfo=UTC
    )
    assert parse_moment("Fri 2024-03-01 16:00 Europe/London") == datetime(
        2024, 3, 1, 16, 0, tzinfo=UTC
    )


def test_a_weekday_that_is_not_the_dates_own_is_an_error_naming_the_real_one() -> None:
    with pytest.raises(ValueError, match=r"^Fri 2024-03-02 is a Saturday$"):
        parse_moment("Fri 2024-03-02 10:00")
    with pytest.raises(ValueError, match="Tue 2024-04-01 is a Monday"):
        parse_day("Tue 2024-04-01")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2024-03-01 10:00", "is not a moment"),
        ("Fri 2024-03-01", "is not a moment"),
        ("Fri 2024-03-01 10:00:00", "is not a moment"),
        ("Fri 2024-03-01T10:00", "is not a moment"),
        ("Fri 2024-02-30 10:00", "is not a date"),
        ("Fri 2024-03-01 24:00", "is not a time of day"),
        ("Fri 2024-03-01 10:60", "is not a time of day"),
        ("Fry 2024-03-01 10:00", "is not a weekday"),
        ("Fri 2024-03-01 10:00 Europe/Lundon", "unknown time zone"),
        ("Fri 2024-03-01 10:00 +25:00", "is not a UTC offset"),
        ("Fri 2024-03-01 10:00 BST", "unknown time zone"),
    ],
)
def test_anything_else_is_refused_with_the_text_and_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_moment(text)


def test_days_parse_and_format_back() -> None:
    assert parse_day("Fri 2024-03-29") == date(2024, 3, 29)
    assert format_day(date(2024, 4, 1)) == "Mon 2024-04-01"
    with pytest.raises(ValueError, match="is not a day"):
        parse_day("Fri 2024-03-29 10:00")
