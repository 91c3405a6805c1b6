"""Notifications not to be attempted now: expired ones, and ones scheduled for later (``send_at``).

Checked as jobs arrive, from the source topics and again from the delay topics, so a
notification that expires while it waits for a retry is never sent. One scheduled for
later is handed to the delay topics until its time, like a retry but without an attempt.
Expiry is checked once more before an attempt that waited in the process (``expired_now``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from notifyd.api import PermanentError
from notifyd.channel.job import Job, parse
from notifyd.records.dlqheaders import REASON_EXPIRED
from notifyd.records.schedule import defer_until, expired


class NotificationExpired(PermanentError):
    """Not delivered by its ``expires_at``: never sent, dead-lettered with reason ``expired``.

    Permanent: never retried, never handed to a fallback channel, and not the provider's
    failure, so a circuit breaker does not count it.
    """

    dlq_reason = REASON_EXPIRED


def expired_error(expires_at: float) -> NotificationExpired:
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires_at))
    return NotificationExpired(f"not delivered by its expires_at ({when})")


def expired_now(job: Job) -> NotificationExpired | None:
    """The error to settle ``job`` with if its notification expired while it waited in the process.

    For its key's earlier notification, a free slot or the flow gate: a slow provider or a
    rate limit can keep it there for minutes, and an expired one-time code must not go out.
    """
    notification = job.notification
    if notification is None or notification.expires_at is None:  # the common case: no clock read
        return None
    return expired_error(notification.expires_at) if expired(notification, time.time()) else None


class Holds:
    """Lets through the jobs to attempt now; expires or defers the others."""

    def __init__(self, *, channel: str, defer: Callable[[Job, float], None],
                 expire: Callable[[Job, BaseException], None], clock: Callable[[], float] = time.time) -> None:
        self._channel, self._defer, self._expire, self._clock = channel, defer, expire, clock

    def admit(self, jobs: list[Job]) -> list[Job]:
        """``jobs`` that may be attempted now, in order; the rest are on their way to the DLQ or a delay topic."""
        now, ready = self._clock(), []
        for job in jobs:
            notification = job.notification if parse(job, channel=self._channel) is None else None
            if notification is None or (notification.send_at is None and notification.expires_at is None):
                ready.append(job)  # the common case; an invalid record fails as it did
            elif expired(notification, now):
                self._expire(job, expired_error(notification.expires_at))
            elif (until := defer_until(notification, now)) is not None:
                self._defer(job, until)
            else:
                ready.append(job)
        return ready
