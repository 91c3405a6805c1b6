"""Which arriving notifications are attempted now, expired, or deferred to their send_at (channel/holds)."""

from __future__ import annotations

from notifyd.api import Notification
from notifyd.channel.holds import Holds, NotificationExpired
from notifyd.channel.job import Job

NOW = 1_800_000_000.0


class Message:
    def __init__(self, offset: int) -> None:
        self._offset = offset

    def offset(self) -> int:
        return self._offset


def job(offset: int, **fields: float) -> Job:
    found = Job(Message(offset), ("t", 0), ("t", 0), 0)
    found.notification = Notification(id=f"n{offset}", channel="c", to="a", body="b", **fields)
    return found


def test_due_and_unscheduled_notifications_pass_in_order_the_others_are_expired_or_deferred() -> None:
    deferred, expired = [], []
    holds = Holds(channel="c", defer=lambda j, until: deferred.append((j.message.offset(), until)),
                  expire=lambda j, error: expired.append((j.message.offset(), error)), clock=lambda: NOW)
    jobs = [job(0), job(1, send_at=NOW + 60), job(2, expires_at=NOW), job(3, send_at=NOW - 1, expires_at=NOW + 1),
            job(4, send_at=NOW + 60, expires_at=NOW - 5)]
    assert [j.message.offset() for j in holds.admit(jobs)] == [0, 3]
    assert deferred == [(1, NOW + 60)]
    assert [offset for offset, _ in expired] == [2, 4] and all(isinstance(e, NotificationExpired) for _, e in expired)
    assert expired[0][1].dlq_reason == "expired"
