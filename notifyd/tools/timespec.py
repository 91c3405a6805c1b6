"""Points in time given on the command line: ISO-8601, an age such as ``30m``, or ahead: ``+10m``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from notifyd.records.schedule import BadMoment, parse_moment

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_AHEAD = re.compile(r"^\s*(?:\+\s*|in\s+)(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_EPOCH = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class BadTime(ValueError):
    """A time that is neither ISO-8601 nor an age like ``1h``."""


def parse_time(text: str, *, now: datetime) -> datetime:
    """An aware UTC datetime: ``2026-11-24T10:00Z`` as given, ``90m`` as ``now`` minus 90 minutes.

    A time without a zone is taken as UTC: operators read UTC from DLQ headers.
    """
    age = _AGE.match(text)
    if age:
        try:
            return now - timedelta(seconds=float(age.group(1)) * _UNIT_SECONDS[age.group(2)])
        except OverflowError:
            raise BadTime(f"{text!r} reaches back before the year 1") from None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadTime(f"{text!r} is not an ISO-8601 time or an age like 30m, 1h, 2d") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise BadTime(f"{text!r} is outside the years 1 to 9999 in UTC") from None


def parse_iso(text: str) -> datetime | None:
    """An ISO-8601 header value as an aware datetime, or None if it is not one."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def from_millis(millis: int) -> datetime:
    """A Kafka timestamp (milliseconds since the epoch) as an aware UTC datetime."""
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def parse_ahead(text: str, *, now: float) -> float:
    """Epoch seconds of ``+10m`` or ``in 2h`` (from ``now``), RFC 3339 with an offset, or epoch seconds.

    A time without an offset is refused: when to send is never guessed from the host's zone.
    """
    ahead = _AHEAD.match(text)
    try:
        if ahead:
            return parse_moment(now + float(ahead.group(1)) * _UNIT_SECONDS[ahead.group(2).lower()])
        return parse_moment(float(text) if _EPOCH.match(text) else text.strip())
    except BadMoment as exc:
        raise BadTime(f"{exc}; give RFC 3339 with an offset (2026-12-04T09:00:00Z), epoch seconds, "
                      "or +10m / in 2h (s, m, h, d, w)") from None


def rfc3339(epoch: float) -> str:
    """``epoch`` as RFC 3339 in UTC (``2026-12-04T09:00:00Z``), with milliseconds only when it has them."""
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    precision = "milliseconds" if moment.microsecond else "seconds"
    return moment.isoformat(timespec=precision).replace("+00:00", "Z")
