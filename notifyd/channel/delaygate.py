"""Reading the delay topics: a record that is not yet due pauses its partition until it is.

Within a tier partition due times rise with the offsets, so the head decides: a record
not due yet is not dispatched; its partition is paused, and a timer takes it up again
when the record is due. Nothing is read again while it waits.

What was already read of a held partition (the head and the records fetched after it) is
kept, up to ``KEEP_AT_MOST`` records over all partitions: the timer delivers each kept
record as it comes due, and the partition is rewound to the first record not kept and
resumed only once they are all gone. Dropping them instead, and reading them again at
each resume, read every record of a tier once for each record ahead of it in its
partition: in bench case 8 (150 failures a second), the delay consumer read 13 records for
each one it delivered, and the broker's CPU grew with the tiers' backlog. The cap keeps
memory flat in an outage; beyond it, records are dropped and read again as before. Kept
records are not dispatched, so no stored offset passes them: a crash reads them again.
Pause, seek and resume run on the poll loop's I/O thread, like ``consume``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from notifyd.channel.job import Job, record_timestamp
from notifyd.channel.tiers import next_hop, wait_before
from notifyd.config.delays import TIER_DELAYS
from notifyd.metrics import delay_metrics
from notifyd.records import delayheaders as dh

SEEK_RETRY_DELAY = 1.0
# Records of held partitions kept in memory, over all of a reader's partitions: ~1 KiB
# each, so about 1 MiB at most (a resumed partition is fetched up to 1 MiB anyway).
KEEP_AT_MOST = 1000

Partition = tuple[str, int]


class Held:
    """A partition held back until its head is due: what was read of it, and where to read on."""

    def __init__(self, read_on_at: int, *, dropping: bool = False) -> None:
        # The head first (its state decoded), then what was read after it, in order.
        self.kept: deque[tuple[Message, dh.DelayState | None]] = deque()
        self.read_on_at = read_on_at  # after the last kept record, or the first one dropped
        self.dropping = dropping  # a record was dropped: none after it may be kept
        self.timer: asyncio.TimerHandle | None = None


class DelayGate:
    """Decides which delay-topic records are due, and holds back the partitions of those that are not."""

    def __init__(self, *, consumer: Consumer, io: Executor, channel: str, log: Any,
                 dispatch: Callable[[Partition, int], int], forward: Callable[[Job], None],
                 submit: Callable[[list[Job]], None], clock: Callable[[], float] = time.time,
                 keep_at_most: int = KEEP_AT_MOST) -> None:
        self._consumer, self._io, self._log, self._clock = consumer, io, log, clock
        self._dispatch, self._forward, self._submit = dispatch, forward, submit
        self._held: dict[Partition, Held] = {}
        self._kept, self._keep_at_most = 0, keep_at_most  # records kept over all held partitions
        self._tokens: dict[Partition, int] = {}  # changes at each revocation: queued consumer calls lapse
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lateness = delay_metrics().lateness.labels(channel)

    def accept(self, message: Message, partition: Partition, jobs: list[Job]) -> None:
        """Hold ``message`` back if not due; else move it to its next tier, or append its job to ``jobs``."""
        held = self._held.get(partition)
        if held is not None:
            return self._keep(held, message)
        state = _state_of(message, partition)
        wait = wait_before(state.hop_due, now=self._clock())
        if wait > 0:
            self._loop = asyncio.get_running_loop()
            return self._hold(partition, message, state, wait)
        self._route(message, partition, state, jobs)

    def _route(self, message: Message, partition: Partition, state: dh.DelayState, jobs: list[Job]) -> None:
        """A due record: on to its next tier, or its job to ``jobs``."""
        key = message.key()
        job = Job(message, partition, (partition, key) if key is not None else (partition, message.offset(), None),
                  self._dispatch(partition, message.offset()), attempts=state.attempts, delayed=state,
                  first_failed_at=state.first_failed_at)
        if self.needs_hop(state):
            self._forward(job)
        else:
            jobs.append(job)

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
        """Let go of revoked partitions (the rebalancer resumes them before they go), and of what was kept of them."""
        for partition in partitions:
            held = self._held.pop(partition, None)
            self._tokens[partition] = self._tokens.get(partition, 0) + 1
            if held is not None:
                held.timer.cancel()
                self._kept -= len(held.kept)

    def _keep(self, held: Held, message: Message, state: dh.DelayState | None = None) -> None:
        """Keep a record of a held partition, unless the cap is reached or one was dropped before it."""
        if held.dropping or self._kept >= self._keep_at_most:
            held.dropping = True  # read_on_at stays at the first record dropped
            return
        held.kept.append((message, state))
        held.read_on_at = message.offset() + 1
        self._kept += 1

    def _hold(self, partition: Partition, message: Message, state: dh.DelayState, wait: float) -> None:
        """Pause ``partition`` until ``message``, its head, is due; the head is kept if the cap allows."""
        held = Held(message.offset())
        self._held[partition] = held
        self._keep(held, message, state)
        self._wait(partition, held, wait)
        self._on_io(self._pause, partition, self._tokens.get(partition, 0))

    def _wait(self, partition: Partition, held: Held, wait: float) -> None:
        held.timer = asyncio.get_running_loop().call_later(wait, self._release, partition)

    def _release(self, partition: Partition) -> None:
        """The head is due: deliver the kept records that are due; once none is left, rewind and resume."""
        held, jobs = self._held[partition], []
        while held.kept:
            message, state = held.kept[0]
            if state is None:  # decoded once it is the head
                state = _state_of(message, partition)
            wait = wait_before(state.hop_due, now=self._clock())
            if wait > 0:
                held.kept[0] = (message, state)
                self._wait(partition, held, wait)
                break
            held.kept.popleft()
            self._kept -= 1
            self._route(message, partition, state, jobs)
        else:  # no longer held, so nothing read after the resume is dropped
            del self._held[partition]
            self._on_io(self._rewind_and_resume, partition, held.read_on_at, self._tokens.get(partition, 0))
        if jobs:
            self._submit(jobs)

    def _hold_again(self, partition: Partition, offset: int, token: int) -> None:
        """A rewind failed: hold the partition, still paused, and try again after ``SEEK_RETRY_DELAY``."""
        if token != self._tokens.get(partition, 0):
            return  # revoked meanwhile
        held = Held(offset, dropping=True)
        self._held[partition] = held
        self._wait(partition, held, SEEK_RETRY_DELAY)

    def _on_io(self, fn: Callable[..., None], *args: Any) -> None:
        """Consumer calls go to the poll loop's I/O thread, in order, never overlapping ``consume``."""
        asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    def _pause(self, partition: Partition, token: int) -> None:
        if token != self._tokens.get(partition, 0):
            return  # revoked meanwhile: pausing it now could leave it paused for its next assignment
        try:
            self._consumer.pause([TopicPartition(*partition)])
        except KafkaException as exc:  # what it reads meanwhile is kept or dropped; the resume rewinds
            self._log.warning("delay topic pause failed", topic=partition[0], partition=partition[1], error=str(exc))

    def _rewind_and_resume(self, partition: Partition, offset: int, token: int) -> None:
        if token != self._tokens.get(partition, 0):
            return
        try:
            self._consumer.seek(TopicPartition(*partition, offset))
        except KafkaException as exc:  # still paused: held again and retried, never skipped
            self._log.warning("delay topic seek failed; retrying", topic=partition[0], partition=partition[1],
                              offset=offset, error=str(exc))
            self._loop.call_soon_threadsafe(self._hold_again, partition, offset, token)
            return
        self._consumer.resume([TopicPartition(*partition)])


def _state_of(message: Message, partition: Partition) -> dh.DelayState:
    return dh.decode(message.headers(), topic=partition[0], partition=partition[1], offset=message.offset(),
                     timestamp=record_timestamp(message))
