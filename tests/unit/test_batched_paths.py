"""The batched delivery paths: a blocking handler's chunks on the pool, a coroutine run to its first suspension.

Unit tests of the Deliverer with real handlers and a real BlockingPool, as in
test_delivery_paths.py (whose ``Channel`` they reuse); no broker needed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, ClassVar

from notifyd.api import Handler, Notification, PermanentError, RetryableError
from notifyd.channel.attempt import CHUNK_SECONDS, Attempts
from tests.kit.loops import on_a_loop
from tests.unit.test_delivery_paths import Channel, Recorded, job, plain


class Blocking(Handler):
    """A plain sync handler: records (id, attempt, thread) of each call; fails the attempts it is told to."""

    blocking: ClassVar[bool] = True

    def __init__(self, *, failing: dict[str, int] | None = None, hang: set[str] | None = None) -> None:
        super().__init__()
        self.sent: list[tuple[str, int, int]] = []
        self.failing = failing or {}  # id -> attempts that fail
        self.hang = hang or set()  # ids whose first attempt never answers
        self.release = threading.Event()

    def send(self, notification: Notification) -> None:
        if notification.id in self.hang and notification.attempt == 1:
            self.release.wait(10)
            return
        if notification.attempt <= self.failing.get(notification.id, 0):
            raise RetryableError("not yet")
        self.sent.append((notification.id, notification.attempt, threading.get_ident()))


def warmed(channel: Channel, mean: float = 1e-6) -> Channel:
    """As if the handler's calls had lately taken ``mean`` seconds: chunks of many notifications."""
    channel.deliverer._attempts._mean = mean
    return channel


def keyed(count: int, keys: int) -> list[Any]:
    return [job(n, plain(n), key=f"k{n % keys}".encode()) for n in range(count)]


@on_a_loop
async def test_ready_notifications_of_a_quick_blocking_handler_share_pool_calls() -> None:
    handler = Blocking()
    channel = warmed(Channel(handler, concurrency=4))
    jobs = keyed(40, keys=40)
    channel.deliverer.submit(jobs)
    await channel.wait_finished(40)
    assert sorted(sent[0] for sent in handler.sent) == sorted(f"n{n}" for n in range(40))
    assert channel.pool.calls < 40 / 4  # a chunk per free slot, not a call per notification
    assert threading.get_ident() not in {sent[2] for sent in handler.sent}
    assert not channel.deliverer.busy() and channel.deliverer.running == 0


@on_a_loop
async def test_a_slow_blocking_handler_still_gets_one_call_per_notification_in_parallel() -> None:
    assert Attempts.chunk_size.__doc__  # the rule under test: CHUNK_SECONDS of recent mean duration
    channel = warmed(Channel(Blocking(), concurrency=4), mean=CHUNK_SECONDS * 5)
    channel.deliverer.submit(keyed(8, keys=8))
    await channel.wait_finished(8)
    assert channel.pool.calls == 8


@on_a_loop
async def test_chunks_keep_the_order_of_each_key() -> None:
    handler = Blocking()
    channel = warmed(Channel(handler, concurrency=3))
    jobs = keyed(300, keys=7)
    channel.deliverer.submit(jobs)
    await channel.wait_finished(300)
    for key in range(7):
        ids = [sent[0] for sent in handler.sent if int(sent[0][1:]) % 7 == key]
        assert ids == [f"n{n}" for n in range(key, 300, 7)]


@on_a_loop
async def test_a_failure_inside_a_chunk_holds_back_only_its_own_key() -> None:
    handler = Blocking(failing={"n1": 1})
    channel = warmed(Channel(handler, concurrency=4, retries=2))
    jobs = [job(0, plain(0), key=b"a"), job(1, plain(1), key=b"b"), job(2, plain(2), key=b"b"),
            job(3, plain(3), key=b"a")]
    channel.deliverer.submit(jobs)
    await channel.wait_finished(4)
    sent = [s[0] for s in handler.sent]
    assert sent.index("n1") < sent.index("n2")  # n2 waited for n1's retry
    assert sent.index("n0") < sent.index("n3")
    assert [(s[0], s[1]) for s in handler.sent if s[0] == "n1"] == [("n1", 2)]
    assert not channel.deliverer.busy() and channel.deliverer.running == 0


@on_a_loop
async def test_a_permanent_failure_inside_a_chunk_settles_only_that_notification() -> None:
    class RefusesN2(Blocking):
        def send(self, notification: Notification) -> None:
            if notification.id == "n2":
                raise PermanentError("refused")
            super().send(notification)

    handler = RefusesN2()
    channel = warmed(Channel(handler, concurrency=2))
    channel.deliverer.submit(keyed(6, keys=6))
    await channel.wait_finished(6)
    assert sorted(s[0] for s in handler.sent) == ["n0", "n1", "n3", "n4", "n5"]


@on_a_loop
async def test_the_timeout_cuts_a_chunk_short_and_what_it_never_reached_goes_out_again() -> None:
    handler = Blocking(hang={"n1"})
    channel = warmed(Recorded(handler, concurrency=1, timeout=0.2))
    jobs = keyed(4, keys=4)
    channel.deliverer.submit(jobs)
    await channel.wait_finished(4)
    handler.release.set()
    assert sorted((s[0], s[1]) for s in handler.sent) == [("n0", 1), ("n1", 2), ("n2", 1), ("n3", 1)]
    assert channel.errors == ["no answer within the channel timeout of 0.2 s"]
    assert not channel.deliverer.busy() and len(channel.deliverer._deadlines) == 0
    assert channel.deliverer._attempts.chunk_size() == 1  # after a hang, one call each for a while


class Counting(Handler):
    """An ``async def send`` that finishes without suspending, or suspends for the ids it is told."""

    def __init__(self, *, suspend: set[str] | None = None, fail: set[str] | None = None) -> None:
        super().__init__()
        self.sent: list[tuple[str, int, Any]] = []
        self.suspend, self.fail = suspend or set(), fail or set()

    async def send(self, notification: Notification) -> None:  # type: ignore[override]
        if notification.id in self.suspend:
            async with asyncio.timeout(5):  # binds itself to the task it runs in
                await asyncio.sleep(0.01)
        if notification.id in self.fail and notification.attempt == 1:
            raise RetryableError("not yet")
        self.sent.append((notification.id, notification.attempt, asyncio.current_task()))


@on_a_loop
async def test_coroutines_that_never_suspend_share_one_task_per_batch() -> None:
    handler = Counting()
    channel = Channel(handler)
    jobs = channel.submit(*(plain(n) for n in range(50)), key=None)
    await channel.wait_finished(50)
    assert channel.finished == jobs
    tasks = {sent[2] for sent in handler.sent}
    assert len(tasks) == 1 and asyncio.current_task() not in tasks


@on_a_loop
async def test_a_coroutine_that_suspends_goes_on_in_its_own_task_and_the_rest_are_delivered() -> None:
    handler = Counting(suspend={"n3", "n7"})
    channel = Channel(handler, concurrency=4)
    channel.submit(*(plain(n) for n in range(10)), key=None)
    await channel.wait_finished(10)
    assert sorted(sent[0] for sent in handler.sent) == sorted(f"n{n}" for n in range(10))
    assert asyncio.current_task() not in {sent[2] for sent in handler.sent}
    await asyncio.sleep(0.05)
    assert not channel.deliverer.busy() and len(channel.deliverer._deadlines) == 0


@on_a_loop
async def test_a_suspended_coroutine_keeps_its_keys_order_and_the_channel_timeout() -> None:
    class Hangs(Counting):
        async def send(self, notification: Notification) -> None:  # type: ignore[override]
            if notification.id == "n0" and notification.attempt == 1:
                await asyncio.Event().wait()
            await super().send(notification)

    handler = Hangs()
    channel = Recorded(handler, timeout=0.05)
    jobs = [job(0, plain(0), key=b"a"), job(1, plain(1), key=b"a"), job(2, plain(2), key=b"b")]
    channel.deliverer.submit(jobs)
    await channel.wait_finished(3)
    assert [(s[0], s[1]) for s in handler.sent] == [("n2", 1), ("n0", 2), ("n1", 1)]
    assert channel.errors == ["no answer within the channel timeout of 0.05 s"]


@on_a_loop
async def test_a_coroutine_failure_in_a_batch_holds_back_only_its_key() -> None:
    handler = Counting(fail={"n1"})
    channel = Channel(handler, retries=2)
    jobs = [job(0, plain(0), key=b"a"), job(1, plain(1), key=b"b"), job(2, plain(2), key=b"b"),
            job(3, plain(3), key=b"a")]
    channel.deliverer.submit(jobs)
    await channel.wait_finished(4)
    sent = [s[0] for s in handler.sent]
    assert sent.index("n1") < sent.index("n2") and sent.index("n0") < sent.index("n3")


@on_a_loop
async def test_jobs_waiting_in_a_batch_count_as_busy_for_their_partition() -> None:
    channel = Channel(Counting())
    channel.submit(plain(0), plain(1))
    assert channel.deliverer.busy() and channel.deliverer.busy({("t", 0)}) and not channel.deliverer.busy({("t", 1)})
    deadline = time.monotonic() + 5
    while channel.deliverer.busy():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.005)
    assert len(channel.finished) == 2


@on_a_loop
async def test_a_bug_while_a_batch_runs_ends_its_task_but_the_jobs_after_it_are_delivered() -> None:
    handler = Counting()
    channel = Channel(handler)
    finished = channel.deliverer._on_finished

    def fails_for_n0(done: Any) -> None:
        finished(done)
        if done.notification.id == "n0":
            raise RuntimeError("a bug after the offset was finished")

    channel.deliverer._on_finished = fails_for_n0
    asyncio.get_running_loop().set_exception_handler(lambda _loop, _context: None)  # the task that died
    channel.submit(plain(0), plain(1), plain(2), key=None)
    await channel.wait_finished(3)
    assert [sent[0] for sent in handler.sent] == ["n0", "n1", "n2"]
    channel.submit(plain(3), key=None)  # and the channel goes on
    await channel.wait_finished(4)


@on_a_loop
async def test_a_handler_of_middling_speed_gets_chunks_through_the_scheduler() -> None:
    handler = Blocking()
    channel = warmed(Channel(handler, concurrency=4), mean=CHUNK_SECONDS / 8)  # chunks of 8, not in order
    jobs = keyed(64, keys=64)
    channel.deliverer.submit(jobs)
    assert not channel.deliverer._batch  # the scheduler took them
    await channel.wait_finished(64)
    assert sorted(s[0] for s in handler.sent) == sorted(f"n{n}" for n in range(64))
    assert channel.pool.calls <= 64 / 8 + 4
    assert not channel.deliverer.busy() and channel.deliverer.running == 0


@on_a_loop
async def test_an_invalid_record_in_an_in_order_batch_is_settled_and_the_rest_delivered_in_order() -> None:
    handler = Blocking()
    channel = warmed(Channel(handler, concurrency=4))
    jobs = [job(0, plain(0), key=b"a"), job(1, {"no": "id"}, key=b"a"), job(2, plain(2), key=b"a"),
            job(3, plain(3), key=b"b")]
    channel.deliverer.submit(jobs)
    assert channel.deliverer.busy()  # on the pool, still in the batch
    await channel.wait_finished(4)
    sent = [s[0] for s in handler.sent]
    assert sorted(sent) == ["n0", "n2", "n3"] and sent.index("n0") < sent.index("n2")
    assert not channel.deliverer.busy() and channel.deliverer.running == 0
