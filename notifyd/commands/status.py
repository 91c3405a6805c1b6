"""``notifyd status``: each channel's consumer group, members, offsets, lag, retries waiting and DLQ depth.

Everything is asked of the broker, so it answers the same whether the daemon runs or not.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ClusterMetadata, ConsumerGroupDescription

from notifyd.config import kafka
from notifyd.config.delays import delay_group, delay_topics
from notifyd.config.settings import ChannelSettings, Config
from notifyd.exitcodes import EXIT_CODES_HELP, ExitCode
from notifyd.records.outcome import iso
from notifyd.tools import clientlog
from notifyd.tools.circuits import circuit_states
from notifyd.tools.runner import (
    FUTURE_GRACE,
    add_common_arguments,
    admin_client,
    channel_of,
    probe,
    run_tool,
)
from notifyd.tools.tierheads import oldest_due

NO_OFFSET = -1001  # librdkafka's OFFSET_INVALID: the group has committed nothing there


@dataclass(frozen=True)
class PartitionLag:
    """Where a group stands in one partition; ``end`` is the broker's high watermark."""

    topic: str
    partition: int
    committed: int | None
    start: int
    end: int
    lag: int


@dataclass(frozen=True)
class ChannelStatus:
    """The status of one channel as the broker sees it."""

    channel: str
    group: str
    state: str
    members: list[dict[str, Any]]
    partitions: list[PartitionLag]
    missing_topics: list[str]
    dlq: str | None
    dlq_depth: int | None
    circuit: str | None = None  # from the daemon's /metrics, for channels with flow control
    waiting: dict[str, int] = field(default_factory=dict)  # records in each delay tier not yet taken
    oldest_due: str | None = None  # ISO 8601 UTC: the earliest due time at the head of a waiting tier
    lag: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lag", sum(p.lag for p in self.partitions))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status", help="per channel: consumer group, members, committed offsets, lag, DLQ depth",
        description="Ask the broker where each channel's consumer group stands; works whether or not the daemon "
                    "runs. Lag is the high watermark minus the committed offset (minus the log start where the "
                    "group has committed nothing). DLQ depth counts the records the DLQ topic holds, replayed or not.",
        epilog=EXIT_CODES_HELP)
    add_common_arguments(parser)
    parser.add_argument("--channel", action="append", help="only this channel (repeatable)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(func=lambda args: run_tool(args, lambda config: status(config, args)))


def status(config: Config, args: argparse.Namespace) -> int:
    """Print the status of the chosen channels."""
    channels = [channel_of(config, name) for name in args.channel] if args.channel else list(config.channels.values())
    admin = admin_client(config, timeout=args.timeout)
    metadata = probe(admin, config, timeout=args.timeout)
    reader = Consumer(kafka.tool_reader(config.kafka, timeout=args.timeout, logger=clientlog.client_logger()))
    try:
        report = [channel_status(admin, reader, metadata, channel, timeout=args.timeout) for channel in channels]
    finally:
        reader.close()
    circuits = circuit_states(config.metrics_listen, timeout=args.timeout) if config.metrics_enabled else {}
    report = [replace(s, circuit=circuits.get(s.channel)) for s in report]
    if args.format == "json":
        print(json.dumps({"channels": [asdict(s) for s in report]}, indent=2))
    else:
        for channel in report:
            print_channel(channel)
    return ExitCode.OK


def channel_status(admin: AdminClient, reader: Consumer, metadata: ClusterMetadata, channel: ChannelSettings, *,
                   timeout: float) -> ChannelStatus:
    """Ask the broker about one channel."""
    state, members = describe_group(admin, channel.group_id, timeout=timeout)
    committed = committed_offsets(admin, channel.group_id, timeout=timeout)
    present = [t for t in channel.topics if _exists(metadata, t)]
    partitions = topic_lags(reader, metadata, present, committed, timeout=timeout)
    tiers = [t for t in delay_topics(channel) if _exists(metadata, t)]
    waiting = {t.rsplit(".", 1)[1]: 0 for t in tiers}
    delay_committed = committed_offsets(admin, delay_group(channel), timeout=timeout)
    heads = []
    for lag in topic_lags(reader, metadata, tiers, delay_committed, timeout=timeout):
        waiting[lag.topic.rsplit(".", 1)[1]] += lag.lag
        if lag.lag > 0:
            committed = lag.committed if lag.committed is not None and lag.committed >= 0 else lag.start
            heads.append((lag.topic, lag.partition, max(committed, lag.start)))
    due = oldest_due(reader, heads, timeout=timeout)
    return ChannelStatus(
        channel=channel.name, group=channel.group_id, state=state, members=members, partitions=partitions,
        missing_topics=[t for t in channel.topics if t not in present], dlq=channel.dlq,
        dlq_depth=dlq_depth(reader, metadata, channel.dlq, timeout=timeout), waiting=waiting,
        oldest_due=None if due is None else iso(due),
    )


def topic_lags(reader: Consumer, metadata: ClusterMetadata, topics: list[str],
               committed: Mapping[tuple[str, int], int], *, timeout: float) -> list[PartitionLag]:
    """The group's lag in every partition of ``topics`` (which exist)."""
    lags = []
    for topic in topics:
        for partition in sorted(metadata.topics[topic].partitions):
            start, end = reader.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
            lags.append(partition_lag(topic, partition, committed.get((topic, partition)), start=start, end=end))
    return lags


def partition_lag(topic: str, partition: int, committed: int | None, *, start: int, end: int) -> PartitionLag:
    """The lag of a group in one partition; a group that committed nothing lags by all the log holds."""
    position = committed if committed is not None and committed >= 0 else start
    return PartitionLag(topic, partition, committed, start, end, max(0, end - max(position, start)))


def describe_group(admin: AdminClient, group: str, *, timeout: float) -> tuple[str, list[dict[str, Any]]]:
    """The group's state name and its members with their assigned partitions."""
    try:
        future = admin.describe_consumer_groups([group], request_timeout=timeout)[group]
        description = future.result(timeout + FUTURE_GRACE)
    except KafkaException as exc:
        return f"unknown ({exc.args[0].str() if exc.args else exc})", []
    state = getattr(description.state, "name", str(description.state))
    return state, member_rows(description)


def member_rows(description: ConsumerGroupDescription) -> list[dict[str, Any]]:
    """The members of a described group with the partitions assigned to each."""
    return [{
        "client_id": m.client_id, "host": m.host, "member_id": m.member_id,
        "assignment": sorted(f"{tp.topic}[{tp.partition}]" for tp in (m.assignment.topic_partitions or [])),
    } for m in description.members or []]


def committed_offsets(admin: AdminClient, group: str, *, timeout: float) -> Mapping[tuple[str, int], int]:
    """The group's committed offset of every partition it has committed in."""
    request = [ConsumerGroupTopicPartitions(group)]
    future = admin.list_consumer_group_offsets(request, request_timeout=timeout)[group]
    result = future.result(timeout + FUTURE_GRACE)
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions or [] if tp.offset != NO_OFFSET}


def dlq_depth(reader: Consumer, metadata: ClusterMetadata, topic: str | None, *, timeout: float) -> int | None:
    """Records in the DLQ topic (None without a DLQ or when the topic does not exist yet)."""
    if not topic or not _exists(metadata, topic):
        return None
    total = 0
    for partition in metadata.topics[topic].partitions:
        start, end = reader.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
        total += max(0, end - start)
    return total


def _exists(metadata: ClusterMetadata, topic: str) -> bool:
    found = metadata.topics.get(topic)
    return found is not None and found.error is None


def print_channel(status: ChannelStatus) -> None:
    """One channel as a header line and a table of partitions."""
    depth = "-" if status.dlq_depth is None else status.dlq_depth
    dlq = f"dlq {status.dlq}: {depth} record(s)" if status.dlq else "no dlq"
    circuit = f"  circuit {status.circuit}" if status.circuit else ""
    print(f"{status.channel}  group {status.group}  {status.state}  {len(status.members)} member(s)  "
          f"lag {status.lag}  {dlq}{circuit}")
    for member in status.members:
        print(f"  member {member['client_id']}@{member['host']}: {', '.join(member['assignment']) or '-'}")
    if status.partitions:
        print(f"  {'TOPIC':<40} {'PART':>4} {'COMMITTED':>10} {'END':>10} {'LAG':>8}")
    for p in status.partitions:
        committed = "-" if p.committed is None else str(p.committed)
        print(f"  {p.topic:<40} {p.partition:>4} {committed:>10} {p.end:>10} {p.lag:>8}")
    for topic in status.missing_topics:
        print(f"  {topic}: topic does not exist")
    if any(status.waiting.values()):
        tiers = ", ".join(f"{tier} {count}" for tier, count in status.waiting.items() if count)
        print(f"  waiting in delay topics: {tiers}; oldest due {status.oldest_due or '-'}")
