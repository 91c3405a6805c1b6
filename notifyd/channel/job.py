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
    runs: dict[tuple[str, int], tuple[tuple[str, int], int, list[int]]] = {}  # partition -> itself, generation, offsets
    for message in messages:
        if message.error() is not None:
            on_error(message)
            continue
        partition = (message.topic(), message.partition())
        run = runs.get(partition)
        if run is None:
            run = runs[partition] = (partition, tracker.generation(partition), [])
        partition, generation, offsets = run  # one tuple a partition: finish_all tells runs apart by identity
        offset, key = message.offset(), message.key()
        offsets.append(offset)
        jobs.append(Job(message, partition, (partition, key) if key is not None else (partition, offset, None),
                        generation))
    for partition, _generation, offsets in runs.values():
        tracker.dispatch_run(partition, offsets)
    return jobs


def finish_all(jobs: Iterable[Job], tracker: OffsetTracker) -> None:
    """Finish the offsets of ``jobs`` in ``tracker``, a partition's at a time.

    For a batch delivered at once: per job, the calls cost more than the bookkeeping.
    """
    runs: dict[tuple[tuple[str, int], int], list[int]] = {}
    partition: tuple[str, int] | None = None
    generation, run = -1, []
    for job in jobs:
        # Consumed batches come a partition at a time, its jobs sharing one tuple (``consumed``).
        if job.partition is not partition or job.generation != generation:
            partition, generation = job.partition, job.generation
            run = runs.setdefault((partition, generation), [])
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
