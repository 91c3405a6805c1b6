"""Delivering one message: parse, attempts with a timeout, retries (``notifyd.channel.retrying``), then the DLQ.

Runs on the channel's event loop. ``prepare`` and a blocking sync ``send`` run on daemon
threads; ``async def send`` and a non-blocking sync one run on the loop, the latter
without a task when the notification needs no preparation. A message leaves here in one
of five ways, and only the first four finish its offset: delivered, skipped on purpose,
acknowledged into a delay topic or into the DLQ (or dropped and counted when the channel
has none); or abandoned because its partition was revoked (someone else will deliver it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import time
from collections.abc import Callable
from typing import Any

from notifyd.api import Handler, Notification, PermanentError, RetryableError, SkipNotification
from notifyd.channel.blocking import BlockingPool
from notifyd.channel.deadletter import DeadLetterer, describe
from notifyd.channel.deadlines import Deadlines
from notifyd.channel.deliverymetrics import DeliveryMetrics
from notifyd.channel.dlq import DlqWriter
from notifyd.channel.job import Job, where
from notifyd.channel.keyed import KeyedScheduler
from notifyd.channel.producer import AckedProducer
from notifyd.channel.retrying import Retries
from notifyd.config.settings import ChannelSettings
from notifyd.metrics import ChannelMetrics
from notifyd.recipients.preparation import Preparer, needs_preparation
from notifyd.records.notification import InvalidNotification, parse_notification

_TAKING = object()  # Deliverer._handoff: a settling task will take the next job to spawn
_NEEDS_TASK = object()  # Deliverer._outcome_here: the delivery must be awaited


class Deliverer:
    """Runs jobs under the per-key order and concurrency limit; reports finished ones."""

    def __init__(self, *, settings: ChannelSettings, handler: Handler, prepare: Preparer, pool: BlockingPool,
                 dlq: DlqWriter | None, metrics: ChannelMetrics, log: Any, redact: Callable[[str], str],
                 on_finished: Callable[[Job], None], is_current: Callable[[Job], bool],
                 delay_producer: AckedProducer | None = None, delay_topics: tuple[str, ...] = ()) -> None:
        self._settings, self._handler, self._prepare, self._pool = settings, handler, prepare, pool
        self._log, self._redact = log, redact
        self._on_finished, self._is_current = on_finished, is_current
        self._async_send = inspect.iscoroutinefunction(handler.send)
        # A sync send that promises not to block runs inline: no thread hop, often no task.
        self._inline = not self._async_send and not getattr(handler, "blocking", True)
        self._on_pool = not (self._async_send or self._inline)
        self._starting = False
        self._scheduler: KeyedScheduler[Job] = KeyedScheduler(limit=settings.concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._active: set[Job] = set()  # running now: not waiting for a retry or behind its key
        self._deadlines = Deadlines(settings.timeout)
        self._m = DeliveryMetrics(metrics, settings.name)
        self._dead_letters = DeadLetterer(channel=settings.name, dlq=dlq, metrics=self._m, log=log, redact=redact,
                                          on_finished=on_finished, is_current=is_current)
        self.retries = Retries(settings=settings, producer=delay_producer, topics=delay_topics, log=log, redact=redact,
                               wait_here=self._wait_here, release=self._release, on_finished=on_finished,
                               is_current=is_current, on_refused=self._dead_letters.dead_letter)
        self._flush_scheduled = False
        self._handoff: Job | object | None = None  # _TAKING while a task settles, then the job it takes

    @property
    def running(self) -> int:
        """Deliveries running now (not counting ones waiting for a retry)."""
        return self._scheduler.running

    def busy(self, partitions: set[tuple[str, int]] | None = None) -> bool:
        """Whether a delivery (of ``partitions``, or any) is running now.

        Work waiting for a retry, or queued behind such work, does not count: waiting for
        it would hold a rebalance or a shutdown for up to the longest backoff, and its
        offset is not committed anyway, so it is redelivered.
        """
        if partitions is None:
            return bool(self._active)
        return any(job.partition in partitions for job in self._active)

    def submit(self, jobs: list[Job]) -> None:
        """Queue messages just consumed (in offset order, their partitions current) and start what may start."""
        first_left = self._deliver_at_once(jobs) if self._inline else 0
        for job in jobs[first_left:]:
            self._scheduler.add(job.key, job)
        self._start_ready()

    def _deliver_at_once(self, jobs: list[Job]) -> int:
        """Deliver through a non-blocking sync handler while nothing else is scheduled; the index of the first job left.

        With nothing running or waiting, a job delivered right here overtakes no job of its
        key, and a delivered one never needs the scheduler: for a quick handler that
        bookkeeping was a third of the channel's cost per message. A job that does not
        simply succeed takes a slot and its key, as if the scheduler had started it, and
        is settled as usual; from there on, the rest of the batch is scheduled.
        """
        for index, job in enumerate(jobs):
            if not self._scheduler.idle:
                return index
            outcome = self._outcome_here(job)
            if outcome is _NEEDS_TASK:
                return index  # not attempted yet: the general path prepares it in a thread
            if outcome is None or isinstance(outcome, SkipNotification):
                self._on_finished(job)
            else:
                self._scheduler.add(job.key, job)
                self._scheduler.take()  # idle until now: just this job
                self._active.add(job)
                self._settle(job, outcome)
        return len(jobs)

    def _start_ready(self) -> None:
        if self._starting:  # called back by a delivery that finished inline: the pass below goes on
            return
        self._starting = True
        try:
            while self._scheduler.startable:
                for job in self._scheduler.take():
                    self._start(job)
        finally:
            self._starting = False
            self._flush_soon()

    def _flush_soon(self) -> None:
        """Write the metrics once this loop iteration's deliveries are done, not after each one.

        Hundreds of async deliveries can finish in one iteration; each flush is a few
        multiprocess writes (~1.2 us each), which at 4,000 requests/s was a wave's worth.
        """
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._m.flush()

    def _start(self, job: Job) -> None:
        """Deliver ``job`` right here when nothing needs awaiting, else in a task of its own."""
        self._active.add(job)
        if not self._is_current(job):
            return self._release(job)
        outcome = self._outcome_here(job)
        if outcome is _NEEDS_TASK:
            return self._spawn(job)
        self._settle(job, outcome)

    def _outcome_here(self, job: Job) -> BaseException | None | object:
        """Parse ``job`` and attempt it on the spot if nothing needs awaiting; else ``_NEEDS_TASK``."""
        try:
            outcome = self._parse(job)
            if outcome is None:
                if not self._inline or needs_preparation(job.notification):
                    return _NEEDS_TASK
                outcome = self._attempt_inline(job)
        except Exception as exc:
            outcome = self._crashed(job, exc)
        return outcome

    def _spawn(self, job: Job) -> None:
        if self._handoff is _TAKING:  # a delivery task is settling: it runs this job next
            self._handoff = job
            return
        task = asyncio.get_running_loop().create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job: Job | None) -> None:
        """Deliver ``job``, then the first job its settling made ready, and so on, in this one task.

        Settling a delivery usually starts the next one (its slot is free); handing that
        job to the task at hand saves creating a task per message (a few us of the
        channel's CPU per notification at hundreds in flight).
        """
        while job is not None:
            try:
                notification = self._next_notification(job)
                started = time.perf_counter()
                outcome = await self._attempt(notification)
                self._m.attempt(outcome, time.perf_counter() - started)
            except Exception as exc:
                outcome = self._crashed(job, exc)
            job = self._settle_and_take_next(job, outcome)
        self._flush_soon()

    def _settle_and_take_next(self, job: Job, outcome: BaseException | None) -> Job | None:
        """Settle ``job``; the job its settling started for this task to run next, if any."""
        self._handoff = _TAKING
        try:
            self._settle(job, outcome)
        except BaseException:
            # A bug here ends this task: the job handed to it gets a task of its own.
            handed, self._handoff = self._handoff, None
            if handed is not _TAKING:
                self._spawn(handed)
            raise
        handed, self._handoff = self._handoff, None
        return None if handed is _TAKING else handed

    def _attempt_inline(self, job: Job) -> BaseException | None:
        """One attempt of a non-blocking sync handler, on the loop: no timeout can cut it short."""
        notification = self._next_notification(job)
        started = time.perf_counter()
        try:
            self._handler.send(notification)
            outcome = None
        except Exception as exc:  # classified by _settle, like an exception from a pool thread
            outcome = exc
        self._m.attempt(outcome, time.perf_counter() - started)
        return outcome

    def _parse(self, job: Job) -> InvalidNotification | None:
        if job.notification is None:
            try:
                job.notification = parse_notification(job.message.value(), channel=self._settings.name,
                                                      headers=job.message.headers())
            except InvalidNotification as exc:
                job.notification_id = exc.notification_id
                return exc
        return None

    def _next_notification(self, job: Job) -> Notification:
        job.attempts += 1
        notification = job.notification
        if notification.attempt != job.attempts:  # parsed with attempt=1: copied for retries only
            notification = dataclasses.replace(notification, attempt=job.attempts)
        return notification

    def _crashed(self, job: Job, exc: Exception) -> RetryableError:
        """A bug here must not lose the message: it is retried like a failed send."""
        self._log.exception("delivery crashed", **where(job))
        return RetryableError(f"{type(exc).__name__}: {describe(exc)}")

    def _settle(self, job: Job, outcome: BaseException | None) -> None:
        if outcome is None or isinstance(outcome, SkipNotification):
            self._release(job)
            self._on_finished(job)
        elif _retryable(outcome) and job.attempts <= self._settings.retries:
            self.retries.retry(job, outcome)
        else:
            self._release(job)
            self._dead_letters.dead_letter(job, outcome)

    async def _attempt(self, notification: Notification) -> BaseException | None:
        task = asyncio.current_task()
        self._deadlines.start(task)
        try:
            await self._send(notification)
        except asyncio.CancelledError:
            if not self._ran_out(task):
                raise
            return RetryableError(f"no answer within the channel timeout of {self._settings.timeout:g} s")
        except Exception as exc:  # classified by the caller: Permanent, Skip, anything else retryable
            self._ran_out(task)
            return exc
        self._ran_out(task)
        return None

    def _ran_out(self, task: asyncio.Task[None]) -> bool:
        """Stop the attempt's deadline; True if it had passed and cancelled the attempt, and nothing else did.

        Its cancellation is then undone, as ``asyncio.timeout`` undoes its own.
        """
        return self._deadlines.stop(task) and task.uncancel() == 0

    async def _send(self, notification: Notification) -> None:
        if self._on_pool:
            await self._pool.run(self._send_blocking, notification)  # prepare and send: one hop
            return
        if needs_preparation(notification):  # the preparer may block (a directory lookup)
            notification = await self._pool.run(self._prepare, notification)
        sent = self._handler.send(notification)
        if self._async_send:
            await sent

    def _send_blocking(self, notification: Notification) -> None:
        self._handler.send(self._prepare(notification))

    def _wait_here(self, job: Job, delay: float) -> None:
        self._active.discard(job)
        self._scheduler.pause()
        asyncio.get_running_loop().call_later(delay, self._resume, job)

    def _resume(self, job: Job) -> None:
        self._scheduler.resume(job)
        self._start_ready()

    def _release(self, job: Job) -> None:
        self._active.discard(job)
        self._scheduler.done(job.key)
        self._start_ready()


def _retryable(outcome: BaseException) -> bool:
    """Anything but a permanent or input error may succeed later: a bug, a 503, a reset connection."""
    return not isinstance(outcome, (PermanentError, InvalidNotification))
