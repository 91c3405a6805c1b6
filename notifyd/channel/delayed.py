"""Handing a notification to the channel's delay topics; its offset is finished once the broker has it.

Two things are handed over: a retry, after a failed attempt (its wait from the retry
schedule or the provider's Retry-After), and a hop, a record read from a tier whose hop is
due while its final due time is still ahead. Either way the record goes to the tier that
``notifyd.channel.tiers`` picks, with the original key, value and headers and the delay
headers of ``notifyd.records.delayheaders``. It is written with the time of writing, not
the original timestamp, which travels in a header: a broker deletes records by their
timestamps, and a 30-day schedule hopping with its first timestamp would outlive a 7-day
retention and be deleted while it waits. A failed write is retried while the
partition is the channel's (``notifyd.channel.handoff``); a record the delay topic refuses
as too large would be refused forever, so it is dead-lettered instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from notifyd.api import PermanentError
from notifyd.channel.handoff import HandOff
from notifyd.channel.job import Job, source_timestamp, where
from notifyd.channel.producer import AckedProducer, Headers
from notifyd.channel.tiers import Hop, next_hop
from notifyd.config.delays import TIER_DELAYS
from notifyd.records import delayheaders as dh
from notifyd.records.notification import shorten


class Delayer:
    """Writes one channel's delayed records to its tiers and reports each job once the broker has it."""

    def __init__(self, *, producer: AckedProducer, topics: tuple[str, ...], log: Any,
                 on_finished: Callable[[Job], None], is_current: Callable[[Job], bool],
                 on_refused: Callable[[Job, BaseException], None], on_scheduled: Callable[[int], None],
                 clock: Callable[[], float] = time.time) -> None:
        self._tiers = [HandOff(producer, topic, what="delay topic", log=log, is_current=is_current) for topic in topics]
        self._log, self._clock = log, clock
        self._on_finished, self._on_refused = on_finished, on_refused
        self._on_scheduled = on_scheduled

    def retry(self, job: Job, *, wait: float, error: str) -> None:
        """Hand ``job`` over to be attempted again ``wait`` seconds from now."""
        now = self._clock()
        self._hand_over(job, _state(job, due=now + wait, now=now, first_failed_at=job.first_failed_at or now,
                                    last_error=shorten(error, 1000)), now)

    def defer(self, job: Job, *, until: float) -> None:
        """Hand ``job`` over, its attempts and history unchanged, to be attempted at ``until`` (epoch seconds)."""
        now = self._clock()
        last_error = job.delayed.last_error if job.delayed else ""
        self._hand_over(job, _state(job, due=until, now=now, first_failed_at=job.first_failed_at,
                                    last_error=last_error), now)

    def forward(self, job: Job) -> None:
        """Move a record whose hop is due but whose due time is ahead to its next tier."""
        self._hand_over(job, job.delayed, self._clock())

    def _hand_over(self, job: Job, state: dh.DelayState, now: float) -> None:
        hop = next_hop(now=now, due=state.due, ladder=TIER_DELAYS) or Hop(0, state.due)
        headers = dh.without_delay_headers(job.message.headers()) + dh.encode(state, hop_due=hop.due)
        self._on_scheduled(hop.tier)
        self._write(job, self._tiers[hop.tier], headers)

    def _write(self, job: Job, tier: HandOff, headers: Headers) -> None:
        message = job.message

        def too_large(error: str) -> None:
            self._log.error("the delay topic refuses the record as too large", **where(job), delay_topic=tier.topic,
                            error=error)
            self._on_refused(job, PermanentError(f"too large for delay topic {tier.topic}: {error}"))

        tier.send(job, value=message.value(), headers=headers, on_written=lambda: self._on_finished(job),
                  on_too_large=too_large)


def _state(job: Job, *, due: float, now: float, first_failed_at: float | None, last_error: str) -> dh.DelayState:
    """The delay state of ``job`` due at ``due``; its source is where the channel first read it."""
    message, source = job.message, job.delayed
    return dh.DelayState(
        attempts=job.attempts, due=due, hop_due=now,
        source_topic=source.source_topic if source else message.topic(),
        source_partition=source.source_partition if source else message.partition(),
        source_offset=source.source_offset if source else message.offset(),
        first_failed_at=first_failed_at, last_error=last_error, source_timestamp=source_timestamp(job),
    )
