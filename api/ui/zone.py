"""The time zone the dashboard shows times in: the viewer's choice, kept in a cookie, and by
default the zone of the catalog's first business calendar (the office's), else UTC.

Times are stored and compared as UTC instants; only their display, and the reading of a
period typed without an offset, depend on the zone.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from rules.models import Catalog

ZONE_COOKIE = "promise_zone"


@cache
def _known() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def is_zone(name: str) -> bool:
    """An IANA zone name this machine knows (checked before ``ZoneInfo`` opens any file)."""
    return name in _known()


def default_zone(catalog: Catalog) -> str:
    for calendar in catalog.calendars.values():
        zone = getattr(calendar, "timezone", None)
        if zone and is_zone(zone):
            return zone
    return "UTC"


def viewer_zone(catalog: Catalog, chosen: str | None) -> str:
    """The zone chosen in the cookie if it is one, else the default."""
    return chosen if chosen and is_zone(chosen) else default_zone(catalog)


def suggestions(catalog: Catalog, current: str) -> list[str]:
    """Zones offered by the picker: UTC, the calendars' and the current one (any IANA name
    may be typed)."""
    zones = {getattr(c, "timezone", None) for c in catalog.calendars.values()}
    return sorted({"UTC", current, *(z for z in zones if z and is_zone(z))})


def shown(moment: datetime | None, zone: str) -> str:
    """``2024-03-01 10:00 GMT``: the wall-clock time in ``zone`` and its abbreviation."""
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


def read_moment(text: str | None, name: str, zone: str) -> datetime | None:
    """A date or time from a form; without an offset it is a wall-clock time in ``zone``."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{name}' is not a date or time: {text!r}; try 2024-03-01") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(zone))
