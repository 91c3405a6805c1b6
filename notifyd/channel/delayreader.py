"""The channel's delay topics, read by a second consumer in a consumer group of their own.

Why not the source topics' consumer: cooperative-sticky balances the number of partitions
each member owns over all the topics of a subscription, so with the tiers in the source
group one member could own every source partition and another only tiers. In a group of
their own (``notifyd.config.delays.delay_group``) each set is balanced by itself.

The reader shares the poll loop's offset tracker and deliveries: a due record becomes a
job like any other, and its offset is stored and committed through this consumer once
finished. Like the poll loop, every consumer call that can wait runs on an I/O thread of
its own; ``DelayGate`` holds back partitions whose head is not due.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from notifyd.channel.delaygate import DelayGate
from notifyd.channel.delivery import Deliverer
from notifyd.channel.fetching import (
    BATCH_SIZE,
    LOGGED_BY_LIBRDKAFKA,
    POLL_TIMEOUT,
    close_consumer,
    commit_offsets,
    fetch_ready,
)
from notifyd.channel.job import Job
from notifyd.channel.lag import LagGauge
from notifyd.channel.offsets import OffsetTracker
from notifyd.channel.rebalance import Rebalancer

Offsets = dict[tuple[str, int], int]


class DelayReader:
    """Consumes one channel's delay topics and hands due records to its ``Deliverer``."""

    def __init__(self, *, consumer_config: dict[str, Any], topics: tuple[str, ...], tracker: OffsetTracker,
                 deliverer: Deliverer, producer: Any, room: Callable[[], int],
                 busy: Callable[[set[tuple[str, int]] | None], bool], revoke_timeout: float,
                 metrics: Any, channel: str, log: Any) -> None:
        self.topics = frozenset(topics)
        log = log.bind(consumer="delay")
        self._tracker, self._deliverer, self._room, self._log = tracker, deliverer, room, log
        self._consumer = Consumer({**consumer_config, "error_cb": self._on_error})
        self._io = ThreadPoolExecutor(1, thread_name_prefix="notifyd-delay")
        self._gate = DelayGate(consumer=self._consumer, io=self._io, channel=channel, log=log,
                               dispatch=tracker.dispatch, forward=deliverer.retries.forward, submit=deliverer.submit)
        self._lag = LagGauge(metrics.consumer_lag, channel, from_end=False)
        self._rebalancer = Rebalancer(tracker=tracker, commit=self._commit_now, busy=busy,  # the poll loop's
                                      serve_dlq=producer.poll, revoke_timeout=revoke_timeout, log=log,
                                      assigned=lambda _partitions: self._lag.assigned(), released=self._lag.removed,
                                      topics=topics, forget=self._gate.forget)
        # The hand-overs of retried records finish on the producer's acknowledgements, and
        # this reader's room comes back only then. The poll loop serves them once a turn,
        # which waits up to POLL_TIMEOUT on idle source topics: a burst of retries came
        # back ~1,500 a second, up to 12 s late in bench case 8.
        self._serve_acks = producer.poll
        self._paused = False
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Read until ``stop``; each turn takes what fits in the poll loop's read-ahead buffer."""
        self._loop = self._rebalancer.loop = asyncio.get_running_loop()
        self._consumer.subscribe(sorted(self.topics), on_assign=self._rebalancer.on_assign,
                                 on_revoke=self._rebalancer.on_revoke, on_lost=self._rebalancer.on_lost)
        while not self._stopping:
            self._serve_acks()
            room = self._room()
            await self._set_paused(room <= 0)
            self._accept(await self._call(fetch_ready, self._consumer, max(1, min(BATCH_SIZE, room)), POLL_TIMEOUT))
            if self._lag.due():
                await self._lag.update(self._consumer, self._tracker, list(self._rebalancer.owned), self._call)

    def start(self) -> None:
        """Read on the running loop, in a task of its own, until ``finish``."""
        self._task = asyncio.get_running_loop().create_task(self.run())

    def raise_if_crashed(self) -> None:
        """Raise what ended the reader before its time: then the channel process crashes (and restarts)."""
        if self._task is not None and self._task.done():
            self._task.result()

    async def finish(self, *, until: float) -> None:
        """Stop reading, let the current turn end, then commit and leave the group (``close``)."""
        self.stop()
        try:
            if self._task is not None:
                await self._task
        finally:
            await self.close(until=until)

    def stop(self) -> None:
        """Take no more records: ``run`` returns after its current turn."""
        self._stopping = True

    async def close(self, *, until: float) -> None:
        """Commit what is finished and leave the group (after ``run`` returned and the poll loop drained).

        A first join still under way is waited for until ``until`` (monotonic), as the
        poll loop's drain waits for its own (``Rebalancer.joining``). What it fetches
        meanwhile is dropped: its offsets are never stored, so it is read again.
        """
        while self._rebalancer.joining and time.monotonic() < until:
            await self._call(self._consumer.consume, 1, POLL_TIMEOUT)
        await self._commit_now_on_io(self._tracker.committable(self._rebalancer.owned))
        self._rebalancer.revoke_timeout = 0.0  # leaving the group revokes: nothing is left worth waiting for
        await close_consumer(self._consumer, after=self._io, log=self._log)
        self._io.shutdown(wait=False)

    def store(self, offsets: Offsets) -> None:
        """Store finished offsets of delay partitions on the I/O thread; the background commit takes them.

        Not on the loop's thread: a call on a consumer waits while another thread is inside
        one (``consume``, up to ``POLL_TIMEOUT`` on mostly paused tiers), which held the
        event loop, and every delivery with it, for most of each poll (bench case 8).
        """
        self._loop.run_in_executor(self._io, self._store_now, offsets)

    def _store_now(self, offsets: Offsets) -> None:
        try:
            self._consumer.store_offsets(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()])
        except KafkaException as exc:  # a partition revoked meanwhile; its new owner reads the record again
            self._log.info("delay offsets not stored", error=str(exc))

    def _accept(self, messages: list[Message]) -> None:
        jobs: list[Job] = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    self._log.warning("delay consumer error", error=str(error))
                continue
            self._gate.accept(message, (message.topic(), message.partition()), jobs)
        if jobs:
            self._deliverer.submit(jobs)

    async def _set_paused(self, pause: bool) -> None:
        """With the read-ahead buffer full, pause every partition; ``consume`` still serves the group."""
        if pause == self._paused and not (pause and self._rebalancer.assignment_changed):
            return
        self._paused, self._rebalancer.assignment_changed = pause, False
        await self._call(self._pause if pause else self._resume_unheld)

    def _pause(self) -> None:
        """On the I/O thread, like every call on this consumer."""
        assignment = self._consumer.assignment()
        if assignment:
            self._consumer.pause(assignment)

    def _resume_unheld(self) -> None:
        """Resume all but the partitions ``DelayGate`` holds until their head is due."""
        assignment = self._gate.unheld(self._consumer.assignment())
        if assignment:
            self._consumer.resume(assignment)

    def _commit_now(self, offsets: Offsets) -> None:
        commit_offsets(self._consumer, offsets, self._log)

    async def _commit_now_on_io(self, offsets: Offsets) -> None:
        if offsets:
            await self._call(self._commit_now, offsets)

    def _on_error(self, error: KafkaError) -> None:
        # An outage is reported by the source consumer; this one would only repeat it.
        if error.code() not in LOGGED_BY_LIBRDKAFKA and error.code() != KafkaError._ALL_BROKERS_DOWN:
            self._log.warning("delay consumer client error", error=str(error))

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self._loop.run_in_executor(self._io, fn, *args)
