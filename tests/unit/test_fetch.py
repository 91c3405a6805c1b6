"""How the channel process takes messages from librdkafka's queue (a fake consumer: pure logic)."""

from __future__ import annotations

from notifyd.channel.fetching import fetch_ready


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
