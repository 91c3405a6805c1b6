"""Every librdkafka configuration notifyd builds, in one place.

Each is built in layers: notifyd's defaults, then the user's ``kafka.config`` (and for a
channel's consumer, its ``consumer_config``) passed through unchanged, so SASL, TLS and any
other setting reach every client; then what notifyd's guarantees require, which the user
cannot turn off.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from notifyd.config import delays
from notifyd.config.settings import ChannelSettings, KafkaSettings

# Sensible for notifications, overridable in the YAML: a new group starts at the oldest
# message, and a member joining or leaving moves only the partitions that change hands
# (cooperative rebalancing) instead of stopping every member's partitions. A group whose
# running members still use librdkafka's eager default (range,roundrobin) refuses a
# cooperative member: stop them all to upgrade, or set the old value in the YAML.
CONSUMER_DEFAULTS = {"auto.offset.reset": "earliest", "partition.assignment.strategy": "cooperative-sticky"}

# librdkafka's own read-ahead is up to 100,000 messages or 64 MiB a consumer: ~50 MiB of a
# channel process reading a backlog of small notifications, on top of the concurrency +
# a batch that the poll loop holds itself (issue 23: a channel at concurrency 1,000 stays
# under 60 MiB). ~1 MiB holds ~30 ms of notifications at the fastest a channel reads them,
# more than a fetch's round trip. At the limit librdkafka waits fetch.queue.backoff.ms
# before fetching again, 1 s by default, which throttled a 1 MiB queue to ~16k/s.
PREFETCH_MIN_KIB = 1024
PREFETCH_KIB_PER_SLOT = 1      # a wider channel reads ahead more, in case its records are large
PREFETCH_MIN_MESSAGES = 10_000  # the count limit never binds before the bytes at ~100 bytes a record
PREFETCH_BACKOFF_MS = 10
# The delay consumer's wait at the broker: a resumed tier partition is read once the fetch
# waiting there returns. Never less: it fetches every tier partition (ten tiers: ten times
# the source's), and a channel's 10 ms for low latency made it 100 fetches a second of them.
DELAY_FETCH_WAIT_MS = 100

# librdkafka's producer refuses records over 1 MB by default, while its consumer reads
# records up to receive.message.max.bytes (100 MB): without this, a large record the
# channel consumed could never be dead-lettered and would block its partition forever.
# The YAML may set it; the DLQ topic's own limit on the broker still applies.
PRODUCER_DEFAULTS = {"message.max.bytes": 100_000_000}

# At-least-once into the DLQ: no duplicates from producer retries, the write on every replica.
REQUIRED_PRODUCER_SETTINGS = {"enable.idempotence": True, "acks": "all"}

# kafka.config is shared by consumers and producers; librdkafka's producer warns
# about (or rejects) these consumer-only properties, so producers get it without them.
_CONSUMER_ONLY_PREFIXES = ("group.", "session.", "heartbeat.", "enable.auto.", "auto.", "max.poll.",
                           "partition.assignment", "fetch.", "isolation.level", "check.crcs", "queued.",
                           "allow.auto.create.topics")


def client_config(kafka: KafkaSettings, *layers: Mapping[str, Any]) -> dict[str, Any]:
    """Bootstrap servers, ``kafka.config``, then each layer over it."""
    settings: dict[str, Any] = {"bootstrap.servers": kafka.bootstrap_servers, **kafka.config}
    for layer in layers:
        settings.update(layer)
    return settings


def producer_config(kafka: KafkaSettings, *layers: Mapping[str, Any]) -> dict[str, Any]:
    """``client_config`` without consumer-only properties, then each layer over it."""
    settings = {k: v for k, v in client_config(kafka).items() if not k.startswith(_CONSUMER_ONLY_PREFIXES)}
    for layer in layers:
        settings.update(layer)
    return settings


def channel_consumer(kafka: KafkaSettings, channel: ChannelSettings, *, logger: Any = None) -> dict[str, Any]:
    """A channel process's consumer: the user's settings with what at-least-once requires on top.

    The poll loop adds its own ``error_cb``.
    """
    required = {
        "group.id": channel.group_id,
        "enable.auto.offset.store": False,  # only finished offsets are stored ...
        "enable.auto.commit": True,         # ... and committed in the background
    }
    defaults = {**CONSUMER_DEFAULTS, **prefetch_defaults(channel.concurrency)}
    settings = {**defaults, **client_config(kafka, channel.consumer_config), **required}
    if logger is not None:
        settings["logger"] = logger
    return settings


def delay_consumer(kafka: KafkaSettings, channel: ChannelSettings, *, logger: Any = None) -> dict[str, Any]:
    """The consumer of a channel's delay topics: the channel's, in the delay group, from the earliest record.

    From the earliest whatever the channel's ``auto.offset.reset``: a tier's records are
    written before its group may ever have committed there, and every one must be read.
    A resumed tier partition is fetched only once the fetch already waiting at the broker
    returns, so that wait bounds how late a due record is read: 100 ms, not librdkafka's
    500 (which made retries ~0.3 s late on average). A longer ``fetch.wait.max.ms`` in the
    kafka or channel config wins; a shorter one, set for the source topics' latency, does not.
    """
    settings = {**channel_consumer(kafka, channel, logger=logger), "group.id": delays.delay_group(channel),
                "auto.offset.reset": "earliest"}
    wait = settings.get("fetch.wait.max.ms", DELAY_FETCH_WAIT_MS)
    shorter = str(wait).isdigit() and int(wait) < DELAY_FETCH_WAIT_MS  # what is not a number, librdkafka refuses
    settings["fetch.wait.max.ms"] = DELAY_FETCH_WAIT_MS if shorter else wait
    return settings


def prefetch_defaults(concurrency: int) -> dict[str, Any]:
    """librdkafka's read-ahead for a channel of ``concurrency``: 1 MiB, or 1 KiB a slot when that is more."""
    return {
        "queued.max.messages.kbytes": max(PREFETCH_MIN_KIB, concurrency * PREFETCH_KIB_PER_SLOT),
        "queued.min.messages": max(PREFETCH_MIN_MESSAGES, 2 * concurrency),
        "fetch.queue.backoff.ms": PREFETCH_BACKOFF_MS,
    }


def dlq_producer(kafka: KafkaSettings, *, logger: Any = None) -> dict[str, Any]:
    """A channel process's DLQ producer: defaults, the shared producer settings, then idempotence."""
    settings = {**PRODUCER_DEFAULTS, **producer_config(kafka), **REQUIRED_PRODUCER_SETTINGS}
    if logger is not None:
        settings["logger"] = logger
    return settings


def events_producer(kafka: KafkaSettings, *, logger: Any = None) -> dict[str, Any]:
    """A channel process's outcome-events producer: the DLQ producer's settings."""
    return dlq_producer(kafka, logger=logger)


def channel_admin(kafka: KafkaSettings, *, logger: Any = None) -> dict[str, Any]:
    """A channel process's admin client, which creates its missing delay topics at start."""
    settings = producer_config(kafka, {"log.connection.close": False})
    if logger is not None:
        settings["logger"] = logger
    return settings


def publisher_producer(kafka: KafkaSettings, *, timeout: float, logger: Any = None) -> dict[str, Any]:
    """The publisher client's producer: idempotent, each record acknowledged within ``timeout``."""
    return producer_config(kafka, {
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": max(1, int(timeout * 1000)),
        "log.connection.close": False,
    }, _logging_to(logger))


def tool_admin(kafka: KafkaSettings, *, timeout: float, logger: Any = None) -> dict[str, Any]:
    """An operator tool's admin client, whose requests give up after ``timeout``."""
    return producer_config(kafka, _quiet(timeout), _logging_to(logger))


def tool_producer(kafka: KafkaSettings, *, timeout: float, logger: Any = None) -> dict[str, Any]:
    """An operator tool's idempotent producer (``dlq replay``)."""
    return producer_config(kafka, _quiet(timeout), _logging_to(logger), {
        "enable.idempotence": True, "acks": "all", "message.timeout.ms": max(1, int(timeout * 1000))})


def tool_reader(kafka: KafkaSettings, *, timeout: float, logger: Any = None) -> dict[str, Any]:
    """An operator tool's group-less, commit-free reader."""
    return topic_reader(client_config(kafka, _quiet(timeout), _logging_to(logger)))


def topic_reader(base: Mapping[str, Any]) -> dict[str, Any]:
    """Consumer settings over ``base`` for a read that joins no group, commits nothing and reports each partition's end."""
    return {
        **base,
        "group.id": f"notifyd.tool.{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        # The broker holds an empty fetch this long; at a partition's end that is pure waiting.
        "fetch.wait.max.ms": 100,
    }


def _logging_to(logger: Any) -> dict[str, Any]:
    """The ``logger`` setting, if there is a logger: librdkafka then logs through it, not to stderr."""
    return {} if logger is None else {"logger": logger}


def _quiet(timeout: float) -> dict[str, Any]:
    """A short-lived tool client: bounded waits, no log line per lost connection."""
    return {"socket.timeout.ms": int(timeout * 1000), "log.connection.close": False}
