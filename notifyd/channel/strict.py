"""``ordering: strict``: while a key has a notification waiting for a retry, later ones of that key wait behind it.

The waiting is durable: each key's queue lives in the ledger's storage
(``notifyd.ledger.orderqueue``), and a notification waiting in it waits on the delay topics,
never in memory. This side ties the queue to delivery's jobs: a failed notification
handed to the tiers is parked; each attempt first looks at its key's head, and one that
is not the head is appended and held back (reason ``ordering``, no attempt used up); an
outcome pops. A store that fails is logged, never raised: the notification waits and
looks again, or (a failed park or pop) its key may lose its order for once.

A storage that may wait on the network (PostgreSQL) is read and written on one thread of
its own, off the event loop, in the order of the calls: a look queued after a park sees
it, and a slow or unreachable server stalls only the strict channel's order, never its
poll loop.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from notifyd.channel.job import Job, where
from notifyd.ledger.orderqueue import OrderQueues

ORDERING = "ordering"  # the hold reason of a notification waiting behind its key's head
LOOK_FAILED_WAIT = 5.0  # seconds a notification waits when its key's queue cannot be read


class StrictOrder:
    """One strict channel's per-key order, as delivery sees it."""

    def __init__(self, queues: OrderQueues, *, log: Any, clock: Any = time.time) -> None:
        self._queues, self._log, self._clock = queues, log, clock
        # One thread: its queue keeps the calls in order (a look after the park it must see).
        self._io = ThreadPoolExecutor(1, thread_name_prefix="notifyd-order") if queues.blocking else None

    @property
    def blocking(self) -> bool:
        """Whether a look may wait on the network: then it goes through ``look``, off the event loop."""
        return self._io is not None

    async def look(self, job: Job) -> float | None:
        """``turn`` on the storage's thread, after the writes asked for before it."""
        return await asyncio.get_running_loop().run_in_executor(self._io, self.turn, job)

    def close(self) -> None:
        """Wait for the writes asked for so far (before the storage closes)."""
        if self._io is not None:
            self._io.shutdown(wait=True)

    def turn(self, job: Job) -> float | None:
        """None: attempt ``job`` now; else it was appended to its key's queue and waits until then (epoch seconds)."""
        key = job.message.key()
        try:
            until, queued = self._queues.turn(key, job.notification.id)
        except Exception as exc:  # unknown order: waiting is the safe mistake
            self._log.warning("order queue unreadable; the notification waits", **where(job), error=str(exc))
            return self._clock() + LOOK_FAILED_WAIT
        job.queued = job.queued or queued
        return until

    def parked(self, job: Job, due: float) -> None:
        """``job`` failed and goes to the tiers until ``due``: its key's later notifications wait behind it."""
        job.handed_over = True
        if (key := _key(job)) is not None:
            job.queued = True
            self._write(job, "park", lambda: self._queues.park(key, job.notification.id, due))

    def held(self, job: Job, until: float, reason: str) -> None:
        """``job`` goes to the tiers without an attempt; a queued one's due moves to ``until``."""
        job.handed_over = True
        key = _key(job)
        if reason != ORDERING and key is not None and (job.queued or job.delayed is not None):
            self._write(job, "touch", lambda: self._queues.touch(key, job.notification.id, until))

    def moved(self, job: Job) -> None:
        """``job`` hops to its next tier: its offset's finish is no outcome."""
        job.handed_over = True

    def finished(self, job: Job) -> None:
        """``job``'s offset is finished: if that is its outcome and it was queued, it leaves its key's queue."""
        if job.handed_over or not (job.queued or job.delayed is not None):
            return
        if (key := _key(job)) is not None:
            self._write(job, "pop", lambda: self._queues.pop(key, job.notification.id))

    def _write(self, job: Job, what: str, write: Any) -> None:
        if self._io is not None:
            self._io.submit(self._write_now, job, what, write)
        else:
            self._write_now(job, what, write)

    def _write_now(self, job: Job, what: str, write: Any) -> None:
        try:
            write()
        except Exception as exc:  # never lose the message over its order; a stale head is dropped later
            self._log.error(f"order queue {what} failed", **where(job), error=str(exc))


def applies(job: Job) -> bool:
    """Whether ``job`` has an order to keep: a valid notification with a Kafka key (parsed before)."""
    return job.notification is not None and job.message.key() is not None


def _key(job: Job) -> bytes | None:
    return job.message.key() if job.notification is not None else None
