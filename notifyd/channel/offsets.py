"""Which offset of each partition may be committed: the contiguous finished watermark.

Messages of one partition are dispatched in offset order but may finish in any order
(different keys run in parallel). The committable offset is the lowest dispatched
offset not yet finished, or one past the last dispatched when all are finished, so a
commit never skips unfinished work. Offsets are taken as dispatched, not as ``+1``
arithmetic, because compaction and transaction markers leave gaps.
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Hashable, Iterable

Partition = Hashable


class PartitionOffsets:
    """The dispatched-but-unfinished offsets of one partition and its watermark."""

    def __init__(self) -> None:
        self._pending: deque[int] = deque()
        self._finished_early: set[int] = set()
        self._outstanding: set[int] = set()
        self.committable: int | None = None

    def dispatch(self, offset: int) -> None:
        """Record that ``offset`` was handed out; offsets must arrive in increasing order."""
        if self._pending and offset <= self._pending[-1] or self.committable is not None and offset < self.committable:
            return  # a redelivery after a seek: already tracked or already past
        self._pending.append(offset)
        self._outstanding.add(offset)

    def dispatch_run(self, offsets: list[int]) -> None:
        """``dispatch`` each of ``offsets``: in one go when they increase and are all new (one consumed batch's)."""
        pending, first = self._pending, offsets[0]
        is_new = (not pending or first > pending[-1]) and (self.committable is None or first >= self.committable)
        if is_new and all(map(operator.lt, offsets, offsets[1:])):
            pending.extend(offsets)
            self._outstanding.update(offsets)
            return
        for offset in offsets:
            self.dispatch(offset)

    def finish(self, offset: int) -> bool:
        """Mark ``offset`` finished; True if the committable watermark moved."""
        return self.finish_run((offset,))

    def finish_run(self, offsets: Iterable[int]) -> bool:
        """Mark each of ``offsets`` finished (any order); True if the committable watermark moved.

        One call for a batch delivered at once: per offset, calls cost more than the bookkeeping.
        """
        outstanding, pending, early = self._outstanding, self._pending, self._finished_early
        last = None
        for offset in offsets:
            if offset not in outstanding:
                continue  # finished already, or never dispatched
            outstanding.discard(offset)
            if offset == pending[0]:
                last = pending.popleft()
            else:
                early.add(offset)
        if last is None:
            return False
        while pending and pending[0] in early:
            last = pending.popleft()
            early.discard(last)
        self.committable = pending[0] if pending else last + 1
        return True

    @property
    def unfinished(self) -> int:
        """How many dispatched offsets are not finished."""
        return len(self._outstanding)


class OffsetTracker:
    """``PartitionOffsets`` of every assigned partition, plus a generation per assignment.

    The generation lets work that outlived a revocation recognise that its partition was
    given away (and perhaps assigned again) so it neither runs nor moves the watermark.
    """

    def __init__(self) -> None:
        self._partitions: dict[Partition, PartitionOffsets] = {}
        self._generations: dict[Partition, int] = {}
        self._moved: set[Partition] = set()

    def generation(self, partition: Partition) -> int:
        """The current generation of ``partition`` (changes each time it is forgotten)."""
        return self._generations.get(partition, 0)

    def dispatch(self, partition: Partition, offset: int) -> int:
        """Track ``offset``; returns the generation the work belongs to."""
        self.dispatch_run(partition, [offset])
        return self.generation(partition)

    def dispatch_run(self, partition: Partition, offsets: list[int]) -> None:
        """Track ``offsets`` of ``partition``, in the order consumed."""
        tracked = self._partitions.get(partition)
        if tracked is None:
            tracked = self._partitions[partition] = PartitionOffsets()
        tracked.dispatch_run(offsets)

    def finish(self, partition: Partition, offset: int, generation: int) -> None:
        """Mark ``offset`` finished if ``generation`` still owns the partition."""
        self.finish_run(partition, (offset,), generation)

    def finish_run(self, partition: Partition, offsets: Iterable[int], generation: int) -> None:
        """Mark each of ``offsets`` finished if ``generation`` still owns the partition."""
        tracked = self._partitions.get(partition)
        if tracked is None or generation != self._generations.get(partition, 0):
            return
        if tracked.finish_run(offsets):
            self._moved.add(partition)

    def take_moved(self) -> dict[Partition, int]:
        """Watermarks that moved since the last call (the offsets to store)."""
        moved = {p: self._partitions[p].committable for p in self._moved if p in self._partitions}
        self._moved.clear()
        return {p: offset for p, offset in moved.items() if offset is not None}

    def committable(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        """The watermark of each of ``partitions`` that has one."""
        found = {p: self._partitions[p].committable for p in partitions if p in self._partitions}
        return {p: offset for p, offset in found.items() if offset is not None}

    def unfinished(self, partitions: Iterable[Partition] | None = None) -> int:
        """Unfinished offsets over ``partitions`` (all when None)."""
        chosen = self._partitions if partitions is None else partitions
        return sum(self._partitions[p].unfinished for p in chosen if p in self._partitions)

    def forget(self, partitions: Iterable[Partition]) -> None:
        """Drop the state of revoked or lost partitions and start a new generation."""
        for partition in partitions:
            self._partitions.pop(partition, None)
            self._moved.discard(partition)
            self._generations[partition] = self.generation(partition) + 1
