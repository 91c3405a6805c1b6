"""Creating a channel's missing delay topics at start, with as many partitions as its busiest topic.

Their partition count follows the channel topics' so the waiting spreads over the group's
members like the first attempts do. A broker that refuses (no CREATE permission, topics
made by an operator's tooling only) is logged and left alone: a retry written to a missing
topic fails, is written again, and its source offset is not finished until it lands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, KafkaException

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

REQUEST_TIMEOUT = 10.0
BROKER_DEFAULT = -1  # CreateTopics v4+: the broker's default.replication.factor


def ensure_delay_topics(admin_config: dict[str, Any], *, topics: tuple[str, ...], delay_topics: tuple[str, ...],
                        log: Any, list_topics: Any) -> None:
    """Create those of ``delay_topics`` the broker lacks; never raises.

    ``list_topics`` (the channel's producer's) checks first: an admin client, a librdkafka
    instance of its own (~1 MiB of a channel process that stays), is made only to create.
    """
    try:
        existing = list_topics(timeout=REQUEST_TIMEOUT).topics
        missing = [t for t in delay_topics if t not in existing or existing[t].error is not None]
        if missing:
            from confluent_kafka.admin import AdminClient

            _create(AdminClient(admin_config), missing, partitions=_partitions(existing, topics), log=log)
    except KafkaException as exc:
        log.error("cannot check the delay topics; retries need them to exist", error=str(exc))


def _partitions(existing: dict[str, Any], topics: tuple[str, ...]) -> int:
    counts = [len(existing[t].partitions) for t in topics if t in existing and existing[t].error is None]
    return max(counts, default=1)


def _create(admin: AdminClient, missing: list[str], *, partitions: int, log: Any) -> None:
    from confluent_kafka.admin import NewTopic

    new = [NewTopic(t, num_partitions=partitions, replication_factor=BROKER_DEFAULT) for t in missing]
    futures = admin.create_topics(new, request_timeout=REQUEST_TIMEOUT, operation_timeout=REQUEST_TIMEOUT)
    for topic, future in futures.items():
        try:
            future.result(REQUEST_TIMEOUT + 5)
            log.info("delay topic created", topic=topic, partitions=partitions)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if not (isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS):
                log.error("cannot create a delay topic; retries need it to exist", topic=topic, error=str(exc))
