"""A consumed batch becomes jobs, and a batch delivered at once is finished, a partition at a time."""

from __future__ import annotations

from confluent_kafka import KafkaError, Message

from notifyd.channel.job import Job, consumed, finish_all
from notifyd.channel.offsets import OffsetTracker

A, B = ("a", 0), ("a", 1)


def message(partition: tuple[str, int], offset: int, key: bytes | None = b"k") -> Message:
    return Message(topic=partition[0], partition=partition[1], offset=offset, key=key, value=b"{}")


def test_each_readable_message_becomes_a_job_in_order_with_its_offset_dispatched() -> None:
    tracker = OffsetTracker()
    tracker.forget([B])  # B was revoked once: its jobs belong to its new generation
    errors: list[Message] = []
    end = Message(topic="a", partition=0, offset=9, error=KafkaError(KafkaError._PARTITION_EOF))
    batch = [message(A, 5), message(B, 2, key=None), end, message(A, 6, key=b"j")]
    jobs = consumed(batch, tracker, on_error=errors.append)
    assert errors == [end]
    assert [(job.partition, job.message.offset()) for job in jobs] == [(A, 5), (B, 2), (A, 6)]
    assert [job.key for job in jobs] == [(A, b"k"), (B, 2, None), (A, b"j")]
    assert [job.generation for job in jobs] == [0, 1, 0]
    assert tracker.unfinished([A]) == 2 and tracker.unfinished([B]) == 1


def test_finishing_a_batch_moves_each_partition_s_watermark() -> None:
    tracker = OffsetTracker()
    jobs = consumed([message(A, 5), message(B, 2), message(A, 6), message(A, 7)], tracker, on_error=print)
    finish_all([jobs[2], jobs[1], jobs[0]], tracker)
    assert tracker.take_moved() == {A: 7, B: 3}
    assert tracker.unfinished() == 1


def test_a_job_of_a_revoked_generation_is_not_finished_by_a_batch() -> None:
    tracker = OffsetTracker()
    old: list[Job] = consumed([message(A, 1)], tracker, on_error=print)
    tracker.forget([A])
    new = consumed([message(A, 1)], tracker, on_error=print)
    finish_all(old, tracker)
    assert tracker.take_moved() == {}
    finish_all(new, tracker)
    assert tracker.take_moved() == {A: 2}


def test_a_partition_s_jobs_share_its_tuple_and_finishing_does_not_rely_on_it() -> None:
    tracker = OffsetTracker()
    jobs = consumed([message(A, 1), message(B, 1), message(A, 2)], tracker, on_error=print)
    assert jobs[0].partition is jobs[2].partition  # finish_all's fast path: one run while the tuple is the same
    # Jobs built elsewhere (the delay reader's) hold tuples of their own: equal ones still finish as one run.
    mixed = [Job(job.message, (job.partition[0], job.partition[1]), job.key, job.generation) for job in jobs]
    assert mixed[0].partition is not mixed[2].partition
    finish_all([mixed[2], mixed[1], mixed[0]], tracker)
    assert tracker.take_moved() == {A: 3, B: 2}
    assert tracker.unfinished() == 0
