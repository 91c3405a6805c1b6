"""Delivery on an ``ordering: strict`` channel: each attempt first asks its key's queue whose turn it is.

The look is at attempt time, not when a batch arrives: a job queued in memory behind one
of its key that has just failed (and been parked) looks when the scheduler starts it, and
waits behind it. The batch paths past the scheduler (``notifyd.channel.atonce``) would skip
that look, so a strict channel always takes the scheduled path. With PostgreSQL the look
runs on the order's thread, off the event loop, after the parks and pops asked for before it;
with SQLite it is a local read, done in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from notifyd.channel.job import Job, parse
from notifyd.channel.ledgered import LedgeredDeliverer
from notifyd.channel.strict import ORDERING, StrictOrder, applies


class StrictDeliverer(LedgeredDeliverer):
    """A ``LedgeredDeliverer`` that keeps each key's order across retries."""

    def __init__(self, *, order: StrictOrder, on_finished: Callable[[Job], None],
                 on_finished_all: object = None, **options: Any) -> None:
        def finished(job: Job) -> None:
            order.finished(job)  # first: a crash before the offset is stored finds it sent in the ledger
            on_finished(job)

        # Every job finishes through ``finished`` (``on_finished_all`` would skip the order).
        super().__init__(on_finished=finished, **options)
        self._order = order
        self.retries.order = order

    def _batches_at_once(self) -> bool:
        return False

    def _deliver_at_once(self, jobs: list[Job]) -> int:
        return 0

    def _start(self, job: Job) -> None:
        if not self._is_current(job) or parse(job, channel=self._settings.name) is not None or not applies(job):
            super()._start(job)  # released, dead-lettered as invalid, or no key: no order to keep
        elif self._order.blocking:
            self._active.add(job)  # holds its slot and key while it looks
            self._spawn_task(self._look_then_start(job))
        else:
            self._start_in_turn(job, self._order.turn(job))

    async def _look_then_start(self, job: Job) -> None:
        self._start_in_turn(job, await self._order.look(job))
        if self._for_pool:  # a pool job leaves in a chunk; outside _start_ready, this one alone
            jobs, self._for_pool = self._for_pool, []
            self._spawn_chunk(jobs)
        self._flush_soon()

    def _start_in_turn(self, job: Job, until: float | None) -> None:
        """Attempt ``job``, or hold it back until ``until`` behind its key's head (no attempt used up)."""
        if until is None or not self._is_current(job):
            super()._start(job)
            return
        self._active.add(job)
        self._release(job)
        self.retries.defer(job, until, ORDERING)
