"""Points in time given on the command line: ISO-8601, or an age such as ``30m``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class BadTime(ValueError):
    """A time that is neither ISO-8601 nor an age like ``1h``."""


def parse_time(text: str, *, now: datetime) -> datetime:
    """An aware UTC datetime: ``2026-11-24T10:00Z`` as given, ``90m`` as ``now`` minus 90 minutes.

    A time without a zone is taken as UTC: operators read UTC from DLQ headers.
    """
    age = _AGE.match(text)
    if age:
        return now - timedelta(seconds=float(age.group(1)) * _UNIT_SECONDS[age.group(2)])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadTime(f"{text!r} is not an ISO-8601 time or an age like 30m, 1h, 2d") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


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
