"""Reading the delay topics: a record that is not yet due pauses its partition until it is.

Within a tier partition due times rise with the offsets, so the head decides: a record
not due yet is not dispatched; its partition is paused and rewound to it, and a timer
resumes the partition when the record is due. Nothing is held in memory and nothing is
read again while it waits. Records of a held partition fetched meanwhile are dropped:
they are read again after the resume, and none was dispatched, so no offset passes them.
Pause, seek and resume run on the poll loop's I/O thread, like ``consume``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from notifyd.channel.job import Job
from notifyd.channel.tiers import next_hop, wait_before
from notifyd.config.delays import TIER_DELAYS
from notifyd.metrics import delay_metrics
from notifyd.records import delayheaders as dh

SEEK_RETRY_DELAY = 1.0

Partition = tuple[str, int]


class DelayGate:
    """Decides which delay-topic records are due, and holds back the partitions of those that are not."""

    def __init__(self, *, consumer: Consumer, io: Executor, channel: str, log: Any,
                 dispatch: Callable[[Partition, int], int], forward: Callable[[Job], None],
                 clock: Callable[[], float] = time.time) -> None:
        self._consumer, self._io, self._log, self._clock = consumer, io, log, clock
        self._dispatch, self._forward = dispatch, forward
        self._held: dict[Partition, tuple[int, asyncio.TimerHandle]] = {}
        self._tokens: dict[Partition, int] = {}  # changes at each revocation: queued consumer calls lapse
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lateness = delay_metrics().lateness.labels(channel)

    def accept(self, message: Message, partition: Partition, jobs: list[Job]) -> None:
        """Hold ``message`` back if not due; else move it to its next tier, or append its job to ``jobs``."""
        state = self.admit(message)
        if state is None:
            return
        key = message.key()
        job = Job(message, partition, (partition, key) if key is not None else (partition, message.offset(), None),
                  self._dispatch(partition, message.offset()), attempts=state.attempts, delayed=state,
                  first_failed_at=state.first_failed_at)
        if self.needs_hop(state):
            self._forward(job)
        else:
            jobs.append(job)

    def admit(self, message: Message) -> dh.DelayState | None:
        """The delay state of a record that is due; None when it waits (its partition is held)."""
        partition = (message.topic(), message.partition())
        if partition in self._held:
            return None
        state = dh.decode(message.headers(), topic=partition[0], partition=partition[1], offset=message.offset())
        wait = wait_before(state.hop_due, now=self._clock())
        if wait > 0:
            self._loop = asyncio.get_running_loop()
            self._hold(partition, message.offset(), wait)
            return None
        return state

    def needs_hop(self, state: dh.DelayState) -> bool:
        """Whether a due record must move on to another tier; if not, its lateness is counted."""
        now = self._clock()
        if next_hop(now=now, due=state.due, ladder=TIER_DELAYS) is not None:
            return True
        self._lateness.observe(max(0.0, now - state.due))
        return False

    def unheld(self, partitions: Iterable[TopicPartition]) -> list[TopicPartition]:
        """``partitions`` without the held ones (for a resume that must leave those paused)."""
        return [tp for tp in partitions if (tp.topic, tp.partition) not in self._held]

    def forget(self, partitions: Iterable[Partition]) -> None:
        """Let go of revoked partitions (the rebalancer resumes them before they go)."""
        for partition in partitions:
            held = self._held.pop(partition, None)
            self._tokens[partition] = self._tokens.get(partition, 0) + 1
            if held is not None:
                held[1].cancel()

    def _hold(self, partition: Partition, offset: int, wait: float, token: int | None = None) -> None:
        if token is not None and token != self._tokens.get(partition, 0):
            return  # a retried rewind of a partition revoked meanwhile
        timer = asyncio.get_running_loop().call_later(wait, self._release, partition)
        self._held[partition] = (offset, timer)
        self._on_io(self._pause_and_rewind, partition, offset, self._tokens.get(partition, 0))

    def _release(self, partition: Partition) -> None:
        """The head is due: no longer held (so nothing read after the resume is dropped), rewound, resumed."""
        offset, _timer = self._held.pop(partition)
        self._on_io(self._rewind_and_resume, partition, offset, self._tokens.get(partition, 0))

    def _on_io(self, fn: Callable[..., None], *args: Any) -> None:
        """Consumer calls go to the poll loop's I/O thread, in order, never overlapping ``consume``."""
        asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    def _pause_and_rewind(self, partition: Partition, offset: int, token: int) -> None:
        if token != self._tokens.get(partition, 0):
            return  # revoked meanwhile: pausing it now could leave it paused for its next assignment
        try:
            self._consumer.pause([TopicPartition(*partition)])
            self._consumer.seek(TopicPartition(*partition, offset))
        except KafkaException as exc:  # the rewind is done again before the resume
            self._log.warning("delay topic pause failed", topic=partition[0], partition=partition[1], error=str(exc))

    def _rewind_and_resume(self, partition: Partition, offset: int, token: int) -> None:
        if token != self._tokens.get(partition, 0):
            return
        try:
            self._consumer.seek(TopicPartition(*partition, offset))
        except KafkaException as exc:  # still paused: held again and retried, never skipped
            self._log.warning("delay topic seek failed; retrying", topic=partition[0], partition=partition[1],
                              offset=offset, error=str(exc))
            self._loop.call_soon_threadsafe(self._hold, partition, offset, SEEK_RETRY_DELAY, token)
            return
        self._consumer.resume([TopicPartition(*partition)])
