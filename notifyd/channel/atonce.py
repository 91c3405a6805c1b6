"""Delivering a just-consumed batch straight through while the per-key scheduler is idle.

With nothing running or waiting, a job delivered at once overtakes no job of its key, and
a delivered one never needs the scheduler: for a quick handler that bookkeeping (add, take,
done, the active set) was a third of the channel's cost per message. A non-blocking sync
handler is called inside ``submit``; an ``async def send`` is stepped in one task for the
whole batch, and only a coroutine that suspends goes on as a delivery of its own.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from notifyd.api import SkipNotification
from notifyd.channel.attempt import IN_ORDER_CHUNK, NEEDS_TASK, SUSPENDED, Attempts
from notifyd.channel.job import Job, parse
from notifyd.channel.keyed import KeyedScheduler
from notifyd.recipients.preparation import needs_preparation


class AtOnce:
    """``Deliverer``'s paths past the scheduler; it supplies the state and the general path used here."""

    _scheduler: KeyedScheduler[Job]
    _active: set[Job]
    _batch: deque[Job]
    _attempts: Attempts
    _gate: Any
    _on_finished: Callable[[Job], None]
    _on_finished_all: Callable[[list[Job]], None]
    _settle: Callable[[Job, Any], None]
    _outcome_here: Callable[[Job], Any]
    _settings: Any
    _crashed: Callable[[Job, Exception], Any]
    _start_ready: Callable[[], None]
    _flush_soon: Callable[[], None]
    _settle_and_take_next: Callable[[Job, Any], Job | None]
    _run: Callable[[Job | None], Awaitable[None]]

    def _batches_at_once(self) -> bool:
        """Whether a batch submitted while the scheduler is idle goes to a task of its own."""
        if self._gate is not None:  # flow control: each attempt passes the gate on the scheduled path
            return False
        return self._attempts.async_send or (self._attempts.on_pool and self._attempts.chunk_size() >= IN_ORDER_CHUNK)

    def _deliver_at_once(self, jobs: list[Job]) -> int:
        """Deliver through a non-blocking sync handler while nothing else is scheduled; the index of the first job left.

        With nothing running or waiting, a job delivered right here overtakes no job of its
        key, and a delivered one never needs the scheduler: for a quick handler that
        bookkeeping was a third of the channel's cost per message. A job that does not
        simply succeed takes a slot and its key, as if the scheduler had started it, and
        is settled as usual; from there on, the rest of the batch is scheduled. With flow
        control, the batch passes the gate on one tab (``FlowGate.open_tab``).
        """
        if self._gate is None:
            return self._deliver_each_at_once(jobs)
        self._gate.open_tab(len(jobs))
        try:
            return self._deliver_each_at_once(jobs)
        finally:
            self._gate.close_tab()

    def _deliver_each_at_once(self, jobs: list[Job]) -> int:
        if not self._scheduler.idle:
            return 0
        delivered: list[Job] = []  # finished after the loop (_finish_each)
        try:
            for index, job in enumerate(jobs):
                outcome = self._outcome_here(job)
                if outcome is NEEDS_TASK:
                    return index  # not attempted yet: the general path prepares it in a thread
                if outcome is None or isinstance(outcome, SkipNotification):
                    delivered.append(job)
                    continue
                self._finish_each(delivered)
                self._take_over(job)
                self._settle(job, outcome)
                if not self._scheduler.idle:  # a retry waits here, holding its key: the rest is scheduled
                    return index + 1
            return len(jobs)
        finally:
            self._finish_each(delivered)

    async def _run_batch(self) -> None:
        """Deliver the batch through an ``async def send``, in this one task, while each attempt finishes at once.

        What ``_deliver_at_once`` does for a non-blocking sync handler, in a task rather
        than the poll loop's: a coroutine that suspends may have bound itself to the task
        it runs in. A failure is settled here; if that leaves nothing running or waiting
        (``_settled_and_idle``), the batch goes on. The first job that suspends or needs
        preparing takes its slot and key, the rest of the batch is scheduled, and this task
        finishes that job and goes on as a delivery task (``_run``).
        """
        batch, delivered = self._batch, []
        try:
            while batch:
                job = batch.popleft()
                outcome, rest = self._eager_outcome(job)
                if outcome is None or isinstance(outcome, SkipNotification):
                    delivered.append(job)
                    continue
                self._finish_each(delivered)
                self._take_over(job)
                if outcome is NEEDS_TASK or outcome is SUSPENDED:
                    self._schedule_batch()
                    await self._carry_on(job, outcome, rest)
                    return  # a later submit found the batch empty: its jobs are another task's
                if not self._settled_and_idle(job, outcome):
                    self._start_ready()
                    return
        except BaseException:
            self._schedule_batch()  # a bug here ends this task; the jobs after it are still delivered
            self._start_ready()
            raise
        finally:
            self._finish_each(delivered)
        self._flush_soon()

    async def _run_in_order(self) -> None:
        """Send the batch through a quick blocking handler in order, a chunk a pool call, while each attempt succeeds.

        One thread sends a chunk in offset order and stops at the first attempt that does
        not succeed: nothing overtakes anything of its key, so the scheduler is not needed
        (its bookkeeping was a third of this path's cost). That job then takes its slot and
        key and is settled as usual; the batch goes on in order unless that left something
        waiting (``_settled_and_idle``), and then the rest is scheduled. Taken only
        while calls are quick (``IN_ORDER_CHUNK``), since it sends one at a time. The jobs
        stay in the batch while on the thread: later ones queue behind them, and all count
        as busy.
        """
        batch = self._batch
        try:
            while batch and self._batches_at_once():
                jobs, failure = self._valid_prefix(self._attempts.chunk_size())
                outcomes = await self._attempts.chunk(jobs, until_failure=True) if jobs else []
                for _ in jobs:
                    batch.popleft()
                if not self._finish_in_order(jobs, outcomes):
                    break
                if failure is not None and not self._finish_in_order([batch.popleft()], [failure]):
                    break
        finally:  # a bug here ends this task; the jobs after it are still delivered
            self._schedule_batch()
            self._start_ready()

    def _valid_prefix(self, size: int) -> tuple[list[Job], Any]:
        """The batch's first jobs (up to ``size``) that parse, and the outcome of the one after them that does not."""
        jobs = []
        for job in list(itertools.islice(self._batch, size)):
            try:
                failure = parse(job, channel=self._settings.name)
            except Exception as exc:
                failure = self._crashed(job, exc)
            if failure is not None:
                return jobs, failure
            jobs.append(job)
        return jobs, None

    def _finish_in_order(self, jobs: list[Job], outcomes: list[Any]) -> bool:
        """Finish the successes and settle the first other outcome; False if that leaves the rest scheduled."""
        for index, (job, outcome) in enumerate(zip(jobs, outcomes)):
            if outcome is None:
                continue
            self._finish_each(jobs[:index])
            self._take_over(job)
            self._batch.extendleft(reversed(jobs[index + 1:]))  # never sent: in order, ahead of the batch
            return self._settled_and_idle(job, outcome)
        self._finish_each(jobs[:len(outcomes)])
        return True

    def _finish_each(self, delivered: list[Job]) -> None:
        """Finish the jobs delivered so far, and forget them.

        Once a batch or at its first other outcome, not after each job: the attempts in
        one loop and the offsets' bookkeeping in another took 3-8% less CPU a
        notification with a no-op handler (docs/performance.md, 2026-12-06), and the
        offsets of the whole batch in one call (``on_finished_all``) less again.
        """
        jobs = delivered[:]
        delivered.clear()
        if jobs:
            self._on_finished_all(jobs)

    def _settled_and_idle(self, job: Job, outcome: BaseException) -> bool:
        """Settle ``job``'s failure; True if that left nothing running or waiting, so the batch goes on at once.

        A retry handed to the delay topics, or a dead-lettering, releases the job on the
        spot: as when the batch began, nothing is left for a later job to overtake. Scheduling
        the rest instead sent every later notification of a batch down the general path (a
        task or a chunk each, the scheduler's bookkeeping), so with 30% failing nearly all
        healthy ones took it (bench case 8). A retry waiting in the process keeps its key:
        then the rest of the batch is scheduled behind it.
        """
        self._settle(job, outcome)
        if self._scheduler.idle:
            return True
        self._schedule_batch()
        return False

    def _schedule_batch(self) -> None:
        for later in self._batch:
            self._scheduler.add(later.key, later)
        self._batch.clear()

    def _eager_outcome(self, job: Job) -> tuple[BaseException | None | object, Awaitable[BaseException | None] | None]:
        try:
            outcome = parse(job, channel=self._settings.name)
            if outcome is None:
                if needs_preparation(job.notification):
                    return NEEDS_TASK, None  # the preparer may block: a pool thread first
                return self._attempts.eager(job)
        except Exception as exc:
            outcome = self._crashed(job, exc)
        return outcome, None

    async def _carry_on(self, job: Job, outcome: object, rest: Awaitable[BaseException | None] | None) -> None:
        """Finish ``job`` (``NEEDS_TASK`` or ``SUSPENDED``), which holds its slot and key, in this task.

        Then deliver what its settling hands over.
        """
        self._start_ready()
        if outcome is NEEDS_TASK:
            await self._run(job)
            return
        try:
            outcome = await rest
        except Exception as exc:
            outcome = self._crashed(job, exc)
        await self._run(self._settle_and_take_next(job, outcome))

    def _take_over(self, job: Job) -> None:
        """``job``, delivered outside the scheduler while it was idle, takes a slot and its key as if started by it."""
        self._scheduler.add(job.key, job)
        self._scheduler.take()  # idle until now: just this job
        self._active.add(job)


def finish_each(on_finished: Callable[[Job], None], jobs: list[Job]) -> None:
    """``on_finished`` for each of ``jobs``; a bug in one does not keep the others unfinished (raised after them)."""
    bug = None
    for job in jobs:
        try:
            on_finished(job)
        except Exception as exc:
            bug = bug or exc
    if bug is not None:
        raise bug
