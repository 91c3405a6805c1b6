"""The contiguous finished watermark: what may be committed."""

from __future__ import annotations

import random

from notifyd.channel.offsets import OffsetTracker, PartitionOffsets

P = ("topic", 0)
Q = ("topic", 1)


def test_nothing_committable_until_the_first_offset_finishes() -> None:
    offsets = PartitionOffsets()
    for offset in (10, 11, 12):
        offsets.dispatch(offset)
    assert offsets.committable is None
    assert offsets.finish(11) is False
    assert offsets.committable is None
    assert offsets.finish(10) is True
    assert offsets.committable == 12  # 10 and 11 done, 12 is the next to redo after a crash


def test_all_finished_commits_one_past_the_last() -> None:
    offsets = PartitionOffsets()
    for offset in (0, 1, 2):
        offsets.dispatch(offset)
    for offset in (2, 0, 1):
        offsets.finish(offset)
    assert offsets.committable == 3
    assert offsets.unfinished == 0


def test_gaps_in_offsets_are_not_waited_for() -> None:
    offsets = PartitionOffsets()
    for offset in (5, 9, 20):  # compaction or transaction markers leave holes
        offsets.dispatch(offset)
    offsets.finish(5)
    assert offsets.committable == 9
    offsets.finish(20)
    assert offsets.committable == 9
    offsets.finish(9)
    assert offsets.committable == 21


def test_finishing_twice_or_an_unknown_offset_changes_nothing() -> None:
    offsets = PartitionOffsets()
    offsets.dispatch(1)
    offsets.dispatch(2)
    assert offsets.finish(7) is False
    assert offsets.finish(1) is True
    assert offsets.finish(1) is False
    assert offsets.committable == 2


def test_a_redelivered_offset_is_not_tracked_twice() -> None:
    offsets = PartitionOffsets()
    offsets.dispatch(1)
    offsets.dispatch(2)
    offsets.dispatch(2)
    offsets.finish(1)
    offsets.dispatch(1)  # already past: finishing it again must not move anything back
    assert offsets.unfinished == 1
    offsets.finish(2)
    assert offsets.committable == 3


def test_random_finish_order_never_passes_an_unfinished_offset() -> None:
    rng = random.Random(42)
    offsets = PartitionOffsets()
    dispatched = list(range(100, 600))
    for offset in dispatched:
        offsets.dispatch(offset)
    order = dispatched[:]
    rng.shuffle(order)
    done: set[int] = set()
    for offset in order:
        offsets.finish(offset)
        done.add(offset)
        if offsets.committable is not None:
            assert all(o in done for o in dispatched if o < offsets.committable)
            assert offsets.committable == 600 or offsets.committable not in done
    assert offsets.committable == 600


def test_tracker_reports_only_moved_watermarks() -> None:
    tracker = OffsetTracker()
    generation = tracker.dispatch(P, 0)
    tracker.dispatch(P, 1)
    tracker.dispatch(Q, 7)
    tracker.finish(P, 1, generation)
    assert tracker.take_moved() == {}
    tracker.finish(P, 0, generation)
    tracker.finish(Q, 7, generation)
    assert tracker.take_moved() == {P: 2, Q: 8}
    assert tracker.take_moved() == {}
    assert tracker.unfinished() == 0


def test_work_of_a_forgotten_generation_does_not_move_the_watermark() -> None:
    tracker = OffsetTracker()
    old = tracker.dispatch(P, 0)
    tracker.dispatch(Q, 0)
    assert tracker.unfinished() == 2 and tracker.unfinished([P]) == 1
    tracker.forget([P])
    assert tracker.generation(P) != old
    tracker.finish(P, 0, old)
    assert tracker.take_moved() == {}
    new = tracker.dispatch(P, 0)  # assigned again and redelivered
    tracker.finish(P, 0, old)
    assert tracker.committable([P]) == {}
    tracker.finish(P, 0, new)
    assert tracker.committable([P, Q]) == {P: 1}


def test_a_run_of_new_offsets_is_tracked_as_one_by_one() -> None:
    offsets = PartitionOffsets()
    offsets.dispatch_run([3, 4, 7])
    assert offsets.unfinished == 3
    assert offsets.finish_run([4, 3]) is True
    assert offsets.committable == 7
    offsets.dispatch_run([8, 9])
    assert offsets.finish_run([9, 7]) is True and offsets.committable == 8
    assert offsets.finish_run([8]) is True and offsets.committable == 10 and offsets.unfinished == 0


def test_a_run_that_repeats_offsets_tracks_each_once() -> None:
    offsets = PartitionOffsets()
    offsets.dispatch_run([1, 2])
    offsets.finish_run([1])
    offsets.dispatch_run([1, 2, 3, 3])  # redelivered after a seek: 1 is past, 2 is tracked
    assert offsets.unfinished == 2
    offsets.dispatch_run([5, 4])  # out of order: each as dispatch() takes it
    assert offsets.unfinished == 3
    offsets.finish_run([2, 3, 5])
    assert offsets.committable == 6


def test_finishing_a_run_twice_or_unknown_offsets_changes_nothing() -> None:
    offsets = PartitionOffsets()
    offsets.dispatch_run([1, 2, 3])
    assert offsets.finish_run([]) is False
    assert offsets.finish_run([9, 2]) is False and offsets.committable is None
    assert offsets.finish_run([1, 1, 2]) is True and offsets.committable == 3
    assert offsets.finish_run([1, 2]) is False and offsets.committable == 3


def test_finishing_runs_in_random_order_matches_finishing_one_by_one() -> None:
    rng = random.Random(7)
    by_run, one_by_one = PartitionOffsets(), PartitionOffsets()
    dispatched = sorted(rng.sample(range(1000), 300))
    by_run.dispatch_run(dispatched)
    for offset in dispatched:
        one_by_one.dispatch(offset)
    order = dispatched[:]
    rng.shuffle(order)
    for start in range(0, len(order), 17):
        run = order[start:start + 17]
        by_run.finish_run(run)
        for offset in run:
            one_by_one.finish(offset)
        assert (by_run.committable, by_run.unfinished) == (one_by_one.committable, one_by_one.unfinished)
    assert by_run.committable == dispatched[-1] + 1


def test_a_tracker_finishes_a_run_only_for_the_generation_that_owns_it() -> None:
    tracker = OffsetTracker()
    tracker.dispatch_run(P, [0, 1, 2])
    old = tracker.generation(P)
    tracker.finish_run(P, [0, 1], old)
    assert tracker.take_moved() == {P: 2}
    tracker.forget([P])
    tracker.dispatch_run(P, [2])
    tracker.finish_run(P, [2], old)
    assert tracker.take_moved() == {} and tracker.unfinished() == 1
    tracker.finish_run(P, [2], tracker.generation(P))
    assert tracker.take_moved() == {P: 3}
