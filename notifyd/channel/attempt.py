"""One attempt of the channel's handler, wherever it runs: inline, awaited on the loop, or on a pool thread.

A blocking sync handler's attempts go to the pool in chunks: several ready notifications
(of distinct keys: the scheduler runs one of a key at a time) sent one after another by a
single thread call. Each thread hop costs the loop and the GIL tens of microseconds, which
for a quick handler was most of its cost. A chunk is only as long as ``CHUNK_SECONDS`` of
the handler's recent calls, so a slow handler still gets one call a thread, in parallel.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

from notifyd.api import Handler, Notification, RetryableError
from notifyd.channel.blocking import BlockingPool
from notifyd.channel.deadlines import Deadlines
from notifyd.channel.deliverymetrics import DeliveryMetrics
from notifyd.channel.holds import expired_now
from notifyd.channel.job import Job
from notifyd.recipients.preparation import Preparer, needs_preparation

NEEDS_TASK = object()  # the attempt must be awaited (a preparation on the pool first, or a coroutine)
NOT_ATTEMPTED = object()  # a chunk's outcome for a notification its thread never reached
SUSPENDED = object()  # Attempts.eager: the coroutine awaits something; the attempt goes on in a task
CHUNK_SECONDS = 0.001  # handler time one pool call may chain, at the recent mean duration
MAX_CHUNK = 256
IN_ORDER_CHUNK = 64  # from this chunk size on (calls of ~16 us), a batch may go out in order in one chunk
_MEAN_WEIGHT = 0.2  # of the newest chunk in the running mean duration


class Attempts:
    """Runs attempts of one channel's handler, under the channel's timeout where one can apply."""

    def __init__(self, *, handler: Handler, prepare: Preparer, pool: BlockingPool, deadlines: Deadlines,
                 metrics: DeliveryMetrics) -> None:
        self._handler, self._prepare, self._pool, self._m = handler, prepare, pool, metrics
        self.deadlines = deadlines
        self.async_send = inspect.iscoroutinefunction(handler.send)
        # A sync send that promises not to block runs inline: no thread hop, often no task.
        self.inline = not self.async_send and not getattr(handler, "blocking", True)
        self.on_pool = not (self.async_send or self.inline)
        self._mean: float | None = None  # seconds a pool call of one notification took lately

    def next_notification(self, job: Job) -> Notification:
        """The notification of ``job``'s next attempt (counted here)."""
        job.attempts += 1
        notification = job.notification
        if notification.attempt != job.attempts:  # parsed with attempt=1: copied for retries only
            notification = notification._with_attempt(job.attempts)
        return notification

    def inline_attempt(self, job: Job) -> BaseException | None:
        """One attempt of a non-blocking sync handler, on the loop: no timeout can cut it short."""
        notification = self.next_notification(job)
        started = time.perf_counter()
        try:
            self._handler.send(notification)
            outcome = None
        except Exception as exc:  # classified by the caller, like an exception from a pool thread
            outcome = exc
        self._m.attempt(outcome, time.perf_counter() - started)
        return outcome

    async def awaited(self, job: Job) -> BaseException | None:
        """One attempt in the current task, cut short by the channel's timeout; its outcome.

        Not made if the notification expired meanwhile: the flow gate may have held it for long.
        """
        if (expired := expired_now(job)) is not None:
            return expired
        notification = self.next_notification(job)
        return await self._timed(self._send(notification), time.perf_counter())

    def eager(self, job: Job) -> tuple[BaseException | None, None] | tuple[object, Awaitable[BaseException | None]]:
        """Run an ``async def send`` right here up to its first suspension: ``(outcome, None)`` if it finished.

        Otherwise ``(SUSPENDED, rest)``: the current task must await ``rest`` (the attempt
        under the channel's timeout) before anything else, since the coroutine may have
        bound itself to that task (``asyncio.timeout``, aiohttp's timers). A coroutine that
        never suspends (a cache hit, a no-op, a local write) so costs no task and no timer.
        """
        notification = self.next_notification(job)
        started = time.perf_counter()
        coro = self._handler.send(notification)
        try:
            pending = coro.send(None)
        except StopIteration:
            outcome = None
        except Exception as exc:
            outcome = exc
        else:
            return SUSPENDED, self._timed(_resumed(coro, pending), started)
        self._m.attempt(outcome, time.perf_counter() - started)
        return outcome, None

    async def _timed(self, attempt: Awaitable[Any], started: float) -> BaseException | None:
        task = asyncio.current_task()
        self.deadlines.start(task)
        try:
            await attempt
            outcome = None
        except asyncio.CancelledError:
            if not self._ran_out(task):
                raise
            outcome = self._timed_out()
        except Exception as exc:  # classified by the caller: Permanent, Skip, anything else retryable
            self._ran_out(task)
            outcome = exc
        else:
            self._ran_out(task)
        self._m.attempt(outcome, time.perf_counter() - started)
        return outcome

    def chunk_size(self) -> int:
        """How many ready notifications one pool call may take now."""
        if self._mean is None:
            return 1  # nothing measured yet: a slow handler must not start out serialised
        return max(1, min(MAX_CHUNK, int(CHUNK_SECONDS / max(self._mean, 1e-7))))

    async def chunk(self, jobs: list[Job], *, until_failure: bool = False) -> list[BaseException | None | object]:
        """One attempt of each job on one pool thread, in order; ``NOT_ATTEMPTED`` for those it never reached.

        The channel's timeout counts from the chunk's start: chunks are formed only while
        calls take a small fraction of it, so a hung call loses at most that much.
        ``until_failure``: the thread stops after the first attempt that does not succeed.
        """
        chunk = _Chunk(self._send_blocking, [self.next_notification(job) for job in jobs], until_failure)
        task = asyncio.current_task()
        self.deadlines.start(task)
        timed_out = False
        try:
            await self._pool.run(chunk.run)
        except asyncio.CancelledError:
            if not self._ran_out(task):
                chunk.stop()
                raise
            timed_out = True
        else:
            self._ran_out(task)
        return self._outcomes(jobs, chunk.stop(), timed_out)

    def _outcomes(self, jobs: list[Job], done: list[tuple[BaseException | None, float]],
                  timed_out: bool) -> list[BaseException | None | object]:
        """Each job's outcome, counted in the metrics and the mean duration; unsent jobs lose their attempt."""
        timed_out = timed_out and len(done) < len(jobs)
        # A call cut short counts at the whole timeout: chunks shrink to one call each for a while.
        self._learn([*done, (None, self.deadlines.limit)] if timed_out else done)
        outcomes: list[BaseException | None | object] = []
        for outcome, seconds in done:
            self._m.attempt(outcome, seconds)
            outcomes.append(outcome)
        if timed_out:
            outcomes.append(self._timed_out())
            self._m.attempt(outcomes[-1], self.deadlines.limit)
        if len(outcomes) < len(jobs):  # cut short by the timeout, or (until_failure) by a failure
            for job in jobs[len(outcomes):]:
                job.attempts -= 1
                outcomes.append(NOT_ATTEMPTED)
        return outcomes

    def _learn(self, done: list[tuple[BaseException | None, float]]) -> None:
        if not done:
            return
        mean = sum(seconds for _outcome, seconds in done) / len(done)
        self._mean = mean if self._mean is None else self._mean + _MEAN_WEIGHT * (mean - self._mean)

    def _timed_out(self) -> RetryableError:
        error = RetryableError(f"no answer within the channel timeout of {self.deadlines.limit:g} s")
        error.timed_out = True  # see timed_out()
        return error

    def _ran_out(self, task: asyncio.Task[None]) -> bool:
        """Stop the attempt's deadline; True if it had passed and cancelled the attempt, and nothing else did.

        Its cancellation is then undone, as ``asyncio.timeout`` undoes its own.
        """
        return self.deadlines.stop(task) and task.uncancel() == 0

    async def _send(self, notification: Notification) -> None:
        if self.on_pool:
            await self._pool.run(self._send_blocking, notification)  # prepare and send: one hop
            return
        if needs_preparation(notification):  # the preparer may block (a directory lookup)
            notification = await self._pool.run(self._prepare, notification)
        sent = self._handler.send(notification)
        if self.async_send:
            await sent

    def _send_blocking(self, notification: Notification) -> None:
        self._handler.send(self._prepare(notification))


@types.coroutine
def _resumed(coro: Coroutine[Any, Any, Any], pending: Any) -> Generator[Any, Any, Any]:
    """Go on with ``coro`` from a suspension that yielded ``pending``: what ``await`` does after its first step."""
    while True:
        try:
            sent = yield pending
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # a cancellation (the timeout, a shutdown) goes into the coroutine
            try:
                pending = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                pending = coro.send(sent)
            except StopIteration as stop:
                return stop.value


class _Chunk:
    """Notifications one pool thread sends in order; ``stop`` ends it after the current one.

    No lock between the thread and the loop: an ``append`` to the outcomes and the copy of
    them that ``stop`` returns are each atomic under the GIL. An outcome appended after that
    copy is not in it, and the loop counts its call as cut off, as before. A lock taken for
    each notification was most of this loop's cost with a no-op handler (350 ns a notification, 134 without).
    """

    __slots__ = ("_done", "_notifications", "_send", "_stopped", "_until_failure")

    def __init__(self, send: Callable[[Notification], None], notifications: list[Notification],
                 until_failure: bool) -> None:
        self._send, self._notifications, self._until_failure = send, notifications, until_failure
        self._done: list[tuple[BaseException | None, float]] = []
        self._stopped = False

    def run(self) -> None:
        """Send each notification, recording its outcome and duration; on a pool thread."""
        done, send = self._done, self._send
        started = time.perf_counter()
        for notification in self._notifications:
            try:
                send(notification)
                outcome = None
            except Exception as exc:  # classified on the loop, like a single call's exception
                outcome = exc
            ended = time.perf_counter()  # the next one's start: one clock read a notification
            done.append((outcome, ended - started))
            started = ended
            if self._stopped or (outcome is not None and self._until_failure):
                return

    def stop(self) -> list[tuple[BaseException | None, float]]:
        """The outcomes so far; the one after them (if any) is running or next, and is abandoned."""
        self._stopped = True
        return self._done[:]


def timed_out(outcome: BaseException | None) -> bool:
    """Whether ``outcome`` is an attempt's timeout: its send was cut off, so no wrapper around the handler saw it end."""
    return getattr(outcome, "timed_out", False) is True
