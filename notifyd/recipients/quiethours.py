"""A user's quiet hours: a daily local-time window (``"22:00-07:00"``) in an IANA time zone.

A window may cross midnight; equal ends mean no window. Times are read on the user's wall
clock, so the window follows daylight saving time. Pure: the caller passes ``now``.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

_WINDOW = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])\s*-\s*([01][0-9]|2[0-3]):([0-5][0-9])$")
_DAY = 86400


class BadQuietHours(ValueError):
    """A quiet-hours window or time zone that cannot be used."""


def parse_window(text: str) -> tuple[int, int] | None:
    """``(start, end)`` in seconds after local midnight, or None for a window with equal ends."""
    found = _WINDOW.match(text.strip()) if isinstance(text, str) else None
    if found is None:
        raise BadQuietHours(f"quiet_hours {text!r} is not a window like \"22:00-07:00\" (HH:MM-HH:MM, 24-hour)")
    hours_start, minutes_start, hours_end, minutes_end = map(int, found.groups())
    start, end = hours_start * 3600 + minutes_start * 60, hours_end * 3600 + minutes_end * 60
    return None if start == end else (start, end)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; raises ``BadQuietHours`` naming it."""
    if not isinstance(name, str) or not name:  # before the cache: a list or mapping from YAML is unhashable
        raise BadQuietHours(f"timezone {name!r} is not an IANA time zone name")
    return _zone(name)


@cache
def _zone(name: str) -> ZoneInfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # here: ~1 MiB a channel process needs only with quiet hours

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadQuietHours(f"timezone {name!r} is not an IANA time zone name (like \"Europe/Berlin\")") from None


def quiet_until(window: str, timezone: str, now: float) -> float | None:
    """The epoch second ``window`` ends when ``now`` is inside it in ``timezone``, else None.

    Raises ``BadQuietHours`` for a window or zone that cannot be used.
    """
    bounds, tz = parse_window(window), zone(timezone)
    if bounds is None:
        return None
    local = datetime.fromtimestamp(now, tz)
    if not _inside(bounds, local):
        return None
    start, end = bounds
    end_day = local.date() + timedelta(days=1) if end < start <= _clock(local) else local.date()
    return _set_back_out(bounds, tz, now, _first_instant_at(end_day, end, tz, after=now))


def _clock(local: datetime) -> float:
    return local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6


def _inside(bounds: tuple[int, int], local: datetime) -> bool:
    start, end = bounds
    clock = _clock(local)
    return start <= clock < end if start < end else clock >= start or clock < end


def _set_back_out(bounds: tuple[int, int], tz: ZoneInfo, now: float, end: float) -> float:
    """``end``, or earlier the instant the clocks go back if that takes the wall clock out of the window.

    Quiet 01:30-02:30 in New York on the night 02:00 becomes 01:00 again: held from 01:30 to
    02:00 (the clock then reads 01:00), then again from the second 01:30 to 02:30.
    """
    if datetime.fromtimestamp(now, tz).utcoffset() == datetime.fromtimestamp(end, tz).utcoffset():
        return end
    change = _transition(now, end, tz)
    return end if _inside(bounds, datetime.fromtimestamp(change, tz)) else min(change, end)


def _first_instant_at(day: date, seconds: int, tz: ZoneInfo, *, after: float) -> float:
    """The first instant after ``after`` when the wall clock in ``tz`` reads ``seconds`` on ``day``.

    A wall time skipped by a DST change gives the change itself (the first instant past the
    gap); one that happens twice gives its first occurrence still ahead.
    """
    wall = datetime.combine(day, time(seconds // 3600, seconds % 3600 // 60), tzinfo=tz)
    first, second = wall.replace(fold=0).timestamp(), wall.replace(fold=1).timestamp()
    if first > second:  # in a gap: fold=0 reads it with the offset before the change
        return _transition(second, first, tz)
    return first if first > after else second


def _transition(before: float, after: float, tz: ZoneInfo) -> float:
    """The instant within ``(before, after]`` at which ``tz``'s UTC offset changes (to the second)."""
    low, high = int(before), int(after) + 1
    offset_after = datetime.fromtimestamp(high, tz).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz).utcoffset() == offset_after:
            high = middle
        else:
            low = middle
    return float(high)


def quiet_hours_problem(window: object, timezone: object) -> str | None:
    """Why a user's ``quiet_hours``/``timezone`` fields cannot be used, or None when they can.

    Either may be absent; quiet hours without a time zone have no meaning.
    """
    try:
        if timezone is not None:
            zone(timezone)  # type: ignore[arg-type]
        if window is not None:
            parse_window(window)  # type: ignore[arg-type]
    except BadQuietHours as exc:
        return str(exc)
    if window is not None and timezone is None:
        return "quiet_hours needs a timezone (an IANA name like \"Europe/Berlin\")"
    return None
