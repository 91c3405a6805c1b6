"""One time limit for many tasks at once, kept with a single loop timer.

``asyncio.timeout`` arms and cancels a loop timer for every attempt: ~6 us here, a few
percent of an HTTP delivery with hundreds in flight. Every attempt of a channel has the
same limit, so deadlines fall in the order the attempts started: a dict (insertion
ordered) holds them, and one timer, set for the oldest, cancels whatever has run out.
"""

from __future__ import annotations

import asyncio


class Deadlines:
    """Cancels each tracked task once it has run ``limit`` seconds; ``stop`` says whether it did."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self._deadlines: dict[asyncio.Task[object], float] = {}  # oldest first
        self._expired: set[asyncio.Task[object]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._deadlines)

    def start(self, task: asyncio.Task[object]) -> None:
        """``task`` must finish within ``limit`` seconds from now."""
        loop = task.get_loop()
        self._deadlines[task] = loop.time() + self.limit
        if self._timer is None:
            self._timer = loop.call_at(self._deadlines[task], self._expire)

    def stop(self, task: asyncio.Task[object]) -> bool:
        """No longer track ``task``; True if it ran out of time (and was cancelled for it).

        The caller of an expired task undoes that cancellation (``task.uncancel()``), as
        ``asyncio.timeout`` does, so that a real cancellation is still told apart.
        """
        self._deadlines.pop(task, None)
        if task in self._expired:
            self._expired.discard(task)
            return True
        return False

    def _expire(self) -> None:
        """Cancel every task past its deadline, then wait for the oldest left."""
        self._timer = None
        while self._deadlines:
            task, deadline = next(iter(self._deadlines.items()))
            loop = task.get_loop()
            if deadline > loop.time():
                self._timer = loop.call_at(deadline, self._expire)
                return
            del self._deadlines[task]
            if not task.done():
                self._expired.add(task)
                task.cancel()
