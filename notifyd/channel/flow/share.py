"""A member's share of its channel's rate: the share of the channel's partitions it owns.

Every member of the group computes the same total, and the assignment gives each
partition to one member, so the shares add up to 1 whatever the assignor; they are
recomputed on every rebalance.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import KafkaException

METADATA_TIMEOUT = 2.0  # a rebalance callback waits for it; the metadata is usually cached


def share_of(owned: int, total: int, *, members: int) -> float:
    """The fraction of the rate for ``owned`` of ``total`` partitions; ``1/members`` when either is unknown.

    A member that owns nothing sends nothing whatever its share; keeping one avoids a
    rate of zero that a token borrowed meanwhile would wait on forever.
    """
    if total <= 0 or owned <= 0:
        return 1.0 / max(1, members)
    return min(1.0, owned / total)


def total_partitions(consumer: Any, topics: Iterable[str], *, timeout: float = METADATA_TIMEOUT) -> int:
    """Partitions of ``topics`` by the consumer's metadata (blocks: call it off the event loop); 0 if unknown."""
    total = 0
    for topic in topics:
        try:
            metadata = consumer.list_topics(topic, timeout)
        except KafkaException:
            return 0
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            return 0
        total += len(found.partitions)
    return total


class ShareKeeper:
    """Follows the consumer's assignment through the rebalance callbacks and hands the gate its share.

    Keeps the owned partitions itself (added on assign, dropped on revoke or loss), which
    is right under both the eager protocol (all revoked, then all assigned) and the
    cooperative one (increments): inside a callback ``assignment()`` is not updated yet.
    """

    def __init__(self, *, topics: Iterable[str], members: int, apply: Callable[[float], None],
                 loop: asyncio.AbstractEventLoop) -> None:
        self._topics, self._members, self._apply, self._loop = tuple(topics), members, apply, loop
        self._owned: set[tuple[str, int]] = set()

    def assigned(self, consumer: Any, partitions: Iterable[Any]) -> None:
        """``on_assign``: count the new partitions in and recompute the share."""
        self._owned.update((tp.topic, tp.partition) for tp in partitions)
        self._publish(consumer)

    def revoked(self, consumer: Any, partitions: Iterable[Any]) -> None:
        """``on_revoke`` / ``on_lost``: count the partitions out and recompute the share."""
        self._owned.difference_update((tp.topic, tp.partition) for tp in partitions)
        self._publish(consumer)

    def _publish(self, consumer: Any) -> None:
        owned = sum(1 for topic, _ in self._owned if topic in self._topics)
        # Owning nothing, the share does not matter: no metadata request (it may wait at shutdown).
        total = total_partitions(consumer, self._topics) if owned else 0
        try:
            self._loop.call_soon_threadsafe(self._apply, share_of(owned, total, members=self._members))
        except RuntimeError:  # the loop is closed: the process is stopping
            pass
