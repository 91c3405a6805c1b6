"""Giving partitions up safely: finish their work, commit its watermark, then let go.

librdkafka runs these callbacks inside ``consume()`` or ``close()``. On the consumer's
I/O thread, while the channel's event loop keeps delivering, a revocation waits (up to a
timeout) for the loop to finish the revoked partitions' work before committing. The loop
itself calls ``consume()`` only when nothing is running (``PollLoop._fetch_batch``), so a
callback on the loop's own thread has nothing to wait for, and must not wait for itself.

The callbacks never call ``assign``/``unassign`` themselves, so librdkafka applies the
change either way: the whole assignment under an eager strategy, only the partitions
that move under ``cooperative-sticky`` (the default); both see just those partitions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from notifyd.channel.offsets import OffsetTracker

Offsets = dict[tuple[str, int], int]
Partitions = list[tuple[str, int]]


def _ignore(_partitions: Partitions) -> None:
    pass


class Rebalancer:
    """The ``on_assign`` / ``on_revoke`` / ``on_lost`` callbacks of one channel's consumer."""

    def __init__(self, *, tracker: OffsetTracker, commit: Callable[[Offsets], None],
                 busy: Callable[[set[tuple[str, int]]], bool], serve_dlq: Callable[[], None],
                 revoke_timeout: float, log: Any, assigned: Callable[[Partitions], None] = _ignore,
                 released: Callable[[Partitions], None] = _ignore, topics: Iterable[str] = (),
                 listener: Any = None,
                 forget: Callable[[list[tuple[str, int]]], None] = lambda _partitions: None) -> None:
        self._tracker, self._commit, self._serve_dlq, self._log = tracker, commit, serve_dlq, log
        self._busy, self._assigned, self._released = busy, assigned, released
        self.owned: set[tuple[str, int]] = set()  # every partition assigned and not yet given up
        self.missing_topics: set[str] = set()
        self._topics, self._ever_assigned = frozenset(topics), False
        self._listener = listener  # told of every change: a flow.share.ShareKeeper, or None
        self._forget = forget  # the poll loop's held delay partitions
        self.revoke_timeout = revoke_timeout
        self.assignment_changed = False
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def joining(self) -> bool:
        """Whether the member's first assignment is still to come (some subscribed topic exists).

        A consumer must not be closed then: the assignment would arrive inside ``close()``,
        where confluent-kafka's rebalance callback calls librdkafka's assign with the GIL
        held, and that call has waited for good (librdkafka #4527): every thread of the
        process stopped with it, so nothing but a SIGKILL ended it.
        """
        return not self._ever_assigned and not self.missing_topics >= self._topics

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if not partitions and self._ever_assigned:  # a cooperative rebalance that gave this member nothing new
            return
        self.assignment_changed = True  # the poll loop re-applies a pause to the new partitions
        self.owned.update((tp.topic, tp.partition) for tp in partitions)
        self._ever_assigned = True
        self._log.info("partitions assigned", partitions=_names(partitions), owned=len(self.owned))
        # Called with an empty list too, for a member the group left nothing to: it has settled.
        self._assigned([(tp.topic, tp.partition) for tp in partitions])
        if self._listener is not None:
            self._listener.assigned(consumer, partitions)

    def topic_missing(self, topic: str) -> None:
        """A subscribed topic does not exist: with none of them existing, the member has settled with nothing.

        librdkafka then never calls ``on_assign``; readiness would wait forever for a
        topic that may only be created by the first publish.
        """
        if topic in self.missing_topics:
            return
        self.missing_topics.add(topic)
        if self.missing_topics >= self._topics and not self._ever_assigned:
            self._log.warning("no subscribed topic exists; nothing to consume until one is created",
                              topics=sorted(self.missing_topics))
            self._assigned([])

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if not partitions:  # a cooperative rebalance that took nothing from this member
            return
        offsets = self._release_from_thread(partitions, self.revoke_timeout)
        if offsets:
            self._commit(offsets)
        self._resume(consumer, partitions)
        self._log.info("partitions revoked", partitions=_names(partitions), committed=len(offsets))
        if self._listener is not None:
            self._listener.revoked(consumer, partitions)

    def on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._release_from_thread(partitions, 0.0)  # another member owns them already: no commit
        self._resume(consumer, partitions)
        self._log.warning("partitions lost; their unfinished work will be redelivered", partitions=_names(partitions))
        if self._listener is not None:
            self._listener.revoked(consumer, partitions)

    def _release_from_thread(self, partitions: list[TopicPartition], timeout: float) -> Offsets:
        names = [(tp.topic, tp.partition) for tp in partitions]
        self.owned.difference_update(names)
        self._released(names)
        if _running_loop() is self.loop:
            return self._release_now(names)
        return asyncio.run_coroutine_threadsafe(self._release(names, timeout), self.loop).result()

    async def _release(self, partitions: list[tuple[str, int]], timeout: float) -> Offsets:
        deadline = time.monotonic() + timeout
        # Running deliveries and DLQ writes finish; work waiting for a retry is left to the new owner.
        while self._busy(set(partitions)) and time.monotonic() < deadline:
            self._serve_dlq()  # DLQ acknowledgements finish offsets too
            await asyncio.sleep(0.02)
        return self._release_now(partitions)

    def _release_now(self, partitions: list[tuple[str, int]]) -> Offsets:
        offsets = self._tracker.committable(partitions)
        self._tracker.forget(partitions)
        self._forget(partitions)
        return offsets

    def _resume(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Resume partitions on their way out, so none starts a later assignment paused.

        Here, on the callback's own thread: a resume from another thread while librdkafka
        waited in this callback deadlocked (seen on the test broker). A delay partition
        may be paused by the poll loop's DelayGate, or have its resume queued behind this.
        """
        try:
            consumer.resume([TopicPartition(tp.topic, tp.partition) for tp in partitions])
        except Exception as exc:  # never worth failing a revocation over (nor a test's consumer-less call)
            self._log.info("revoked partitions not resumed", error=f"{type(exc).__name__}: {exc}")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # the consumer's I/O thread runs no loop
        return None


def _names(partitions: list[TopicPartition]) -> list[str]:
    return [f"{tp.topic}[{tp.partition}]" for tp in partitions]
