"""One timer for the time limits of many tasks (pure asyncio, no broker)."""

from __future__ import annotations

import asyncio

from notifyd.channel.deadlines import Deadlines
from tests.kit.loops import on_a_loop


async def _hang() -> None:
    await asyncio.Event().wait()


@on_a_loop
async def test_a_task_past_its_limit_is_cancelled_and_reported_as_expired() -> None:
    deadlines = Deadlines(0.05)
    task = asyncio.ensure_future(_hang())
    deadlines.start(task)
    await asyncio.wait([task], timeout=2)
    assert task.cancelled()
    assert deadlines.stop(task) is True
    assert deadlines.stop(task) is False  # reported once
    assert len(deadlines) == 0


@on_a_loop
async def test_a_task_that_finishes_in_time_is_left_alone_and_a_later_one_gets_its_own_deadline() -> None:
    deadlines = Deadlines(0.05)
    first = asyncio.ensure_future(asyncio.sleep(0))
    deadlines.start(first)
    await first
    assert deadlines.stop(first) is False
    await asyncio.sleep(0.1)  # past where its deadline was: nothing fires for it, and the timer is not re-armed
    assert not first.cancelled()
    second = asyncio.ensure_future(_hang())
    deadlines.start(second)
    await asyncio.wait([second], timeout=2)
    assert second.cancelled() and deadlines.stop(second)


@on_a_loop
async def test_only_the_tasks_past_their_deadline_are_cancelled_in_start_order() -> None:
    deadlines = Deadlines(0.1)
    early = [asyncio.ensure_future(_hang()) for _ in range(3)]
    for task in early:
        deadlines.start(task)
    await asyncio.sleep(0.06)
    late = [asyncio.ensure_future(_hang()) for _ in range(3)]
    for task in late:
        deadlines.start(task)
    await asyncio.wait(early, timeout=2)
    assert all(task.cancelled() for task in early)
    assert not any(task.done() for task in late)
    assert len(deadlines) == 3  # the timer now waits for the oldest of the late ones
    await asyncio.wait(late, timeout=2)
    assert all(deadlines.stop(task) for task in early + late)
