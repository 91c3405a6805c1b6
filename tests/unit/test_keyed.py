"""Per-key FIFO scheduling with a running limit."""

from __future__ import annotations

from notifyd.channel.keyed import KeyedScheduler


def test_same_key_runs_one_at_a_time_in_order() -> None:
    scheduler: KeyedScheduler[str] = KeyedScheduler(limit=10)
    for item in ("a1", "a2", "a3"):
        scheduler.add("a", item)
    scheduler.add("b", "b1")
    assert scheduler.take() == ["a1", "b1"]
    assert scheduler.take() == []
    scheduler.done("a")
    assert scheduler.take() == ["a2"]
    scheduler.done("a")
    scheduler.done("b")
    assert scheduler.take() == ["a3"]
    scheduler.done("a")
    assert scheduler.queued == 0 and scheduler.running == 0


def test_the_limit_caps_running_items() -> None:
    scheduler: KeyedScheduler[int] = KeyedScheduler(limit=2)
    for n in range(5):
        scheduler.add(n, n)
    assert scheduler.take() == [0, 1]
    scheduler.done(0)
    assert scheduler.take() == [2]
    assert scheduler.running == 2


def test_a_retrying_item_keeps_its_key_but_frees_its_slot() -> None:
    scheduler: KeyedScheduler[str] = KeyedScheduler(limit=1)
    scheduler.add("a", "a1")
    scheduler.add("a", "a2")
    scheduler.add("b", "b1")
    assert scheduler.take() == ["a1"]
    scheduler.pause()  # a1 waits for its retry
    assert scheduler.take() == ["b1"]  # another key uses the slot; a2 must not overtake a1
    scheduler.done("b")
    scheduler.resume("a1")
    assert scheduler.take() == ["a1"]
    scheduler.done("a")
    assert scheduler.take() == ["a2"]


def test_idle_until_an_item_is_added_and_again_once_its_key_is_done() -> None:
    scheduler: KeyedScheduler[str] = KeyedScheduler(limit=2)
    assert scheduler.idle
    scheduler.add("k", "a")
    assert not scheduler.idle  # ready, not yet running
    scheduler.take()
    scheduler.pause()  # waiting for a retry: no slot, but it holds its key
    assert not scheduler.idle
    scheduler.resume("a")
    scheduler.take()
    scheduler.done("k")
    assert scheduler.idle
