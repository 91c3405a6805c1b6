"""Daemon threads that run sync handler calls for an asyncio event loop.

Not ``concurrent.futures.ThreadPoolExecutor``: its threads are joined at interpreter
exit, so one handler call that hangs forever would keep a stopped channel process
alive. These threads are daemons, and results go back to the loop in batches (one
wake-up for many results) to keep the per-message cost low for fast handlers.

Threads start when calls need them, up to ``size``: a coroutine handler at a concurrency
of 1,000 uses the pool only to prepare notifications, if ever, and 1,000 idle threads
cost ~16 MiB of a channel process's memory.

A call whose future is cancelled (the delivery timed out) while it runs is abandoned:
a new thread may take its place, or a few hung calls would occupy every thread and time
out every later delivery. The stuck thread exits if its call ever returns; a handler
that keeps hanging grows the process, which ``memory_limit_mb`` recycles.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

_STOP = object()
_QUEUED, _RUNNING, _CANCELLED, _ABANDONED, _DONE = "queued", "running", "cancelled", "abandoned", "done"


class _Call:
    """One ``run`` request and where it is; ``state`` changes under the pool's lock."""

    __slots__ = ("args", "fn", "future", "state")

    def __init__(self, future: asyncio.Future[Any], fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.future, self.fn, self.args, self.state = future, fn, args, _QUEUED


class BlockingPool:
    """``size`` daemon threads; ``run(fn, *args)`` returns an awaitable future on ``loop``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, size: int, name: str = "notifyd-send") -> None:
        self._loop = loop
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._results: deque[tuple[asyncio.Future[Any], bool, Any]] = deque()
        self._lock = threading.Lock()
        self._wake_pending = False
        self._name, self._size = name, size
        self._started = self._live = 0  # threads started, and not abandoned since: written on the loop only
        # One entry per thread waiting for a call: list appends and pops need no lock. A lock
        # taken by the loop and the threads alike here cost a no-op handler ~20% of the loop's
        # time, waiting for a thread that held it while it waited for the GIL.
        self._idle: list[None] = []

    def run(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Call ``fn(*args)`` on a pool thread; must be called from the loop's thread."""
        future = self._loop.create_future()
        call = _Call(future, fn, args)
        future.add_done_callback(lambda _future: self._settled(call))
        self._jobs.put(call)
        self._grow()
        return future

    def stop(self) -> None:
        """Ask idle threads to end; a thread stuck in a call is left behind (it is a daemon)."""
        for _ in range(self._live):
            self._jobs.put(_STOP)

    def _grow(self) -> None:
        """Start a thread if a call waits with no idle thread to take it and the pool is not full; on the loop."""
        if self._jobs.qsize() > len(self._idle) and self._live < self._size:
            self._live += 1
            self._started += 1
            threading.Thread(target=self._work, name=f"{self._name}-{self._started}", daemon=True).start()

    def _settled(self, call: _Call) -> None:
        if not call.future.cancelled():
            return
        with self._lock:
            if call.state == _QUEUED:
                call.state = _CANCELLED  # never started: no thread will run it
                return
            if call.state != _RUNNING:
                return
            call.state = _ABANDONED
        self._live -= 1  # its place is free for a new thread
        self._grow()

    def _work(self) -> None:
        while (call := self._take()) is not _STOP:
            with self._lock:
                if call.state == _CANCELLED:
                    continue
                call.state = _RUNNING
            try:
                outcome = (call.future, True, call.fn(*call.args))
            except BaseException as exc:  # handed to the awaiting coroutine, which classifies it
                outcome = (call.future, False, exc)
            with self._lock:
                if call.state == _ABANDONED:
                    return  # a new thread took this one's place while it was stuck
                call.state = _DONE
                self._results.append(outcome)
                wake, self._wake_pending = not self._wake_pending, True
            if wake:
                try:
                    self._loop.call_soon_threadsafe(self._deliver)
                except RuntimeError:  # the loop is closed: the process is stopping
                    return

    def _take(self) -> Any:
        self._idle.append(None)
        call = self._jobs.get()
        self._idle.pop()
        return call

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
