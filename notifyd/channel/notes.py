"""What befalls a notification outside its handler's ``send``, told to the ledger and the events topic.

The ledger's guard and the outcome reporter see every attempt, since they wrap the
handler. Waits on the delay topics and expiries happen around it: a retry waiting in the
tiers, a hold (``send_at``, quiet hours, a recipient cap), an expiry. Each is noted in the
ledger, so ``notifyd trace`` shows it; an expiry is an outcome, so it is published too. So
is an attempt the channel's timeout cut off: the wrappers saw it cancelled, or never end.
"""

from __future__ import annotations

from typing import Any

from notifyd.api import Notification
from notifyd.records import outcome as o
from notifyd.records.outcome import iso

RETRY_WAITING = "retry_waiting"
HELD = "held"
EXPIRED = "expired"


class Notes:
    """Notes of one channel process; either side may be absent (no ledger, no events topic)."""

    def __init__(self, *, ledger: Any = None, events: Any = None) -> None:
        self._ledger, self._events = ledger, events  # a notifyd.ledger.Ledger, a channel.outcomes.OutcomePublisher

    @staticmethod
    def build(*, ledger: Any, events: Any) -> Notes | None:
        """Notes, or None when there is nobody to tell."""
        return None if ledger is None and events is None else Notes(ledger=ledger, events=events)

    def retry_waiting(self, notification: Notification, attempts: int, due: float, error: str) -> None:
        """A failed notification handed to the delay topics, to be attempted again at ``due``."""
        self._note(notification, RETRY_WAITING, attempts, f"until {iso(due)} after {error}")

    def held(self, notification: Notification, attempts: int, reason: str, until: float) -> None:
        """A notification parked on the delay topics without an attempt, for ``reason``."""
        self._note(notification, HELD, attempts, f"{reason} until {iso(until)}")

    def expired(self, notification: Notification, attempts: int) -> None:
        """A notification given up for its ``expires_at``: never sent again."""
        self._note(notification, EXPIRED, attempts, f"expires_at {iso(notification.expires_at or 0.0)}")
        if self._events is not None:
            self._events.publish(notification, o.EXPIRED, attempt=attempts)

    def timed_out(self, notification: Notification, attempts: int, *, final: bool, error: BaseException) -> None:
        """An attempt cut off by the channel's timeout: the outcome reporter around the handler never saw it end."""
        if self._events is not None:
            self._events.publish(notification, o.DEAD_LETTERED if final else o.ATTEMPT_FAILED, attempt=attempts,
                                 error=o.error_text(error))

    def _note(self, notification: Notification, kind: str, attempts: int, detail: str) -> None:
        if self._ledger is not None:
            self._ledger.note(notification.id, kind, attempt=attempts, detail=detail)
