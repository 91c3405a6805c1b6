"""Whether a notification must wait before delivery, and until when: ``hold_reason``.

Pure: the channel calls it at dispatch time with the user the directory gave (or None) and
``now``, and parks a held notification on a delay topic until the time it returns. It is
asked again when the notification comes back, so a scheduled notification that falls due
inside the user's quiet hours then waits for their end.
"""

from __future__ import annotations

from notifyd.api import Notification
from notifyd.config.settings import ChannelSettings
from notifyd.recipients.quiethours import BadQuietHours, quiet_until
from notifyd.recipients.users import User
from notifyd.records.schedule import defer_until


class HeldBack(Exception):
    """Raised by the preparer: not to be sent before ``until`` (epoch seconds), for ``reason``.

    Not an attempt and not a failure: the channel parks the notification on its delay
    topics until then, its attempts unchanged.
    """

    def __init__(self, reason: str, until: float, *, attempted: bool = True) -> None:
        super().__init__(f"held back until {until:.3f} ({reason})")
        self.reason, self.until = reason, until
        self.attempted = attempted  # raised inside an attempt (the preparer), which then did not count


SCHEDULED = "scheduled"
QUIET_HOURS = "quiet_hours"
HOLD_REASONS = (SCHEDULED, QUIET_HOURS)


def hold_reason(notification: Notification, user: User | None, settings: ChannelSettings,
                now: float) -> tuple[str, float] | None:
    """``(reason, until)`` when ``notification`` must wait until epoch second ``until``, else None.

    ``scheduled``: its ``send_at`` is ahead. ``quiet_hours``: the channel respects quiet hours,
    the user has a ``timezone`` and ``quiet_hours`` and is inside them, and the notification's
    priority is not ``high``. Expiry is the caller's (``records.schedule.expired``): a hold
    that ends at or after ``expires_at`` ends in the DLQ with reason ``expired``.
    """
    until = defer_until(notification, now)
    if until is not None:
        return SCHEDULED, until
    until = _quiet_until(notification, user, settings, now)
    return (QUIET_HOURS, until) if until is not None else None


def _quiet_until(notification: Notification, user: User | None, settings: ChannelSettings, now: float) -> float | None:
    if not settings.respect_quiet_hours or notification.priority == "high" or user is None:
        return None
    if user.timezone is None or user.quiet_hours is None:
        return None
    try:
        return quiet_until(user.quiet_hours, user.timezone, now)
    except BadQuietHours:
        return None  # the directory checks both when it reads a user; a User built otherwise is delivered
