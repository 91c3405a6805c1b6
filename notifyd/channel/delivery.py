"""Delivering one message: parse, attempts with a timeout, retries (``notifyd.channel.retrying``), then the DLQ.

Runs on the channel's event loop. ``prepare`` and a blocking sync ``send`` run on daemon
threads (``notifyd.channel.attempt``); ``async def send`` and a non-blocking sync one run
on the loop, straight through while nothing is scheduled (``notifyd.channel.atonce``). A
message leaves here in one of five ways, and only the first four finish its offset:
delivered, skipped on purpose, acknowledged into a delay topic or into the DLQ (or dropped
and counted when the channel has none); or abandoned because its partition was revoked
(someone else will deliver it).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from notifyd.api import Handler, RetryableError, SkipNotification
from notifyd.channel.atonce import AtOnce, finish_each
from notifyd.channel.attempt import NEEDS_TASK, NOT_ATTEMPTED, Attempts, timed_out
from notifyd.channel.backoff import retryable
from notifyd.channel.blocking import BlockingPool
from notifyd.channel.deadletter import DeadLetterer, describe
from notifyd.channel.deadlines import Deadlines
from notifyd.channel.deliverymetrics import DeliveryMetrics
from notifyd.channel.flow.gate import REVOKED, FlowGate
from notifyd.channel.handoff import HandOff
from notifyd.channel.holds import Holds, expired_now
from notifyd.channel.job import Job, parse, where
from notifyd.channel.keyed import KeyedScheduler
from notifyd.channel.notes import Notes
from notifyd.channel.producer import AckedProducer
from notifyd.channel.retrying import Retries
from notifyd.config.settings import ChannelSettings
from notifyd.ledger.guard import ClaimHeld
from notifyd.metrics import ChannelMetrics
from notifyd.recipients.hold import HeldBack
from notifyd.recipients.preparation import Preparer, needs_preparation

_TAKING = object()  # Deliverer._handoff: a settling task will take the next job to spawn


class Deliverer(AtOnce):
    """Runs jobs under the per-key order and concurrency limit; reports finished ones."""

    def __init__(self, *, settings: ChannelSettings, handler: Handler, prepare: Preparer, pool: BlockingPool,
                 producer: AckedProducer | None, metrics: ChannelMetrics, log: Any, redact: Callable[[str], str],
                 on_finished: Callable[[Job], None], is_current: Callable[[Job], bool],
                 on_finished_all: Callable[[list[Job]], None] | None = None, gate: FlowGate | None = None,
                 failover: Callable[..., Callable[..., None]] | None = None, delay_topics: tuple[str, ...] = (),
                 notes: Notes | None = None) -> None:
        self._settings, self._log, self._redact, self._notes = settings, log, redact, notes
        self._on_finished, self._is_current, self._gate = on_finished, is_current, gate  # gate: notifyd.channel.flow
        self._on_finished_all = on_finished_all or (lambda jobs: finish_each(on_finished, jobs))
        self._starting = False
        self._scheduler: KeyedScheduler[Job] = KeyedScheduler(limit=settings.concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._active: set[Job] = set()  # running now: not waiting for a retry or behind its key
        self._deadlines = Deadlines(settings.timeout)
        self._m = DeliveryMetrics(metrics, settings.name)
        self._attempts = Attempts(handler=handler, prepare=prepare, pool=pool, deadlines=self._deadlines,
                                  metrics=self._m)
        # With flow control every attempt passes the gate one by one: no chunks or batches around it.
        self._inline, self._on_pool = self._attempts.inline, self._attempts.on_pool and gate is None
        self._for_pool: list[Job] = []  # started by this pass of _start_ready, to leave as one chunk
        self._chunks = 0  # pool calls running: each sends its jobs one after another, so it is one slot
        self._batch: deque[Job] = deque()  # submitted for an async send while nothing was scheduled (_run_batch)
        dlq = HandOff(producer, settings.dlq, what="dlq", log=log, is_current=is_current) \
            if producer is not None and settings.dlq else None
        self._dead_letters = DeadLetterer(channel=settings.name, dlq=dlq, metrics=self._m, log=log, redact=redact,
                                          on_finished=on_finished, provider=settings.handler, notes=notes)
        self._give_up = self._dead_letters.dead_letter if failover is None else failover(  # notifyd.channel.fallback
            on_finished=on_finished, is_current=is_current, dead_letter=self._dead_letters.dead_letter)
        self.retries = Retries(settings=settings, producer=producer, topics=delay_topics, log=log, redact=redact,
                               wait_here=self._wait_here, release=self._release, on_finished=on_finished,
                               is_current=is_current, on_refused=self._dead_letters.dead_letter, notes=notes)
        # Without delay topics (the unit tests' Deliverer) nothing can wait outside the process.
        self._holds = Holds(channel=settings.name, defer=self.retries.defer, expire=self._dead_letters.dead_letter) \
            if producer is not None and delay_topics else None
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
            return bool(self._active or self._batch)
        return any(job.partition in partitions for job in self._active) or \
            any(job.partition in partitions for job in self._batch)

    def submit(self, jobs: list[Job]) -> None:
        """Queue messages just consumed (in offset order, their partitions current) and start what may start."""
        if self._holds is not None:
            jobs = self._holds.admit(jobs)
        if self._batch or (self._scheduler.idle and self._batches_at_once()):
            if not self._batch:
                self._spawn_task(self._run_batch() if self._attempts.async_send else self._run_in_order())
            self._batch.extend(jobs)
            return
        first_left = self._deliver_at_once(jobs) if self._inline else 0
        for job in jobs[first_left:]:
            self._scheduler.add(job.key, job)
        self._start_ready()

    def _start_ready(self) -> None:
        if self._starting:  # called back by a delivery that finished inline: the pass below goes on
            return
        self._starting = True
        try:
            while jobs := self._take():
                for job in jobs:
                    self._start(job)
                if self._for_pool:
                    jobs, self._for_pool = self._for_pool, []
                    self._spawn_chunk(jobs)
        finally:
            self._starting = False
            self._flush_soon()

    def _take(self) -> list[Job]:
        """Jobs to start now: within the concurrency limit, or for the pool, a chunk if a slot is free."""
        if not self._on_pool:
            return self._scheduler.take() if self._scheduler.startable else []
        if self._chunks >= self._scheduler.limit:
            return []
        return self._scheduler.take(most=self._attempts.chunk_size())

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
        outcome = expired_now(job) or self._outcome_here(job)  # it may have waited for its key or a slot
        if outcome is NEEDS_TASK:
            return self._spawn(job)
        self._settle(job, outcome)

    def _outcome_here(self, job: Job) -> BaseException | None | object:
        """Parse ``job`` and attempt it on the spot if nothing needs awaiting; else ``NEEDS_TASK``."""
        try:
            outcome = parse(job, channel=self._settings.name) if job.notification is None else None
            if outcome is None:
                if not self._inline or needs_preparation(job.notification):
                    return NEEDS_TASK
                outcome = self._attempts.inline_attempt(job) if self._gate is None else self._gate.run_inline(
                    job, self._attempts.inline_attempt, not_now=NEEDS_TASK)
        except Exception as exc:
            outcome = self._crashed(job, exc)
        return outcome

    def _spawn(self, job: Job) -> None:
        if self._on_pool:  # leaves with the other jobs of its chunk (_start_ready)
            self._for_pool.append(job)
            return
        if self._handoff is _TAKING:  # a delivery task is settling: it runs this job next
            self._handoff = job
            return
        self._spawn_task(self._run(job))

    def _spawn_task(self, coroutine: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
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
                outcome = await (self._attempts.awaited(job) if self._gate is None else self._gate.run(
                    job, self._attempts.awaited, waiting=self._active, is_current=self._is_current))
            except Exception as exc:
                outcome = self._crashed(job, exc)
            if outcome is REVOKED:  # while it waited at the gate
                self._release(job)
                break
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

    def _crashed(self, job: Job, exc: Exception) -> RetryableError:
        """A bug here must not lose the message: it is retried like a failed send."""
        self._log.exception("delivery crashed", **where(job))
        return RetryableError(f"{type(exc).__name__}: {describe(exc)}")

    def _settle(self, job: Job, outcome: BaseException | None) -> None:
        if outcome is not None:
            # Nothing reads a failed attempt's traceback. Kept, it ties the exception to the frame
            # that caught it (``outcome = exc``) in a cycle only the GC frees, the job with it: at
            # 150 failures a second (bench case 8), a 5 ms young collection every few seconds.
            outcome.__traceback__ = None
        if outcome is None or isinstance(outcome, SkipNotification):
            self._release(job)
            self._on_finished(job)
        elif isinstance(outcome, HeldBack):
            self._hold_back(job, outcome)
        elif isinstance(outcome, ClaimHeld):  # another process is sending it: not this notification's attempt
            job.attempts -= 1
            self.retries.retry(job, outcome)  # after the claim's lease, unless that process marks it sent
        elif retryable(outcome) and job.attempts <= self._settings.retries:
            self._tell_timeout(job, outcome, final=False)
            self.retries.retry(job, outcome)
        else:
            self._tell_timeout(job, outcome, final=True)
            self._release(job)
            self._give_up(job, outcome)

    def _tell_timeout(self, job: Job, outcome: BaseException, *, final: bool) -> None:
        if self._notes is not None and job.notification is not None and timed_out(outcome):
            self._notes.timed_out(job.notification, job.attempts, final=final, error=outcome)

    def _hold_back(self, job: Job, held: HeldBack) -> None:
        """Park ``job``, which the preparer held back (quiet hours), until its hold ends."""
        if held.attempted:
            job.attempts -= 1  # held back before its send: not an attempt
        if self._holds is None:  # no delay topics (the unit tests' Deliverer): it waits here
            return self._wait_here(job, max(0.0, held.until - time.time()))
        self._release(job)
        self.retries.defer(job, held.until, held.reason)

    def _spawn_chunk(self, jobs: list[Job]) -> None:
        self._chunks += 1
        self._spawn_task(self._run_chunk(jobs))

    async def _run_chunk(self, jobs: list[Job]) -> None:
        """Send ``jobs`` on one pool thread, then settle them with one start pass for all."""
        try:
            outcomes = await self._attempts.chunk(jobs)
        except Exception as exc:
            outcomes = [self._crashed(job, exc) for job in jobs]
        finally:
            self._chunks -= 1
        unsent = [job for job, outcome in zip(jobs, outcomes) if outcome is NOT_ATTEMPTED]
        if unsent:  # behind a call that timed out: still running, they keep their slots and keys
            self._spawn_chunk(unsent)
        starting, self._starting = self._starting, True
        try:
            for job, outcome in zip(jobs, outcomes):
                if outcome is not NOT_ATTEMPTED:
                    self._settle(job, outcome)
        finally:
            self._starting = starting
        self._start_ready()
        self._flush_soon()

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
