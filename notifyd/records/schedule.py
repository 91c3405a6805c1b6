"""When a notification may go: its ``send_at`` and ``expires_at`` fields, as epoch seconds.

A notification names a moment as RFC 3339 text with an offset (``2026-12-04T10:00:00+01:00``,
``Z`` for UTC) or as epoch seconds (a JSON number). The schema admits only those shapes;
``parse_moment`` turns one into epoch seconds or says why it is not a moment. Pure: the
caller passes ``now``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from notifyd.api import Notification

MOMENT_FIELDS = ("send_at", "expires_at")
# 9999-12-31T23:59:59Z, the last second RFC 3339 can write: a larger number would overflow
# the datetimes and the millisecond Kafka timestamps it ends up in.
LAST_EPOCH = 253402300799


class BadMoment(ValueError):
    """A ``send_at``/``expires_at`` value that is not a moment in time."""


def parse_moment(value: Any) -> float:
    """Epoch seconds of an RFC 3339 string with an offset, or of a number; raises ``BadMoment``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadMoment(f"{value!r} is neither RFC 3339 text nor epoch seconds")
    if not isinstance(value, str):
        return _epoch_number(value)
    return _rfc3339(value)


def _epoch_number(value: float) -> float:
    if not math.isfinite(value) or not 0 <= value <= LAST_EPOCH:
        raise BadMoment(f"{value!r} is not epoch seconds (0 up to {LAST_EPOCH}, the end of the year 9999)")
    return float(value)


def _rfc3339(text: str) -> float:
    try:
        # RFC 3339 allows a lower-case 't' and 'z'; fromisoformat only the upper-case ones. Not
        # stripped: the client's schema check let "...Z\n" through, which the channel refuses.
        moment = datetime.fromisoformat(text.upper())
    except ValueError as exc:  # its words about the calendar (30 February) help; its echo of the upper-cased text not
        detail = "" if str(exc).startswith("Invalid isoformat string") else f": {exc}"
        raise BadMoment(f"{text!r} is not an RFC 3339 time{detail}") from None
    if moment.tzinfo is None:
        # A local time without an offset means a different instant on every host.
        raise BadMoment(f"{text!r} has no UTC offset (add Z or +HH:MM)")
    return _epoch_number(moment.timestamp())  # 9999-12-31T23:59:59-01:00 is in the year 10000


def moment_fields(document: Mapping[str, Any]) -> dict[str, float]:
    """The document's ``send_at``/``expires_at`` as epoch seconds; raises ``BadMoment`` naming the field."""
    found = {}
    for name in MOMENT_FIELDS:
        if document.get(name) is not None:  # the schema refuses a null; a decoded record holds None for "absent"
            try:
                found[name] = parse_moment(document[name])
            except BadMoment as exc:
                raise BadMoment(f"{name}: {exc}") from None
    return found


def defer_until(notification: Notification, now: float) -> float | None:
    """The epoch second ``notification`` must wait for because of ``send_at``, or None if it is due."""
    send_at = notification.send_at
    return send_at if send_at is not None and send_at > now else None


def expired(notification: Notification, now: float) -> bool:
    """Whether ``notification``'s ``expires_at`` has passed: it must never be sent."""
    return notification.expires_at is not None and notification.expires_at <= now
