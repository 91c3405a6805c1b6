"""The handler a channel process delivers through when its ledger is on: claim, send, mark.

The guard has the wrapped handler's shape (``async def send`` or a plain one, the same
``blocking``), so delivery runs it exactly as it would run the handler. A duplicate ends
as a skip (reason ``duplicate``, counted); a claim another live process holds, or a
ledger that cannot be read, as a retryable error: never a send without the check.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

from notifyd.api import Handler, Notification, PermanentError, RetryableError, SkipNotification
from notifyd.ledger.decision import DUPLICATE, HELD, SEND_IT, Verdict
from notifyd.ledger.ledger import Ledger
from notifyd.records.outcome import error_text

DUPLICATE_REASON = "duplicate"


class DuplicateSuppressed(SkipNotification):
    """Sent already within the dedupe window: not sent again."""

    def __init__(self, notification_id: str) -> None:
        super().__init__(DUPLICATE_REASON, f"notification {notification_id!r} was sent already")


class ClaimHeld(RetryableError):
    """Another process is sending this notification now; tried again after its lease."""


class _Guard:
    """What both guards share: the check before a send and the record after it."""

    def __init__(self, handler: Handler, ledger: Ledger, *, retries: int, on_duplicate: Callable[[], None],
                 redact: Callable[[str], str] = str) -> None:
        self.handler, self.ledger = handler, ledger
        self.blocking = getattr(handler, "blocking", True)
        self._retries, self._on_duplicate, self._redact = retries, on_duplicate, redact

    def close(self) -> Any:
        """Close the wrapped handler (the ledger is closed by its owner)."""
        return self.handler.close()

    def _claim(self, notification: Notification) -> Verdict:
        try:
            return self.ledger.claim(notification.id, attempt=notification.attempt)
        except Exception as exc:  # never send without the check: retried like a failed send
            raise RetryableError(f"the ledger cannot be read: {exc}") from exc

    def _act_on(self, verdict: Verdict, notification: Notification) -> None:
        """Raise what delivery expects of a verdict other than ``SEND_IT``."""
        if verdict.action == DUPLICATE:
            self._on_duplicate()
            self.ledger.note(notification.id, "duplicate_suppressed", attempt=notification.attempt)
            raise DuplicateSuppressed(notification.id)
        if verdict.action == HELD:
            self.ledger.note(notification.id, "claim_held", attempt=notification.attempt,
                             detail=f"retry in {verdict.retry_after:.1f} s")
            raise ClaimHeld("another process holds the claim", retry_after=verdict.retry_after)

    def _sent(self, notification: Notification, result: Any) -> None:
        provider_id = result if result.__class__ is str else None
        self.ledger.mark_sent(notification.id, provider_id, notification.attempt, time.time())

    def _failed(self, notification: Notification, error: BaseException) -> None:
        """Note the failure; give the claim up once no attempt follows, keep it (renewed next time) while one does."""
        attempt = notification.attempt
        if isinstance(error, SkipNotification):
            self.ledger.note(notification.id, "skipped", attempt=attempt, detail=error.reason)
        else:
            detail = self._redact(error_text(error))
            self.ledger.note(notification.id, "attempt_failed", attempt=attempt, detail=detail)
        if isinstance(error, (PermanentError, SkipNotification)) or attempt > self._retries:
            if not isinstance(error, SkipNotification):
                self.ledger.note(notification.id, "dead_lettered", attempt=attempt)
            self.ledger.release(notification.id, attempts=attempt)
        else:
            self.ledger.attempt_failed(notification.id, attempts=attempt)


class SyncGuard(_Guard):
    """Guards a plain ``send`` (run on the pool, or inline when it does not block)."""

    def send(self, notification: Notification) -> Any:
        """Claim, send, mark; or raise what delivery expects. Returns what the handler returned."""
        verdict = self._claim(notification)
        if verdict is not SEND_IT:
            self._act_on(verdict, notification)
        try:
            result = self.handler.send(notification)
        except BaseException as exc:
            self._failed(notification, exc)
            raise
        self._sent(notification, result)
        return result


class AsyncGuard(_Guard):
    """Guards an ``async def send``; a claim that may wait on the network runs in a thread."""

    async def send(self, notification: Notification) -> Any:
        """Claim, send, mark; or raise what delivery expects. Returns what the handler returned."""
        if self.ledger.blocking:
            verdict = await asyncio.to_thread(self._claim, notification)
        else:
            verdict = self._claim(notification)
        if verdict is not SEND_IT:
            self._act_on(verdict, notification)
        try:
            result = await self.handler.send(notification)
        except BaseException as exc:
            self._failed(notification, exc)
            raise
        self._sent(notification, result)
        return result


def guard(handler: Handler, ledger: Ledger, *, retries: int, on_duplicate: Callable[[], None],
          redact: Callable[[str], str] = str) -> _Guard:
    """``handler`` behind ``ledger``, in the shape delivery expects of it; ``redact`` hides secrets in noted errors."""
    kind = AsyncGuard if inspect.iscoroutinefunction(handler.send) else SyncGuard
    return kind(handler, ledger, retries=retries, on_duplicate=on_duplicate, redact=redact)
