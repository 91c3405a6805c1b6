"""How the channel process takes messages from librdkafka's queue (a fake consumer: pure logic)."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import structlog
from structlog.testing import capture_logs

from notifyd.channel.fetching import close_consumer, fetch_ready

LOG = structlog.get_logger("tests.fetch")


class QueuedConsumer:
    """``consume`` answers from scripted replies and records how it was called."""

    def __init__(self, *replies: list[str]) -> None:
        self.replies, self.calls = list(replies), []

    def consume(self, size: int, timeout: float) -> list[str]:
        self.calls.append((size, timeout))
        return self.replies.pop(0)[:size] if self.replies else []


def test_what_is_already_fetched_is_taken_without_waiting():
    consumer = QueuedConsumer(["a", "b", "c"])
    assert fetch_ready(consumer, 500, 0.1) == ["a", "b", "c"]
    assert consumer.calls == [(500, 0)]


def test_the_rest_of_a_fetch_response_comes_with_its_first_message():
    # Waiting wakes on the first message; what was queued with it must not wait for the next round.
    consumer = QueuedConsumer([], ["a"], ["b", "c"])
    assert fetch_ready(consumer, 500, 0.1) == ["a", "b", "c"]
    assert consumer.calls == [(500, 0), (1, 0.1), (499, 0)]


def test_nothing_within_the_timeout_and_a_batch_of_one():
    nothing = QueuedConsumer([], [])
    assert fetch_ready(nothing, 500, 0.1) == []
    assert nothing.calls == [(500, 0), (1, 0.1)]
    one = QueuedConsumer([], ["a"])
    assert fetch_ready(one, 1, 0.1) == ["a"]
    assert one.calls == [(1, 0), (1, 0.1)]


class Unassigned:
    """A consumer that holds no partitions: leaving its group is one ``unsubscribe``."""

    def unsubscribe(self) -> None:
        pass

    def assignment(self) -> list:
        return []


class ClosingConsumer(Unassigned):
    """``close`` waits until ``release`` is set, then raises ``error`` if one is given."""

    def __init__(self, *, release: threading.Event, error: Exception | None = None) -> None:
        self.release, self.error, self.closed_on = release, error, None

    def close(self) -> None:
        self.closed_on = threading.current_thread()
        self.release.wait()
        if self.error is not None:
            raise self.error


def test_a_close_that_never_returns_is_given_up_after_its_timeout_on_a_thread_that_cannot_hold_the_exit():
    release = threading.Event()
    consumer = ClosingConsumer(release=release)
    started = time.monotonic()
    with capture_logs() as logs:
        asyncio.run(close_consumer(consumer, after=None, log=LOG, timeout=0.2))
    assert time.monotonic() - started < 5
    assert consumer.closed_on.daemon and consumer.closed_on.is_alive()
    assert [e["event"] for e in logs] == ["the consumer did not close in time; its partitions move after the session timeout"]
    release.set()


def test_a_close_that_finishes_is_waited_for_and_its_error_raised():
    release = threading.Event()
    release.set()
    with capture_logs() as logs:
        asyncio.run(close_consumer(ClosingConsumer(release=release), after=None, log=LOG, timeout=5))
    assert logs == []
    with pytest.raises(RuntimeError, match="broker handle destroyed"):
        asyncio.run(close_consumer(ClosingConsumer(release=release, error=RuntimeError("broker handle destroyed")),
                                   after=None, log=LOG, timeout=5))


def test_the_close_starts_only_after_the_calls_queued_on_the_consumers_executor():
    order, io = [], ThreadPoolExecutor(1)
    io.submit(lambda: (time.sleep(0.1), order.append("queued resume")))

    class Recording(Unassigned):
        def close(self) -> None:
            order.append("close")

    asyncio.run(close_consumer(Recording(), after=io, log=LOG, timeout=5))
    io.shutdown()
    assert order == ["queued resume", "close"]


class Leaving:
    """A consumer whose revocation comes with its ``revoked_at``-th ``consume`` after ``unsubscribe``."""

    def __init__(self, revoked_at: int) -> None:
        self.revoked_at, self.calls, self.assigned = revoked_at, [], ["t[0]"]

    def unsubscribe(self) -> None:
        self.calls.append("unsubscribe")

    def assignment(self) -> list:
        return self.assigned

    def consume(self, size: int, timeout: float) -> list:
        self.calls.append("consume")
        if self.calls.count("consume") == self.revoked_at:
            self.assigned = []
        return []

    def close(self) -> None:
        self.calls.append("close")


def test_the_group_is_left_before_the_close_so_no_rebalance_callback_runs_inside_it():
    # librdkafka #4527/#4884: a callback served inside close() can hang with the GIL held.
    consumer = Leaving(revoked_at=2)
    asyncio.run(close_consumer(consumer, after=None, log=LOG, timeout=5))
    assert consumer.calls == ["unsubscribe", "consume", "consume", "close"]


def test_a_revocation_that_never_comes_is_waited_for_until_the_leave_timeout_then_the_consumer_closes(
        monkeypatch):
    monkeypatch.setattr("notifyd.channel.fetching.LEAVE_TIMEOUT", 0.3)
    consumer, started = Leaving(revoked_at=0), time.monotonic()
    asyncio.run(close_consumer(consumer, after=None, log=LOG, timeout=5))
    assert 0.3 <= time.monotonic() - started < 2
    assert consumer.calls[0] == "unsubscribe" and consumer.calls[-1] == "close"
