"""Putting notifications on the benchmark broker: topics, a bulk fill, a steady rate."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

USERS = 1000  # keys: per-key order holds, yet plenty of keys run in parallel


def create_topics(bootstrap: str, names: Iterable[str], *, partitions: int) -> None:
    """Create ``names`` and wait until the metadata lists them."""
    names = list(names)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(n, num_partitions=partitions) for n in names]).values():
        try:
            future.result(timeout=15)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        topics = admin.list_topics(timeout=5).topics
        if all(n in topics and not topics[n].error for n in names):
            return
        time.sleep(0.1)
    raise TimeoutError(f"topics {names} did not appear")


def notification_id(index: int) -> str:
    """The ``id`` of the ``index``-th notification of a topic."""
    return f"n-{index}"


def random_id(_index: int) -> str:
    """A UUIDv4, as many services make them: each lands on a random page of the ledger's index."""
    return str(uuid.uuid4())


def _every(index: int) -> bool:
    return True


def notification(index: int, *, ids: Callable[[int], str] = notification_id, **data: float) -> bytes:
    """A small notification (~150 bytes of JSON), like a typical email event; ``ids`` makes its id."""
    return json.dumps({"id": ids(index), "to": f"user{index % USERS}@example.com", "subject": "Your code",
                       "body": f"Your sign-in code is {index % 1_000_000:06d}.", "data": data}).encode()


def fill(bootstrap: str, topic: str, count: int, *, keep: Callable[[int], bool] = _every,
         ids: Callable[[int], str] = notification_id) -> int:
    """Produce the first ``count`` notifications that ``keep`` (by index) as fast as the broker takes them.

    Returns how many were produced.
    """
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000,
                         "queue.buffering.max.messages": 500_000, "compression.type": "none"})
    kept = [index for index in range(count) if keep(index)]
    for index in kept:
        _produce(producer, topic, index, notification(index, ids=ids))
    _flush(producer)
    return len(kept)


def steady_count(*, per_second: int, seconds: float) -> int:
    """How many notifications ``steady`` produces: known before it starts, e.g. to a reader in another process."""
    return round(per_second * seconds)


def steady(bootstrap: str, topic: str, *, per_second: int, seconds: float,
           keep: Callable[[int], bool] = _every) -> int:
    """Produce ``steady_count`` notifications at ``per_second``, each stamped with ``data.sent_at``.

    Those ``keep`` refuses (by index) are left out, so the others keep their send times.
    Returns how many were produced.
    """
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    total = steady_count(per_second=per_second, seconds=seconds)
    start = time.monotonic()
    index = produced = 0
    while index < total:
        due = min(total, (time.monotonic() - start) * per_second)
        while index < due:
            if keep(index):
                _produce(producer, topic, index, notification(index, sent_at=time.time()))
                produced += 1
            index += 1
        producer.poll(0)
        time.sleep(0.001)  # the pacing tick: 1 ms keeps sends within a millisecond of their schedule
    _flush(producer)
    return produced


def _produce(producer: Producer, topic: str, index: int, value: bytes) -> None:
    while True:
        try:
            producer.produce(topic, value, key=f"user{index % USERS}".encode())
            return
        except BufferError:  # the local queue is full: let deliveries drain it
            producer.poll(0.05)


def _flush(producer: Producer) -> None:
    if producer.flush(60):
        raise RuntimeError("messages left undelivered after 60 s")
