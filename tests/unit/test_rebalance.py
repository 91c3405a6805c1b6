"""Giving partitions up from either thread librdkafka may call back on (pure logic, no broker)."""

from __future__ import annotations

import asyncio
import threading

import pytest
import structlog
from confluent_kafka import TopicPartition

from notifyd.channel.offsets import OffsetTracker
from notifyd.channel.rebalance import Rebalancer
from tests.kit.loops import on_a_loop
from tests.kit.wait import wait_until_async

PARTITION = ("t", 0)


def finished_up_to(offset: int) -> OffsetTracker:
    tracker = OffsetTracker()
    for done in range(offset):
        tracker.dispatch(PARTITION, done)
        tracker.finish(PARTITION, done, 0)
    return tracker


def rebalancer(tracker: OffsetTracker, committed: list, busy) -> Rebalancer:
    found = Rebalancer(tracker=tracker, commit=committed.append, busy=busy, serve_dlq=lambda: None,
                       revoke_timeout=30.0, log=structlog.get_logger("test"))
    found.loop = asyncio.get_running_loop()
    return found


@pytest.mark.timeout(10)  # without the same-thread path it waits for itself forever
@on_a_loop
async def test_a_revocation_served_on_the_loops_own_thread_releases_at_once() -> None:
    # The loop consumes itself only when nothing runs; waiting for the loop here would wait forever.
    tracker, committed = finished_up_to(6), []
    rebalancer(tracker, committed, busy=lambda _partitions: False).on_revoke(None, [TopicPartition(*PARTITION)])
    assert committed == [{PARTITION: 6}]
    assert tracker.generation(PARTITION) == 1 and tracker.committable([PARTITION]) == {}


@on_a_loop
async def test_a_revocation_on_the_io_thread_waits_for_the_partitions_running_work() -> None:
    tracker, committed, asked = finished_up_to(3), [], []

    def busy(partitions: set) -> bool:  # running for the first three looks
        asked.append(partitions)
        return len(asked) <= 3

    revoking = rebalancer(tracker, committed, busy=busy)
    thread = threading.Thread(target=revoking.on_revoke, args=(None, [TopicPartition(*PARTITION)]))
    thread.start()
    await wait_until_async(lambda: not thread.is_alive(), timeout=5, what="the revocation to finish")
    assert len(asked) == 4 and asked[0] == {PARTITION}
    assert committed == [{PARTITION: 3}]


def test_a_member_is_joining_until_its_first_assignment_or_until_no_subscribed_topic_exists() -> None:
    def subscribed(*topics: str) -> Rebalancer:
        return Rebalancer(tracker=OffsetTracker(), commit=lambda _offsets: None, busy=lambda _partitions: False,
                          serve_dlq=lambda: None, revoke_timeout=0.0, log=structlog.get_logger("test"), topics=topics)

    assigned = subscribed("t")
    assert assigned.joining
    assigned.on_assign(None, [])  # the group settled and left it nothing: that is an assignment too
    assert not assigned.joining
    missing = subscribed("t", "u")
    missing.topic_missing("t")
    assert missing.joining  # "u" may still be assigned
    missing.topic_missing("u")
    assert not missing.joining
    assert not subscribed().joining
