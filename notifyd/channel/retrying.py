"""Where a failed notification waits for its next attempt: in the process, or on the delay topics.

At most one retry waits in the process: right after a first attempt, when it is due within
``IN_PROCESS_RETRY_LIMIT``. Every other retry is handed to the channel's delay topics
(``notifyd.channel.delayed``), holding neither memory nor its partition, so a notification
that keeps failing adds no latency to the others. Without delay topics (the Deliverer's
unit tests) every retry waits in the process, as before issue 20.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from notifyd.channel.backoff import retry_delay
from notifyd.channel.deadletter import describe
from notifyd.channel.delayed import Delayer
from notifyd.channel.holds import expired_error
from notifyd.channel.job import Job, where
from notifyd.channel.notes import Notes
from notifyd.channel.producer import AckedProducer
from notifyd.config.delays import TIER_DELAYS
from notifyd.config.durations import format_duration
from notifyd.config.settings import ChannelSettings
from notifyd.metrics import HOLD_REASONS, delay_metrics

IN_PROCESS_RETRY_LIMIT = 1.0


class Retries:
    """Schedules the retries of one channel's failed jobs."""

    def __init__(self, *, settings: ChannelSettings, producer: AckedProducer | None, topics: tuple[str, ...],
                 log: Any, redact: Callable[[str], str], wait_here: Callable[[Job, float], None],
                 release: Callable[[Job], None], on_finished: Callable[[Job], None],
                 is_current: Callable[[Job], bool], on_refused: Callable[[Job, BaseException], None],
                 notes: Notes | None = None) -> None:
        self._settings, self._log, self._redact, self._on_refused = settings, log, redact, on_refused
        self._notes = notes
        self.order: Any = None  # a notifyd.channel.strict.StrictOrder on an ordering: strict channel
        self._wait_here, self._release = wait_here, release
        self._rng = random.Random()
        scheduled, held = delay_metrics().scheduled, delay_metrics().held
        self._held = {reason: held.labels(settings.name, reason) for reason in HOLD_REASONS}
        self._scheduled = [scheduled.labels(settings.name, format_duration(delay)) for delay in TIER_DELAYS]
        self._delayer = None if producer is None else Delayer(
            producer=producer, topics=topics, log=log, on_finished=on_finished, is_current=is_current,
            on_refused=on_refused, on_scheduled=self._count)

    def retry(self, job: Job, error: BaseException) -> None:
        """Have ``job`` attempted again after the delay its schedule or the provider's Retry-After sets."""
        retry_after = getattr(error, "retry_after", None)
        delay = retry_delay(self._settings, job.attempts, retry_after=retry_after, rng=self._rng)
        message = self._redact(describe(error))
        self._log.info("delivery failed, will retry", **where(job), attempt=job.attempts,
                       retry_in=round(delay, 3), error_class=type(error).__name__, error=message)
        job.first_failed_at = job.first_failed_at or time.time()
        if (expires_at := _expiry_before(job, time.time() + delay)) is not None:  # it would wait in vain
            self._release(job)
            self._on_refused(job, expired_error(expires_at))
            return
        if self._delayer is None or _retry_here(job, delay):
            self._wait_here(job, delay)
            return
        if self.order is not None:  # before the release starts the next job of its key, which must see it
            self.order.parked(job, time.time() + delay)
        self._release(job)
        described = f"{type(error).__name__}: {message}"
        self._delayer.retry(job, wait=delay, error=described)
        if self._notes is not None and job.notification is not None:
            self._notes.retry_waiting(job.notification, job.attempts, time.time() + delay, described)

    def defer(self, job: Job, until: float, reason: str = "scheduled") -> None:
        """Hand ``job`` (released, or never scheduled) to the delay topics until ``until`` (epoch seconds).

        One that would only come back after its ``expires_at`` is dead-lettered as expired now.
        """
        if (expires_at := _expiry_before(job, until)) is not None:
            self._on_refused(job, expired_error(expires_at))
            return
        self._log.info("notification held back", **where(job), reason=reason, until=round(until, 3))
        self._held[reason].inc()
        if self.order is not None:
            self.order.held(job, until, reason)
        if self._notes is not None:
            self._notes.held(job.notification, job.attempts, reason, until)
        self._delayer.defer(job, until=until)

    def forward(self, job: Job) -> None:
        """Move a delayed record whose hop is due, but not its delivery, to its next tier."""
        if self.order is not None:
            self.order.moved(job)
        self._delayer.forward(job)

    def _count(self, tier: int) -> None:
        self._scheduled[tier].inc()


def _retry_here(job: Job, delay: float) -> bool:
    return delay < IN_PROCESS_RETRY_LIMIT and job.attempts == 1 and job.delayed is None


def _expiry_before(job: Job, at: float) -> float | None:
    """``job``'s ``expires_at`` if it comes at or before ``at`` (a wait until then would be in vain)."""
    expires_at = job.notification.expires_at if job.notification is not None else None
    return expires_at if expires_at is not None and at >= expires_at else None
