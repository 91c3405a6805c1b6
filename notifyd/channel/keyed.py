"""Per-key FIFO scheduling: one message of a key at a time, in arrival order.

The same idea as Confluent's Parallel Consumer in KEY mode: messages with the same key
are delivered one after another in offset order, different keys in parallel, and at
most ``limit`` deliveries run at once. A message that waits for a retry keeps its key
(the next one of that key must not overtake it) but gives its running slot back.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

Item = TypeVar("Item")


class KeyedScheduler(Generic[Item]):
    """Decides which queued items may start; pure bookkeeping, no I/O."""

    def __init__(self, *, limit: int) -> None:
        self.limit = max(1, limit)
        self.running = 0
        self._waiting: dict[Hashable, deque[Item]] = {}
        self._ready: deque[Item] = deque()

    def add(self, key: Hashable, item: Item) -> None:
        """Queue ``item`` behind earlier items of ``key``; ready at once if the key is idle."""
        queue = self._waiting.get(key)
        if queue is None:
            self._waiting[key] = deque()
            self._ready.append(item)
        else:
            queue.append(item)

    def resume(self, item: Item) -> None:
        """``item`` (which still holds its key) may run again, ahead of newer work."""
        self._ready.appendleft(item)

    @property
    def idle(self) -> bool:
        """Nothing running, ready or holding a key: an item started now overtakes nothing."""
        return self.running == 0 and not self._waiting

    @property
    def startable(self) -> bool:
        """Whether ``take`` would return anything now."""
        return bool(self._ready) and self.running < self.limit

    def take(self, most: int | None = None) -> list[Item]:
        """Items to start now, within the running limit; each counts as running.

        With ``most``: up to that many, past the limit, for a caller that runs several
        items one after another in one slot of its own.
        """
        count = min(len(self._ready), self.limit - self.running if most is None else most)
        started = [self._ready.popleft() for _ in range(max(0, count))]
        self.running += len(started)
        return started

    def pause(self) -> None:
        """A running item waits (for a retry) without a slot; it keeps its key."""
        self.running -= 1

    def done(self, key: Hashable, *, was_running: bool = True) -> None:
        """The item of ``key`` is finished: free its slot and make the key's next item ready."""
        if was_running:
            self.running -= 1
        queue = self._waiting.get(key)
        if queue is None:
            return
        if queue:
            self._ready.append(queue.popleft())
        else:
            del self._waiting[key]

    @property
    def queued(self) -> int:
        """Items that are ready or wait behind their key."""
        return len(self._ready) + sum(len(q) for q in self._waiting.values())
