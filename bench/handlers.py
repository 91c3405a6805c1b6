"""Handlers the benchmark's channels deliver through; imported by the channel process.

The channel process imports them as ``bench.handlers:Name``, so the daemon runs from
the repository root (the benchmark sets ``PYTHONPATH``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
import zlib
from typing import Any, ClassVar

from notifyd.api import Handler, Notification, RetryableError


class Noop(Handler):
    """Delivers nothing: what is left is the daemon's own cost per notification."""

    blocking: ClassVar[bool] = False

    def send(self, notification: Notification) -> None:
        return None


class TimedNoop(Handler):
    """A no-op that times itself from its first call to its ``count``-th, as the bare loop is timed.

    At the ``count``-th call it writes ``(count - 1) / seconds`` and the process's CPU
    seconds a notification over the same span (all its threads: librdkafka's, the pool's)
    to ``path``, via a rename so a reader never sees half of it. The counter is a C
    iterator, so calls on pool threads count each call once.
    """

    blocking: ClassVar[bool] = False

    def __init__(self, *, path: str, count: int) -> None:
        super().__init__(path=path, count=count)
        self.path, self.count = path, count
        self._calls = itertools.count(1)
        self._first = self._first_cpu = 0.0

    def send(self, notification: Notification) -> None:
        self._tick()

    def _tick(self) -> None:
        call = next(self._calls)
        if call == 1:
            self._first, self._first_cpu = time.perf_counter(), time.process_time()
        elif call == self.count:
            seconds, cpu = time.perf_counter() - self._first, time.process_time() - self._first_cpu
            with open(self.path + ".tmp", "w", encoding="ascii") as out:
                out.write(f"{(self.count - 1) / seconds} {cpu / (self.count - 1)}\n")
            os.replace(self.path + ".tmp", self.path)


class TimedAsyncNoop(TimedNoop):
    """``TimedNoop`` as a coroutine: the path of every built-in network handler."""

    async def send(self, notification: Notification) -> None:  # type: ignore[override]
        self._tick()


class TimedBlockingNoop(TimedNoop):
    """``TimedNoop`` as a plain sync handler: every call goes through the thread pool."""

    blocking: ClassVar[bool] = True


class GatedNoop(Noop):
    """A ``Noop`` whose first call waits until the file ``gate`` exists.

    Case 5 starts its daemons, lets the group settle, fills the topic and only then opens
    the gate: the figure is consumption from a full topic, not the producer's pace. The
    wait blocks the event loop on purpose (nothing else is due: the group is settled and
    librdkafka keeps fetching and heartbeating on its own threads).
    """

    def __init__(self, *, gate: str) -> None:
        super().__init__(gate=gate)
        self.gate = gate
        self._open = False

    def send(self, notification: Notification) -> None:
        while not self._open:
            self._open = os.path.exists(self.gate)
            if not self._open:
                time.sleep(0.005)


class Wait(Handler):
    """Waits ``seconds`` on the event loop: I/O-bound work with no client library in the way."""

    def __init__(self, *, seconds: float) -> None:
        super().__init__(seconds=seconds)
        self.seconds = seconds

    async def send(self, notification: Notification) -> None:
        await asyncio.sleep(self.seconds)


class Stamp(Handler):
    """Records how long after ``data.sent_at`` (Unix time) each notification reached ``send``.

    Latencies are kept in memory and written to ``path`` (one float a line) at ``close``,
    so the file write costs nothing while the figure is being measured. ``send`` is a
    coroutine, like that of every built-in network handler (webhook, SMTP, push, chat),
    so the figure is the path they take; a plain blocking ``send`` would add the hop to
    the thread pool and back (two thread wake-ups, ~60 µs on the benchmark's VM).
    """

    def __init__(self, *, path: str) -> None:
        super().__init__(path=path)
        self.path = path
        self._latencies: list[float] = []

    async def send(self, notification: Notification) -> None:
        self._latencies.append(time.time() - float(notification.data["sent_at"]))

    def close(self) -> Any:
        with open(self.path, "a", encoding="utf-8") as out:
            out.write("".join(f"{latency:.6f}\n" for latency in self._latencies))


def failing(notification_id: str, percent: int) -> bool:
    """Whether ``Flaky`` fails this id on every attempt: ``percent`` of ids, by a hash any process agrees on."""
    return zlib.crc32(notification_id.encode()) % 100 < percent


class Flaky(Handler):
    """Fails ``percent`` of notification ids with a ``RetryableError`` on every attempt; delivers the rest.

    A delivery first waits ``seconds`` (a provider's answer); a failure comes at once (a
    refused connection). Times the healthy ones like ``TimedNoop``, from its first call (of either kind) to the
    ``healthy``-th healthy one, and records each healthy one's latency after ``data.sent_at``
    where it has one. Counts the failing calls and how many of them were retries. Everything
    is kept in memory and written to ``path`` as JSON at ``close``.
    """

    def __init__(self, *, path: str, healthy: int, percent: int, seconds: float = 0.0) -> None:
        super().__init__(path=path, healthy=healthy, percent=percent, seconds=seconds)
        self.path, self.healthy, self.percent, self.seconds = path, healthy, percent, seconds
        self._first = self._rate = 0.0
        self._delivered = self._failed = self._retried = 0
        self._latencies: list[float] = []

    async def send(self, notification: Notification) -> None:
        if not self._first:
            self._first = time.perf_counter()
        if failing(notification.id, self.percent):
            self._failed += 1
            self._retried += notification.attempt > 1
            raise RetryableError("the benchmark fails this notification on every attempt")
        if self.seconds:
            await asyncio.sleep(self.seconds)
        self._delivered += 1
        if "sent_at" in notification.data:
            self._latencies.append(time.time() - float(notification.data["sent_at"]))
        if self._delivered == self.healthy:
            self._rate = (self.healthy - 1) / (time.perf_counter() - self._first)

    def close(self) -> Any:
        summary = {"rate": self._rate, "delivered": self._delivered, "failed_calls": self._failed,
                   "retried_calls": self._retried, "latencies": self._latencies}
        with open(self.path + ".tmp", "w", encoding="utf-8") as out:
            json.dump(summary, out)
        os.replace(self.path + ".tmp", self.path)
