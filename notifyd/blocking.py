"""Daemon threads that run sync handler calls for an asyncio event loop.

Not ``concurrent.futures.ThreadPoolExecutor``: its threads are joined at interpreter
exit, so one handler call that hangs forever would keep a stopped channel process
alive. These threads are daemons, and results go back to the loop in batches (one
wake-up for many results) to keep the per-message cost low for fast handlers.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

_STOP = object()


class BlockingPool:
    """``size`` daemon threads; ``run(fn, *args)`` returns an awaitable future on ``loop``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, size: int, name: str = "notifyd-send") -> None:
        self._loop = loop
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._results: deque[tuple[asyncio.Future[Any], bool, Any]] = deque()
        self._lock = threading.Lock()
        self._wake_pending = False
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(size)]
        for thread in self._threads:
            thread.start()

    def run(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Call ``fn(*args)`` on a pool thread; must be called from the loop's thread."""
        future = self._loop.create_future()
        self._jobs.put((future, fn, args))
        return future

    def stop(self) -> None:
        """Ask idle threads to end; a thread stuck in a call is left behind (it is a daemon)."""
        for _ in self._threads:
            self._jobs.put(_STOP)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not _STOP:
            future, fn, args = job
            try:
                outcome = (future, True, fn(*args))
            except BaseException as exc:  # handed to the awaiting coroutine, which classifies it
                outcome = (future, False, exc)
            with self._lock:
                self._results.append(outcome)
                wake, self._wake_pending = not self._wake_pending, True
            if wake:
                try:
                    self._loop.call_soon_threadsafe(self._deliver)
                except RuntimeError:  # the loop is closed: the process is stopping
                    return

    def _deliver(self) -> None:
        with self._lock:
            results, self._results = self._results, deque()
            self._wake_pending = False
        for future, ok, value in results:
            if future.done():  # cancelled by a timeout
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
