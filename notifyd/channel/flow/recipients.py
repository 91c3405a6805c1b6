"""Per-recipient caps: at most ``max`` notifications to one recipient within ``per`` seconds.

The gate drops a notification over the cap, or defers it (``action: defer``) for
``free_in`` seconds: until the oldest of the recipient's last ``max`` leaves the window.

A sliding window per recipient (the user id, else the address), held in a bounded TTL
cache so that memory stays flat however many recipients pass. A notification counts
once: its id is remembered, so a retry or a redelivery of the same notification is not
counted against its recipient again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import cachetools

MAX_RECIPIENTS = 100_000  # tracked at once per process; the least recently seen go first


class RecipientLimiter:
    """Admits a notification unless its recipient already had ``max`` within the last ``per`` seconds."""

    def __init__(self, *, max_count: int, per: float, clock: Callable[[], float],
                 size: int = MAX_RECIPIENTS) -> None:
        self._max, self._per, self._clock = max_count, per, clock
        self._seen: cachetools.TTLCache[str, deque[tuple[float, str]]] = cachetools.TTLCache(size, per, timer=clock)

    def admit(self, recipient: str, notification_id: str) -> bool:
        """Count ``notification_id`` for ``recipient``; False if it is over the cap (and not counted)."""
        now = self._clock()
        sent = self._seen.get(recipient)
        if sent is None:
            sent = deque()
        while sent and sent[0][0] <= now - self._per:
            sent.popleft()
        if any(seen_id == notification_id for _, seen_id in sent):
            return True
        if len(sent) >= self._max:
            return False
        sent.append((now, notification_id))
        self._seen[recipient] = sent  # (re)set: the entry lives ``per`` seconds past its last notification
        return True

    def free_in(self, recipient: str) -> float:
        """Seconds until ``recipient`` may have another notification (0 if it may now)."""
        sent = self._seen.get(recipient)
        if not sent or len(sent) < self._max:
            return 0.0
        return max(0.0, sent[-self._max][0] + self._per - self._clock())


def recipient_of(notification: object) -> str | None:
    """Who a notification goes to, for the cap: its user, else its address; None if neither."""
    user_id = getattr(notification, "user_id", None)
    if user_id is not None:
        return f"user:{user_id}"
    to = getattr(notification, "to", None)
    return f"to:{to}" if to is not None else None
