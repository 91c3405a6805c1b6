"""``notifyd_consumer_lag`` of one channel process: one series per owned partition, none once revoked.

A partition's lag is its high watermark minus where the channel resumes: the committable
offset of work done here, else the consumer's fetch position, else (a partition not read
from since its assignment) the group's committed offset, asked once per assignment. With
no committed offset either, ``auto.offset.reset`` decides: everything is waiting unless
the consumer starts at the end. A revoked partition's series is set to ``REMOVED``, which
the scrape leaves out; its new owner reports it instead. Each update removes again any
series of a partition no longer owned, so an update that raced a revocation (the
callback runs on the consumer's I/O thread) cannot leave a stale series behind.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from notifyd.channel.offsets import OffsetTracker
from notifyd.metrics import REMOVED

INTERVAL = 5.0
RETRY = 0.5  # after an assignment, until every partition has a position and a watermark
COMMITTED_TIMEOUT = 2.0  # on the consumer's I/O thread, which fetching waits for
RESETS_TO_END = frozenset({"latest", "largest", "end"})

Partition = tuple[str, int]
OnIoThread = Callable[..., Awaitable[Any]]


def starts_at_end(consumer_config: dict[str, Any]) -> bool:
    """Whether a partition with no committed offset is read from its end (``auto.offset.reset``)."""
    return str(consumer_config.get("auto.offset.reset", "")).lower() in RESETS_TO_END


class LagGauge:
    """The lag of the owned partitions, ``due`` every ``INTERVAL`` seconds and soon after an assignment."""

    def __init__(self, gauge: Any, channel: str, *, from_end: bool) -> None:
        self._gauge, self._channel, self._from_end = gauge, channel, from_end
        self._committed: dict[Partition, int] = {}
        self._reported: set[Partition] = set()
        self._next = 0.0

    def assigned(self) -> None:
        self._next = 0.0

    def due(self) -> bool:
        return time.monotonic() >= self._next

    def removed(self, partitions: Iterable[Partition]) -> None:
        """Drop the series of partitions this process no longer owns."""
        for topic, partition in partitions:
            self._committed.pop((topic, partition), None)
            self._reported.discard((topic, partition))
            self._gauge.labels(self._channel, topic, str(partition)).set(REMOVED)

    async def update(self, consumer: Consumer, tracker: OffsetTracker, owned: list[Partition],
                     io: OnIoThread) -> None:
        """Set every owned partition's lag; ``io`` runs a blocking consumer call on the I/O thread."""
        now = time.monotonic()
        self._next = now + INTERVAL
        self.removed(self._reported - set(owned))
        resume = _positions(consumer, tracker, owned)
        unknown = [p for p in owned if p not in resume and p not in self._committed]
        retry = RETRY
        if unknown:
            found = await io(_committed, consumer, unknown)
            self._committed.update(found)
            retry = RETRY if found else INTERVAL  # no answer (broker down?): the I/O thread is needed elsewhere
        if not self._update(consumer, {**self._committed, **resume}, owned):
            self._next = now + retry

    def _update(self, consumer: Consumer, resume: dict[Partition, int], owned: list[Partition]) -> bool:
        known = 0
        for topic, partition in owned:
            try:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
            except KafkaException:  # not known yet; a metric is never worth a crash
                continue
            offset = resume.get((topic, partition))
            if high < 0 or offset is None:
                continue
            start = (high if self._from_end else max(low, 0)) if offset < 0 else offset
            self._gauge.labels(self._channel, topic, str(partition)).set(max(0, high - start))
            self._reported.add((topic, partition))
            known += 1
        return known == len(owned)


def _positions(consumer: Consumer, tracker: OffsetTracker, owned: list[Partition]) -> dict[Partition, int]:
    offsets = tracker.committable(owned)
    unread = [TopicPartition(t, p) for t, p in owned if (t, p) not in offsets]
    if unread:
        try:
            positions = consumer.position(unread)  # local: no broker round trip
        except KafkaException:
            positions = []
        offsets.update({(tp.topic, tp.partition): tp.offset for tp in positions if tp.offset >= 0})
    return offsets


def _committed(consumer: Consumer, partitions: list[Partition]) -> dict[Partition, int]:
    """The group's committed offsets (negative: none); empty if the broker does not answer in time."""
    try:
        found = consumer.committed([TopicPartition(t, p) for t, p in partitions], timeout=COMMITTED_TIMEOUT)
    except KafkaException:
        return {}
    return {(tp.topic, tp.partition): tp.offset for tp in found if tp.error is None}
