"""Handlers for tests of the channel process; each records every attempt as a JSON line.

Tests run the channel process in another thread or process, so attempts go to the file
named by the ``path`` option, one ``{"id", "attempt", "pid", "at", "data"}`` object a line.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from notifyd.api import Handler, Notification, PermanentError, RetryableError

_lock = threading.Lock()


def record(path: str, notification: Notification, **extra: Any) -> None:
    line = json.dumps({"id": notification.id, "attempt": notification.attempt, "pid": os.getpid(),
                       "at": time.time(), "data": dict(notification.data), **extra})
    with _lock, open(path, "a", encoding="utf-8") as file:
        file.write(line + "\n")


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Every complete line written so far (a killed process may leave half a line)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


class Recorder(Handler):
    """Delivers by recording; ``delay`` seconds per send simulate a slow provider.

    Each record carries ``running``: how many sends were in progress when it started.
    """

    def __init__(self, *, path: str, delay: float = 0.0) -> None:
        super().__init__(path=path, delay=delay)
        self.path, self.delay = path, delay
        self._running = 0
        self._count_lock = threading.Lock()

    def send(self, notification: Notification) -> None:
        with self._count_lock:
            self._running += 1
            running = self._running
        try:
            if self.delay:
                time.sleep(self.delay)
            record(self.path, notification, running=running)
        finally:
            with self._count_lock:
                self._running -= 1


class InlineRecorder(Recorder):
    """The same as ``Recorder``, promising not to block: it runs on the event loop."""

    blocking: ClassVar[bool] = False


class AsyncRecorder(Recorder):
    """The same as ``Recorder`` with ``async def send``."""

    async def send(self, notification: Notification) -> None:  # type: ignore[override]
        if self.delay:
            await asyncio.sleep(self.delay)
        record(self.path, notification, via="async", loop=type(asyncio.get_running_loop()).__module__)


class Flaky(Recorder):
    """Fails the first ``failures`` attempts of ids starting with ``prefix``."""

    def __init__(self, *, path: str, failures: int = 2, prefix: str = "flaky") -> None:
        super().__init__(path=path)
        self.failures, self.prefix = failures, prefix

    def send(self, notification: Notification) -> None:
        record(self.path, notification)
        if notification.id.startswith(self.prefix) and notification.attempt <= self.failures:
            raise RetryableError("provider said 503", retry_after=0.05)


class AlwaysFails(Recorder):
    """Every attempt fails with a retryable error (not a notifyd class: any exception retries)."""

    def send(self, notification: Notification) -> None:
        record(self.path, notification)
        raise ConnectionError(f"connection refused for {notification.id}")


class Permanent(Recorder):
    """Every attempt fails permanently."""

    def send(self, notification: Notification) -> None:
        record(self.path, notification)
        raise PermanentError("mailbox does not exist")


class Hangs(Recorder):
    """Never answers for ids starting with ``prefix``; delivers the others."""

    def __init__(self, *, path: str, prefix: str = "hang") -> None:
        super().__init__(path=path)
        self.prefix = prefix
        self._forever = threading.Event()

    def send(self, notification: Notification) -> None:
        record(self.path, notification)
        if notification.id.startswith(self.prefix):
            self._forever.wait(3600)


class AsyncHangs(Recorder):
    """``Hangs`` with an ``async def send``: awaits for ever for ids starting with ``prefix``."""

    def __init__(self, *, path: str, prefix: str = "hang") -> None:
        super().__init__(path=path)
        self.prefix = prefix

    async def send(self, notification: Notification) -> None:
        record(self.path, notification)
        if notification.id.startswith(self.prefix):
            await asyncio.sleep(3600)


class Scripted(Recorder):
    """Behaves by id prefix: ``flaky`` fails twice, ``fail`` always, ``perm`` permanently, ``hang`` hangs."""

    def __init__(self, *, path: str) -> None:
        super().__init__(path=path)
        self._forever = threading.Event()

    def send(self, notification: Notification) -> None:
        record(self.path, notification)
        kind = notification.id.split("-", 1)[0]
        if kind == "flaky" and notification.attempt <= 2:
            raise RetryableError("provider said 429", retry_after=0.05)
        if kind == "fail":
            raise ConnectionError(f"connection refused for {notification.id}")
        if kind == "perm":
            raise PermanentError("mailbox does not exist")
        if kind == "hang":
            self._forever.wait(3600)


class Broken(Handler):
    """Cannot be constructed."""

    def __init__(self, **options: Any) -> None:
        raise RuntimeError("cannot reach the provider's token endpoint")


class Leaky(Recorder):
    """Keeps ``leak_mb`` megabytes per send forever, as a handler with a cache bug would."""

    def __init__(self, *, path: str, leak_mb: float = 1.0, delay: float = 0.0) -> None:
        super().__init__(path=path, delay=delay)
        self.leak_mb = leak_mb
        self._kept: list[bytes] = []

    def send(self, notification: Notification) -> None:
        # Written bytes, not a lazily zeroed buffer: the pages are resident at once.
        self._kept.append(b"x" * int(self.leak_mb * 1024 * 1024))
        super().send(notification)


class Indiscreet(Recorder):
    """Puts its ``token`` option into every error, as careless provider clients do."""

    def __init__(self, *, path: str, token: str) -> None:
        super().__init__(path=path)
        self.token = token

    def send(self, notification: Notification) -> None:
        record(self.path, notification)
        if notification.id.startswith("perm"):
            raise PermanentError(f"401 for Authorization: Bearer {self.token}")
        raise ConnectionError(f"https://user:{self.token}@api.example.com refused the connection")

    def close(self) -> None:
        raise ConnectionResetError(f"logout with token {self.token} failed")


class Outcomes(Recorder):
    """By id prefix: ``fail`` always fails, ``flaky`` fails its first two attempts, others succeed.

    A failure carries the ``retry_after`` option as the provider's Retry-After; every
    attempt is recorded with ``ok``.
    """

    def __init__(self, *, path: str, retry_after: float | None = None, delay: float = 0.0) -> None:
        super().__init__(path=path, delay=delay)
        self.retry_after = retry_after

    def send(self, notification: Notification) -> None:
        time.sleep(self.delay)
        kind = notification.id.split("-", 1)[0]
        failing = kind == "fail" or (kind == "flaky" and notification.attempt <= 2)
        record(self.path, notification, ok=not failing)
        if failing:
            raise RetryableError(f"provider down for {notification.id}", retry_after=self.retry_after)
