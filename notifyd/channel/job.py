"""A consumed message on its way through a channel, and how log lines name it."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message

from notifyd.api import Notification
from notifyd.channel.offsets import OffsetTracker
from notifyd.records.delayheaders import DelayState
from notifyd.records.notification import InvalidNotification, parse_notification


@dataclass(eq=False, slots=True)
class Job:
    """One consumed message on its way through the channel."""

    message: Message
    partition: tuple[str, int]
    key: Hashable
    generation: int
    notification: Notification | None = None
    notification_id: str | None = None  # read from an invalid record when possible
    attempts: int = 0
    delayed: DelayState | None = None  # read from a delay topic: its attempts, due times and source
    first_failed_at: float | None = None  # epoch seconds
    # ordering: strict (notifyd.channel.strict): in its key's queue, so its outcome pops it;
    # handed to the delay topics, so its offset's finish is no outcome.
    queued: bool = False
    handed_over: bool = False


def consumed(messages: list[Message], tracker: OffsetTracker, *, on_error: Callable[[Message], None]) -> list[Job]:
    """The jobs of a consumed batch, their offsets dispatched to ``tracker`` a partition at a time.

    A message that carries an error (end of partition, a missing topic) goes to ``on_error``.
    """
    jobs: list[Job] = []
    runs: dict[tuple[str, int], list[int]] = {}
    generations: dict[tuple[str, int], int] = {}
    for message in messages:
        if message.error() is not None:
            on_error(message)
            continue
        partition, offset, key = (message.topic(), message.partition()), message.offset(), message.key()
        if partition not in runs:
            runs[partition], generations[partition] = [], tracker.generation(partition)
        runs[partition].append(offset)
        jobs.append(Job(message, partition, (partition, key) if key is not None else (partition, offset, None),
                        generations[partition]))
    for partition, offsets in runs.items():
        tracker.dispatch_run(partition, offsets)
    return jobs


def finish_all(jobs: Iterable[Job], tracker: OffsetTracker) -> None:
    """Finish the offsets of ``jobs`` in ``tracker``, a partition's at a time.

    For a batch delivered at once: per job, the calls cost more than the bookkeeping.
    """
    runs: dict[tuple[tuple[str, int], int], list[int]] = {}
    for job in jobs:
        run = runs.get((job.partition, job.generation))
        if run is None:
            run = runs[job.partition, job.generation] = []
        run.append(job.message.offset())
    for (partition, generation), offsets in runs.items():
        tracker.finish_run(partition, offsets, generation)


def where(job: Job) -> dict[str, Any]:
    """The log fields that locate ``job``: its record and, when known, its notification id."""
    notification_id = job.notification.id if job.notification else job.notification_id
    return {"topic": job.partition[0], "partition": job.partition[1], "offset": job.message.offset(),
            "notification_id": notification_id}


def source_timestamp(job: Job) -> int | None:
    """The timestamp (epoch ms) of the record the channel first read ``job`` from, if it had one."""
    return job.delayed.source_timestamp if job.delayed is not None else record_timestamp(job.message)


def record_timestamp(message: Message) -> int | None:
    """``message``'s own timestamp (epoch ms), if it has one."""
    kind, timestamp = message.timestamp()
    return None if kind == TIMESTAMP_NOT_AVAILABLE else timestamp


def parse(job: Job, *, channel: str) -> InvalidNotification | None:
    """Parse ``job``'s record once (``job.notification``); the error if it is not a valid notification."""
    if job.notification is None:
        try:
            job.notification = parse_notification(job.message.value(), channel=channel, headers=job.message.headers())
        except InvalidNotification as exc:
            job.notification_id = exc.notification_id
            return exc
    return None
