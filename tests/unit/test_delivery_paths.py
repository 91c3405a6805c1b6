"""Where each delivery runs: inline on the loop, on the loop as a task, or on a pool thread.

Unit tests of the Deliverer with real handlers, a real BlockingPool and real Kafka
``Message`` objects (confluent-kafka builds them without a broker); no broker needed.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
import structlog
from confluent_kafka import Message

from notifyd.api import Handler, Notification, PermanentError, RetryableError
from notifyd.channel.blocking import BlockingPool
from notifyd.channel.delivery import Deliverer
from notifyd.channel.flow.gate import FlowGate
from notifyd.channel.flow.policy import FlowPolicy
from notifyd.channel.job import Job
from notifyd.config.settings import BackoffPolicy, BreakerPolicy, ChannelSettings, RateLimit
from notifyd.metrics import flow_metrics
from notifyd.metrics import channel_metrics
from notifyd.recipients.preparation import needs_preparation
from tests.kit.loops import on_a_loop
from tests.kit.wait import wait_until_async

PARTITION = ("t", 0)


class Inline(Handler):
    """A non-blocking sync handler: records the thread and the id of each send."""

    blocking: ClassVar[bool] = False

    def __init__(self, *, fail_first: int = 0) -> None:
        super().__init__()
        self.sent: list[tuple[str, int, int]] = []
        self.fail_first = fail_first

    def send(self, notification: Notification) -> None:
        if notification.attempt <= self.fail_first:
            raise RetryableError("not yet")
        self.sent.append((notification.id, notification.attempt, threading.get_ident()))


class Pooled(Inline):
    blocking: ClassVar[bool] = True


class AsyncSend(Inline):
    async def send(self, notification: Notification) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        super().send(notification)


class CountingPool(BlockingPool):
    """A real pool that counts the calls handed to it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop, size=2, name="test-pool")
        self.calls = 0

    def run(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        self.calls += 1
        return super().run(fn, *args)


class Channel:
    """A Deliverer over ``handler`` and what it reports back."""

    def __init__(self, handler: Handler, *, concurrency: int = 4, retries: int = 2, timeout: float = 30.0,
                 log: Any = None, gate: FlowGate | None = None) -> None:
        self.finished: list[Job] = []
        self.prepared_on: list[int] = []
        self.revoked = False
        self.pool = CountingPool(asyncio.get_running_loop())
        settings = ChannelSettings(name=f"paths-{id(self)}", topics=("t",), handler="test", concurrency=concurrency,
                                   retries=retries, timeout=timeout,
                                   backoff=BackoffPolicy(initial=0.01, max=0.02, jitter=False))
        self.deliverer = Deliverer(settings=settings, handler=handler, prepare=self.prepare, pool=self.pool,
                                   producer=None, metrics=channel_metrics(), log=log or structlog.get_logger("test"),
                                   redact=str, on_finished=self.finished.append,
                                   is_current=lambda _job: not self.revoked, gate=gate)

    def prepare(self, notification: Notification) -> Notification:
        self.prepared_on.append(threading.get_ident())
        return notification

    def submit(self, *documents: dict[str, Any], key: bytes | None = b"k") -> list[Job]:
        jobs = [job(offset, document, key=key) for offset, document in enumerate(documents)]
        self.deliverer.submit(jobs)
        return jobs

    async def wait_finished(self, count: int, timeout: float = 5.0) -> None:
        await wait_until_async(lambda: len(self.finished) >= count, timeout=timeout, what=f"{count} jobs finished")


def job(offset: int, document: dict[str, Any], *, key: bytes | None) -> Job:
    message = Message(topic=PARTITION[0], partition=PARTITION[1], offset=offset, key=key,
                      value=json.dumps(document).encode())
    return Job(message, PARTITION, (PARTITION, key) if key is not None else (PARTITION, offset, None), 0)


def plain(n: int) -> dict[str, Any]:
    return {"id": f"n{n}", "to": "someone", "body": "hi"}


def test_needs_preparation_only_for_a_user_or_a_template() -> None:
    assert not needs_preparation(Notification(id="1", channel="c", to="x", body="b"))
    assert needs_preparation(Notification(id="1", channel="c", user_id="u", body="b"))
    assert needs_preparation(Notification(id="1", channel="c", to="x", template="welcome"))


@on_a_loop
async def test_a_non_blocking_handler_is_called_on_the_loop_thread_and_never_reaches_the_pool() -> None:
    handler = Inline()
    channel = Channel(handler)
    jobs = channel.submit(*(plain(n) for n in range(20)))
    # Nothing awaited: every delivery finished inside submit().
    assert channel.finished == jobs
    assert [sent[0] for sent in handler.sent] == [f"n{n}" for n in range(20)]
    assert {sent[2] for sent in handler.sent} == {threading.get_ident()}
    assert channel.pool.calls == 0 and not channel.deliverer.busy()
    assert channel.deliverer.running == 0


@on_a_loop
async def test_an_inline_batch_passes_the_rate_limit_on_one_tab_and_the_rest_waits_for_tokens() -> None:
    handler = Inline()
    policy = FlowPolicy(RateLimit(per_second=50, burst=3), BreakerPolicy(), now=time.monotonic())
    gate = FlowGate(policy, channel="paths", metrics=flow_metrics(), log=structlog.get_logger("test"))
    channel = Channel(handler, gate=gate)
    channel.submit(*(plain(n) for n in range(6)), key=None)
    assert [sent[0] for sent in handler.sent] == ["n0", "n1", "n2"]  # the burst, inside submit()
    await channel.wait_finished(6)
    assert sorted(sent[0] for sent in handler.sent) == [f"n{n}" for n in range(6)]


@on_a_loop
async def test_thousands_of_inline_deliveries_of_one_key_do_not_recurse() -> None:
    handler = Inline()
    channel = Channel(handler, concurrency=1)
    jobs = channel.submit(*(plain(n) for n in range(3000)))
    assert channel.finished == jobs


@on_a_loop
async def test_an_inline_handler_gets_prepared_notifications_from_the_pool() -> None:
    handler = Inline()
    channel = Channel(handler)
    channel.submit({"id": "n0", "user_id": "u-1", "body": "hi"}, plain(1), key=None)
    await channel.wait_finished(2)
    assert channel.pool.calls == 1 and channel.prepared_on != [threading.get_ident()]
    assert {sent[2] for sent in handler.sent} == {threading.get_ident()}


@on_a_loop
async def test_an_async_handler_skips_the_pool_unless_the_notification_needs_preparing() -> None:
    handler = AsyncSend()
    channel = Channel(handler)
    channel.submit(plain(0), plain(1), {"id": "n2", "to": "x", "template": "t"}, key=None)
    await channel.wait_finished(3)
    assert channel.pool.calls == 1 and len(channel.prepared_on) == 1


@on_a_loop
async def test_a_blocking_handler_sends_on_a_pool_thread() -> None:
    handler = Pooled()
    channel = Channel(handler)
    channel.submit(plain(0), plain(1))
    await channel.wait_finished(2)
    assert channel.pool.calls == 2
    assert threading.get_ident() not in {sent[2] for sent in handler.sent}


@on_a_loop
async def test_an_inline_failure_waits_for_its_backoff_and_keeps_its_key_order() -> None:
    handler = Inline(fail_first=1)
    channel = Channel(handler, retries=2)
    jobs = channel.submit(plain(0), plain(1), plain(2))
    assert channel.finished == []  # the first one waits for its retry; the others wait behind it
    await channel.wait_finished(3)
    assert channel.finished == jobs
    assert [(sent[0], sent[1]) for sent in handler.sent] == [("n0", 2), ("n1", 2), ("n2", 2)]


class FailsFirstAttemptOf(Inline):
    """A non-blocking handler whose first attempt of the given notifications fails."""

    def __init__(self, *ids: str) -> None:
        super().__init__()
        self.failing = set(ids)

    def send(self, notification: Notification) -> None:
        if notification.id in self.failing and notification.attempt == 1:
            raise RetryableError("not yet")
        super().send(notification)


@on_a_loop
async def test_a_failure_inside_a_batch_of_inline_deliveries_holds_back_only_its_own_key() -> None:
    handler = FailsFirstAttemptOf("n1")
    channel = Channel(handler)
    jobs = [job(0, plain(0), key=b"a"), job(1, plain(1), key=b"b"), job(2, plain(2), key=b"b"),
            job(3, plain(3), key=b"a")]
    channel.deliverer.submit(jobs)
    assert channel.finished == [jobs[0], jobs[3]]  # n2 waits behind n1's retry; key a goes on
    await channel.wait_finished(4)
    assert [sent[0] for sent in handler.sent] == ["n0", "n3", "n1", "n2"]
    assert channel.deliverer.running == 0 and not channel.deliverer.busy()


@on_a_loop
async def test_exhausted_inline_retries_finish_the_offset_without_a_dlq() -> None:
    handler = Inline(fail_first=10)
    channel = Channel(handler, retries=1)
    channel.submit(plain(0), key=None)
    await channel.wait_finished(1)
    assert handler.sent == [] and not channel.deliverer.busy()


class Refuses(Inline):
    def send(self, notification: Notification) -> None:
        raise PermanentError("no such recipient")


class AsyncRefuses(Refuses):
    async def send(self, notification: Notification) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        super().send(notification)


class PooledRefuses(Refuses):
    blocking: ClassVar[bool] = True


@pytest.mark.parametrize("handler_kind", [Refuses, AsyncRefuses, PooledRefuses])
def test_failed_attempts_leave_no_garbage_for_the_cycle_collector(handler_kind: type[Handler]) -> None:
    # Each failure's traceback held the frame that caught it, and that frame the exception:
    # at 150 failures a second, 5 ms collections every few seconds (bench case 8).
    asyncio.run(unreachable_after_failures(handler_kind()))


async def unreachable_after_failures(handler: Handler) -> None:
    channel = Channel(handler)
    gc.collect()
    gc.disable()
    try:
        channel.submit(*(plain(n) for n in range(100)), key=None)
        await channel.wait_finished(100)
        unreachable = gc.collect()
    finally:
        gc.enable()
    assert unreachable < 100


@on_a_loop
async def test_invalid_records_are_settled_inline_and_the_key_moves_on() -> None:
    handler = Inline()
    channel = Channel(handler)
    jobs = channel.submit({"no": "id"}, plain(1))
    assert channel.finished == jobs  # the invalid one dropped (no dlq), the next delivered
    assert [sent[0] for sent in handler.sent] == ["n1"]


@on_a_loop
async def test_work_of_a_partition_revoked_while_it_waited_is_neither_delivered_nor_finished() -> None:
    # Jobs are current when submitted (just consumed); n0 then waits for its retry and n1 behind it.
    handler = Inline(fail_first=1)
    channel = Channel(handler)
    channel.submit(plain(0), plain(1))
    channel.revoked = True
    scheduler = channel.deliverer._scheduler
    await wait_until_async(lambda: not scheduler.queued, timeout=5, what="the retry to come round")
    assert handler.sent == [] and channel.finished == [] and channel.deliverer.running == 0


class Unprintable(Exception):
    def __str__(self) -> str:
        raise ValueError("a handler bug inside a handler bug")


class RaisesUnprintable(Inline):
    def send(self, notification: Notification) -> None:
        raise Unprintable()


@on_a_loop
async def test_an_error_whose_message_cannot_be_rendered_still_settles_the_message() -> None:
    channel = Channel(RaisesUnprintable(), retries=0)
    channel.submit(plain(0), key=None)
    await channel.wait_finished(1)
    assert not channel.deliverer.busy()


class HangsFirst(Inline):
    """An async handler whose first attempt of each notification never answers."""

    def __init__(self) -> None:
        super().__init__()
        self.hanging: list[str] = []  # the ids whose first attempt is waiting forever

    async def send(self, notification: Notification) -> None:  # type: ignore[override]
        if notification.attempt == 1:
            self.hanging.append(notification.id)
            await asyncio.Event().wait()
        super().send(notification)


class RaisesTimeoutError(Inline):
    async def send(self, notification: Notification) -> None:  # type: ignore[override]
        raise TimeoutError("the provider's own timeout")


class Recorded(Channel):
    """A channel that also keeps what each failed attempt logged."""

    def __init__(self, handler: Handler, **settings: Any) -> None:
        self.errors: list[str] = []
        super().__init__(handler, log=self, **settings)

    def info(self, _event: str, **fields: Any) -> None:
        self.errors.append(fields.get("error", ""))

    warning = info


@on_a_loop
async def test_an_attempt_past_the_channel_timeout_is_cut_short_and_retried() -> None:
    handler = HangsFirst()
    channel = Recorded(handler, concurrency=8, timeout=0.05)
    channel.submit(*(plain(n) for n in range(8)), key=None)
    await channel.wait_finished(8)
    assert sorted(sent[:2] for sent in handler.sent) == [(f"n{n}", 2) for n in range(8)]
    assert channel.errors == ["no answer within the channel timeout of 0.05 s"] * 8
    assert not channel.deliverer.busy() and len(channel.deliverer._deadlines) == 0


@on_a_loop
async def test_a_handlers_own_timeout_error_is_not_reported_as_the_channels() -> None:
    channel = Recorded(RaisesTimeoutError(), retries=0, timeout=5)
    channel.submit(plain(1))
    await channel.wait_finished(1)
    assert channel.errors == ["the provider's own timeout"]


@on_a_loop
async def test_a_delivery_cancelled_from_outside_stays_cancelled() -> None:
    handler = HangsFirst()
    channel = Channel(handler, timeout=30)
    channel.submit(plain(1))
    await wait_until_async(lambda: handler.hanging, timeout=2, what="the first attempt to hang")
    (task,) = channel.deliverer._tasks
    task.cancel()
    await asyncio.wait([task], timeout=2)
    assert task.cancelled() and not channel.finished


class RecordsTask(Inline):
    async def send(self, notification: Notification) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        self.sent.append((notification.id, notification.attempt, id(asyncio.current_task())))
        if notification.id == "n1":
            raise PermanentError("n1 is refused")


@on_a_loop
async def test_a_settling_delivery_task_takes_the_next_job_instead_of_a_new_task() -> None:
    handler = RecordsTask()
    channel = Channel(handler, concurrency=1)
    channel.submit(*(plain(n) for n in range(5)), key=None)
    await channel.wait_finished(5)
    assert [sent[0] for sent in handler.sent] == [f"n{n}" for n in range(5)]
    assert len({sent[2] for sent in handler.sent}) == 1  # one task, the failure of n1 included
    assert not channel.deliverer._tasks and not channel.deliverer.busy()


@on_a_loop
async def test_a_job_handed_to_a_task_whose_settling_fails_still_gets_delivered() -> None:
    handler = RecordsTask()
    channel = Channel(handler, concurrency=1)
    finished = channel.deliverer._on_finished

    def fails_for_n0(job: Job) -> None:
        finished(job)
        if job.notification.id == "n0":
            raise RuntimeError("a bug after the offset was finished")

    channel.deliverer._on_finished = fails_for_n0
    asyncio.get_running_loop().set_exception_handler(lambda _loop, _context: None)  # the task that died
    channel.submit(plain(0), plain(2), key=None)
    await channel.wait_finished(2)
    assert [sent[0] for sent in handler.sent] == ["n0", "n2"]


class RefusesN1AtOnce(Inline):
    """An ``async def send`` that refuses n1 before its first suspension, and retries n2's first attempt."""

    async def send(self, notification: Notification) -> None:  # type: ignore[override]
        self.sent.append((notification.id, notification.attempt, id(asyncio.current_task())))
        if notification.id == "n1":
            raise PermanentError("n1 is refused")
        if notification.id == "n2" and notification.attempt == 1 and self.fail_first:
            raise RetryableError("n2 is not ready yet")


class PooledRefusesN1(Pooled):
    def send(self, notification: Notification) -> None:
        super().send(notification)
        if notification.id == "n1":
            raise PermanentError("n1 is refused")


def counting_scheduler_adds(channel: Channel) -> list[Any]:
    added: list[Any] = []
    add = channel.deliverer._scheduler.add
    channel.deliverer._scheduler.add = lambda key, item: (added.append(item), add(key, item))[1]
    return added


@on_a_loop
async def test_a_failure_settled_on_the_spot_leaves_the_rest_of_an_async_batch_in_its_task() -> None:
    handler = RefusesN1AtOnce()
    channel = Channel(handler, concurrency=4)
    added = counting_scheduler_adds(channel)
    jobs = channel.submit(*(plain(n) for n in range(5)), key=None)
    await channel.wait_finished(5)
    assert [sent[0] for sent in handler.sent] == [f"n{n}" for n in range(5)]
    assert len({sent[2] for sent in handler.sent}) == 1  # the batch's own task, after n1's failure too
    assert added == [jobs[1]]  # only n1 took a slot (to be settled); the rest never met the scheduler


@on_a_loop
async def test_a_retry_waiting_in_the_process_still_holds_the_rest_of_its_key_behind_it() -> None:
    handler = RefusesN1AtOnce(fail_first=1)
    channel = Channel(handler, concurrency=4)
    channel.submit(*(plain(n) for n in range(5)))  # one key
    await channel.wait_finished(5)
    assert [sent[:2] for sent in handler.sent] == [("n0", 1), ("n1", 1), ("n2", 1), ("n2", 2), ("n3", 1), ("n4", 1)]


@on_a_loop
async def test_a_failure_settled_on_the_spot_leaves_the_rest_of_a_pool_batch_in_order_chunks() -> None:
    handler = PooledRefusesN1()
    channel = Channel(handler, concurrency=4)
    channel.deliverer._attempts._mean = 1e-6  # calls measured quick: batches go out in order, a chunk a call
    added = counting_scheduler_adds(channel)
    jobs = channel.submit(*(plain(n) for n in range(5)), key=None)
    await channel.wait_finished(5)
    assert [sent[0] for sent in handler.sent] == [f"n{n}" for n in range(5)]
    assert added == [jobs[1]]
