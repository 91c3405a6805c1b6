"""A strict channel's per-key queues, kept in the ledger's storage so they hold across restarts.

Every call reads or writes the storage at once, not in the ledger's batches: a follower
must see a head parked a moment ago, by this process or another. The decisions are
``notifyd.ledger.order``'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from notifyd.ledger.order import MIN_WAIT, Head, key_text, turn
from notifyd.ledger.store import Store

MAX_DROPS = 8  # finished or stale heads dropped in one look; a longer run of them waits for the next look


class OrderQueues:
    """The per-key queues of one channel."""

    def __init__(self, store: Store, *, channel: str, finished: Callable[[str], bool], log: Any,
                 clock: Callable[[], float] = time.time) -> None:
        self._store, self._channel, self._finished, self._log, self._clock = store, channel, finished, log, clock
        self._since = clock()  # heads are late from the process's start at the earliest (order.turn)

    @property
    def blocking(self) -> bool:
        """Whether a look may wait on the network (PostgreSQL)."""
        return self._store.blocking

    def turn(self, key: bytes, notification_id: str) -> tuple[float | None, bool]:
        """``(until, queued)``: ``until`` None means attempt it now, else it was appended and waits until then.

        ``queued``: the notification is in its key's queue (the head, or just appended), so
        its outcome must pop it.
        """
        text, now = key_text(key), self._clock()
        for _ in range(MAX_DROPS):
            head = self._store.order_head(self._channel, text)
            finished = head is not None and head.id != notification_id and self._finished(head.id)
            decision = turn(head, notification_id, now=now, head_finished=finished, since=self._since)
            if decision.drop is not None:
                self._drop(text, head, decision.drop)
            elif decision.until is None:
                return None, head is not None
            else:
                return self._append(text, notification_id, decision.until), True
        return self._append(text, notification_id, now + MIN_WAIT), True

    def park(self, key: bytes, notification_id: str, due: float) -> None:
        """Append ``notification_id`` to its key's queue (it waits for a retry until ``due``), or update its due."""
        self._store.order_park(self._channel, key_text(key), notification_id, due)

    def touch(self, key: bytes, notification_id: str, due: float) -> None:
        """A queued notification waits until ``due`` (quiet hours, a hop); nothing if it is not queued."""
        self._store.order_touch(self._channel, key_text(key), notification_id, due)

    def pop(self, key: bytes, notification_id: str) -> None:
        """``notification_id`` has its outcome: the next of its key becomes the head."""
        self._store.order_pop(self._channel, key_text(key), notification_id)

    def _append(self, key: str, notification_id: str, until: float) -> float:
        self._store.order_park(self._channel, key, notification_id, until)
        return until

    def _drop(self, key: str, head: Head, why: str) -> None:
        if why == "stale":
            self._log.warning("order queue head long past its due, dropped so its key moves on",
                              notification_id=head.id, due=round(head.due, 3))
        else:
            self._log.info("order queue head already finished, dropped", notification_id=head.id)
        self._store.order_pop(self._channel, key, head.id)
