"""The DelayGate over a recording consumer: hold, rewind, resume, hop or deliver (no broker needed)."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import structlog
from confluent_kafka import Message, TopicPartition

from notifyd.channel.delaygate import DelayGate
from notifyd.channel.job import Job
from notifyd.records import delayheaders as dh
from tests.kit.loops import on_a_loop

TIER = ("c.delay.1s", 0)
NOW = 1_000_000.0


class RecordingConsumer:
    """Records the calls the gate makes, and the thread each is made on."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int, int]] = []
        self.threads: set[str] = set()

    def _record(self, name: str, partitions: list[TopicPartition] | TopicPartition) -> None:
        self.threads.add(threading.current_thread().name)
        for tp in partitions if isinstance(partitions, list) else [partitions]:
            self.calls.append((name, tp.topic, tp.partition, tp.offset))

    def pause(self, partitions: list[TopicPartition]) -> None:
        self._record("pause", partitions)

    def resume(self, partitions: list[TopicPartition]) -> None:
        self._record("resume", partitions)

    def seek(self, partition: TopicPartition) -> None:
        self._record("seek", partition)


def record(offset: int, *, hop_due: float, due: float, attempts: int = 2) -> Message:
    state = dh.DelayState(attempts=attempts, due=due, hop_due=hop_due, source_topic="src", source_partition=1,
                          source_offset=40 + offset, first_failed_at=NOW - 10, last_error="E: x")
    return Message(topic=TIER[0], partition=TIER[1], offset=offset, key=b"k", value=b"{}",
                   headers=[("trace", b"t"), *dh.encode(state)])


def gate(consumer: RecordingConsumer, io: ThreadPoolExecutor, clock: list[float],
         forwarded: list[Job]) -> DelayGate:
    return DelayGate(consumer=consumer, io=io, channel="c", log=structlog.get_logger("test"),
                     dispatch=lambda _partition, _offset: 7, forward=forwarded.append, clock=lambda: clock[0])


@on_a_loop
async def test_a_record_not_due_holds_its_partition_until_it_is_then_rewinds_and_resumes() -> None:
    consumer, forwarded, clock = RecordingConsumer(), [], [NOW]
    with ThreadPoolExecutor(1, thread_name_prefix="io") as io:
        tiers = gate(consumer, io, clock, forwarded)
        jobs: list[Job] = []
        for message in (record(5, hop_due=NOW + 0.3, due=NOW + 0.3), record(6, hop_due=NOW + 0.4, due=NOW + 0.4)):
            tiers.accept(message, TIER, jobs)
        assert jobs == [] and forwarded == []  # the second is dropped: it is read again after the resume
        await asyncio.sleep(0.1)
        assert consumer.calls == [("pause", *TIER, -1001), ("seek", *TIER, 5)]
        deadline = time.monotonic() + 2
        while len(consumer.calls) < 4:
            assert time.monotonic() < deadline, consumer.calls
            await asyncio.sleep(0.02)
        assert consumer.calls[2:] == [("seek", *TIER, 5), ("resume", *TIER, -1001)]
        assert consumer.threads == {"io_0"}  # never the loop's thread
        clock[0] = NOW + 0.3
        tiers.accept(record(5, hop_due=NOW + 0.3, due=NOW + 0.3), TIER, jobs)
    assert len(jobs) == 1 and jobs[0].attempts == 2 and jobs[0].delayed.source_offset == 45
    assert jobs[0].first_failed_at == NOW - 10 and jobs[0].generation == 7


@on_a_loop
async def test_a_due_hop_with_its_delivery_ahead_moves_on_and_a_revoked_hold_lapses() -> None:
    consumer, forwarded, clock = RecordingConsumer(), [], [NOW]
    with ThreadPoolExecutor(1, thread_name_prefix="io") as io:
        tiers = gate(consumer, io, clock, forwarded)
        jobs: list[Job] = []
        tiers.accept(record(1, hop_due=NOW - 0.5, due=NOW + 3600), TIER, jobs)
        assert jobs == [] and len(forwarded) == 1 and forwarded[0].delayed.due == NOW + 3600
        tiers.accept(record(2, hop_due=NOW + 60, due=NOW + 60), TIER, jobs)
        tiers.forget([TIER])  # revoked while held: the hold and its timer go
        clock[0] = NOW + 60
        tiers.accept(record(2, hop_due=NOW + 60, due=NOW + 60), TIER, jobs)  # read again after a new assignment
        await asyncio.sleep(0.1)
    assert [job.message.offset() for job in jobs] == [2]  # not dropped as if still held
    assert ("resume", *TIER, -1001) not in consumer.calls  # the rebalancer resumes a revoked partition
