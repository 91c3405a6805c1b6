"""``notifyd topics ensure``: create the channel, DLQ and delay topics the config implies but the broker lacks."""

from __future__ import annotations

import argparse
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic

from notifyd.config.delays import delay_topics
from notifyd.config.settings import Config
from notifyd.exitcodes import EXIT_CODES_HELP, ExitCode
from notifyd.tools.runner import (
    FUTURE_GRACE,
    ToolError,
    add_common_arguments,
    admin_client,
    as_tool_error,
    positive_count,
    probe,
    run_tool,
)

BROKER_DEFAULT = -1  # CreateTopics v4+: the broker's num.partitions / default.replication.factor


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("topics", help="manage the topics the config names")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    ensure = actions.add_parser(
        "ensure", help="create any missing channel, DLQ and delay topics",
        description="Create every channel topic, DLQ topic and delay topic (<group_id>.delay.1s ... .8h, or "
                    "delay_topic_prefix) of the config that does not exist yet; existing topics are left as they "
                    "are. Delay topics get the partition count of their channel's topics.", epilog=EXIT_CODES_HELP)
    add_common_arguments(ensure)
    ensure.add_argument("--partitions", type=positive_count, default=BROKER_DEFAULT,
                        help="partitions of each new topic (default: the broker's num.partitions)")
    ensure.add_argument("--replication-factor", type=positive_count, default=BROKER_DEFAULT,
                        help="replicas of each new topic (default: the broker's default.replication.factor)")
    ensure.add_argument("--dry-run", action="store_true", help="only list the topics that would be created")
    ensure.set_defaults(func=lambda args: run_tool(args, lambda config: ensure_topics(config, args)))


def configured_topics(config: Config) -> list[str]:
    """Every channel topic and DLQ topic of the config, each once, in config order."""
    names: dict[str, None] = {}
    for channel in config.channels.values():
        names.update(dict.fromkeys(channel.topics))
        if channel.dlq:
            names[channel.dlq] = None
    return list(names)


def delay_topics_of(config: Config) -> dict[str, tuple[str, ...]]:
    """Every channel's delay topics (``notifyd.config.delays``), each with the topics of its channel."""
    return {topic: channel.topics for channel in config.channels.values() for topic in delay_topics(channel)}


def ensure_topics(config: Config, args: argparse.Namespace) -> int:
    """Create the missing topics, the channels' delay topics too; prints one line per topic."""
    admin = admin_client(config, timeout=args.timeout)
    existing = probe(admin, config, timeout=args.timeout).topics
    delayed = delay_topics_of(config)
    wanted = configured_topics(config) + [t for t in delayed if t not in configured_topics(config)]
    missing = [t for t in wanted if t not in existing or existing[t].error is not None]
    for topic in wanted:
        if topic not in missing:
            print(f"exists   {topic} ({len(existing[topic].partitions)} partitions)")
    if args.dry_run or not missing:
        for topic in missing:
            print(f"missing  {topic}")
        return ExitCode.OK
    new = [NewTopic(t, num_partitions=_partitions(t, delayed, existing, args.partitions),
                    replication_factor=args.replication_factor) for t in missing]
    futures = admin.create_topics(new, request_timeout=args.timeout, operation_timeout=args.timeout)
    failures = []
    for topic, future in futures.items():
        try:
            future.result(args.timeout + FUTURE_GRACE)
            print(f"created  {topic}")
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                print(f"exists   {topic} (created meanwhile)")
            else:
                failures.append((topic, exc))
    if failures:
        topic, exc = failures[0]
        first = as_tool_error(exc, config)
        raise ToolError(f"{len(failures)} topic(s) not created; {topic}: {first}", exit_code=first.exit_code)
    return ExitCode.OK


def _partitions(topic: str, delayed: dict[str, tuple[str, ...]], existing: dict[str, Any], asked: int) -> int:
    """A delay topic gets as many partitions as its channel's largest topic, once that exists."""
    counts = [len(existing[t].partitions) for t in delayed.get(topic, ()) if t in existing and not existing[t].error]
    return max(counts) if counts and asked == BROKER_DEFAULT else asked

