"""``notifyd dlq inspect`` and ``notifyd dlq replay``: look at and re-publish dead letters.

Both read the DLQ topic with no consumer group: nothing is committed, the daemon and
other operators see the topic unchanged.
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from notifyd.config import kafka
from notifyd.config.settings import Config
from notifyd.exitcodes import EXIT_CODES_HELP, ExitCode
from notifyd.records import dlqheaders as h
from notifyd.tools import clientlog
from notifyd.tools.replay import DlqRecord, Plan, Selection, plan_replay, replayed_headers, scan_start_ms
from notifyd.tools.runner import (
    ToolError,
    add_common_arguments,
    admin_client,
    channel_of,
    dlq_of,
    positive_count,
    probe,
    run_tool,
)
from notifyd.tools.timespec import BadTime, parse_time
from notifyd.tools.topicscan import ScanTimeout, UnknownTopic, read_to_end

REPLAY_HELP = (
    "Re-publish dead letters to their original topic and partition with their original key, value and "
    "headers, plus the header notifyd.replayed.from=<dlq topic>:<partition>:<offset>. Idempotent: before "
    "sending, the original topic is read from the time of the oldest selected dead letter, and a dead "
    "letter whose copy is already there is skipped, so an interrupted run can simply be run again, with "
    "the same or other filters. A copy that has aged out of the original topic's retention no longer "
    "counts. If the channel fails the copy again, that is a new dead letter, replayable in turn."
)
_SINCE_MARGIN = timedelta(minutes=15)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dlq", help="inspect or replay a channel's dead-letter topic")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    inspect = actions.add_parser("inspect", help="list dead letters (no consumer group, nothing committed)",
                                 epilog=EXIT_CODES_HELP)
    _add_selection_arguments(inspect)
    inspect.add_argument("--limit", type=positive_count, default=100, help="show the newest N (default: 100)")
    inspect.add_argument("--format", choices=("table", "json"), default="table")
    inspect.set_defaults(func=lambda args: run_tool(args, lambda config: inspect_dlq(config, args)))

    replay = actions.add_parser("replay", help="re-publish dead letters to their original topic, once",
                                description=REPLAY_HELP, epilog=EXIT_CODES_HELP)
    _add_selection_arguments(replay)
    replay.add_argument("--dry-run", action="store_true", help="show what would be replayed, send nothing")
    replay.set_defaults(func=lambda args: run_tool(args, lambda config: replay_dlq(config, args)))


def _add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--channel", required=True)
    parser.add_argument("--reason", action="append", choices=h.REASONS, help="only this reason (repeatable)")
    parser.add_argument("--since", metavar="TIME",
                        help="only failed at or after TIME: ISO-8601 or an age (30m, 1h, 2d)")
    parser.add_argument("--id", nargs="+", action="extend", default=[], help="only these notification ids")


def selection_of(args: argparse.Namespace, *, now: datetime) -> Selection:
    """The filters given on the command line."""
    try:
        since = parse_time(args.since, now=now) if args.since else None
    except BadTime as exc:
        raise ToolError(f"--since: {exc}", exit_code=ExitCode.USAGE) from None
    return Selection(reasons=frozenset(args.reason or ()), since=since, ids=frozenset(args.id))


def inspect_dlq(config: Config, args: argparse.Namespace) -> int:
    """Print the newest ``--limit`` dead letters that match the filters."""
    topic = dlq_of(channel_of(config, args.channel))
    selection = selection_of(args, now=datetime.now(UTC))
    matching = (r for r in read_dlq(config, topic, since=selection.since, timeout=args.timeout) if selection.matches(r))
    newest = heapq.nlargest(max(0, args.limit), matching, key=lambda r: (r.timestamp_ms or 0, r.partition, r.offset))
    summaries = [r.summary() for r in reversed(newest)]
    if args.format == "json":
        print(json.dumps(summaries, indent=2))
    else:
        print_table(summaries)
    return ExitCode.OK


def replay_dlq(config: Config, args: argparse.Namespace) -> int:
    """Replay the selected dead letters that have not been replayed yet."""
    topic = dlq_of(channel_of(config, args.channel))
    selection = selection_of(args, now=datetime.now(UTC))
    selected = [r for r in read_dlq(config, topic, since=selection.since, timeout=args.timeout) if selection.matches(r)]
    _say_missing(selection.ids - {record.id for record in selected}, topic)
    already = replayed_markers(config, selected, dlq_topic=topic, timeout=args.timeout)
    plan = plan_replay(selected, already_replayed=already)
    for record, why in plan.skipped:
        print(f"skip {_describe(record)}: {why}")
    if args.dry_run:
        for record in plan.replay:
            print(f"would replay {_describe(record)}")
        print(f"dry run: {len(plan.replay)} to replay, {len(plan.skipped)} skipped", file=sys.stderr)
        return ExitCode.OK
    failures = publish(config, plan, timeout=args.timeout)
    print(f"replayed {len(plan.replay) - len(failures)}, skipped {len(plan.skipped)}, failed {len(failures)}",
          file=sys.stderr)
    if failures:
        unreachable = all(e.code() == KafkaError._MSG_TIMED_OUT for e in failures.values())
        first = next(iter(failures.values())).str()
        raise ToolError(f"{len(failures)} record(s) not replayed ({first}); run again to retry them",
                        exit_code=ExitCode.BROKER_UNREACHABLE if unreachable else ExitCode.KAFKA_FAILED)
    return ExitCode.OK


def _say_missing(ids: frozenset[str] | set[str], topic: str) -> None:
    """The ``--id`` values no dead letter matched: a typo should not read as 'replayed 0' and nothing more."""
    for notification_id in sorted(ids):
        print(f"no dead letter in {topic} matches --id {notification_id} (with the other filters given)",
              file=sys.stderr)


def read_dlq(config: Config, topic: str, *, since: datetime | None, timeout: float) -> Iterator[DlqRecord]:
    """The records of the DLQ ``topic``, from shortly before ``since`` when given."""
    probe(admin_client(config, timeout=timeout), config, timeout=timeout)
    since_ms = _scan_start_ms(since) if since else None
    for message in _scan(config, topic, since_ms=since_ms, timeout=timeout, missing_ok=False):
        yield _record(message)


def _scan_start_ms(since: datetime) -> int:
    """Kafka time to read from: ``since`` less the margin, never before the epoch (the broker fails a time below 0)."""
    return max(0, int((since.timestamp() - _SINCE_MARGIN.total_seconds()) * 1000))


def replayed_markers(config: Config, records: list[DlqRecord], *, dlq_topic: str, timeout: float) -> set[str]:
    """``notifyd.replayed.from`` values already in the original topics of ``records``."""
    found: set[str] = set()
    for original in sorted({r.original_topic for r in records if r.original_topic}):
        since_ms = scan_start_ms([r for r in records if r.original_topic == original])
        for message in _scan(config, original, since_ms=since_ms, timeout=timeout, missing_ok=True):
            for name, value in message.headers() or ():
                if name == h.REPLAYED_FROM and value and value.startswith(dlq_topic.encode() + b":"):
                    found.add(value.decode("utf-8", errors="replace"))
    return found


def publish(config: Config, plan: Plan, *, timeout: float) -> dict[str, KafkaError]:
    """Produce every planned copy and wait for the broker; returns the failures by marker."""
    producer = Producer(kafka.tool_producer(config.kafka, timeout=timeout, logger=clientlog.client_logger()))
    partitions = _partition_counts(config, {r.original_topic for r in plan.replay}, timeout=timeout)
    failures: dict[str, KafkaError] = {}
    answered: set[str] = set()

    def reported(error: KafkaError | None, message: Message, record: DlqRecord) -> None:
        answered.add(record.marker)
        if error is not None:
            failures[record.marker] = error
        else:
            print(f"replayed {_describe(record)} -> {message.topic()}[{message.partition()}]@{message.offset()}")

    for record in plan.replay:
        _produce_copy(producer, record, partitions=partitions,
                      on_delivery=lambda e, m, r=record: reported(e, m, r))
    producer.flush(timeout + 5)
    for record in plan.replay:
        if record.marker not in answered:
            failures[record.marker] = KafkaError(KafkaError._MSG_TIMED_OUT)
    return failures


def _produce_copy(producer: Producer, record: DlqRecord, *, partitions: dict[str, int], on_delivery: Any) -> None:
    extra: dict[str, Any] = {}
    # Back to its own partition while it exists, else wherever the partitioner puts the key.
    partition = record.original_partition
    if partition is not None and partition < partitions.get(record.original_topic, 0):
        extra["partition"] = partition
    while True:
        try:
            producer.produce(record.original_topic, record.value, key=record.key, headers=replayed_headers(record),
                             on_delivery=on_delivery, **extra)
            producer.poll(0)
            return
        except BufferError:  # the local queue is full: let deliveries drain it
            producer.poll(0.1)


def _partition_counts(config: Config, topics: set[str | None], *, timeout: float) -> dict[str, int]:
    listed = probe(admin_client(config, timeout=timeout), config, timeout=timeout).topics
    counts = {}
    for topic in filter(None, topics):
        metadata = listed.get(topic)
        counts[topic] = len(metadata.partitions) if metadata and metadata.error is None else 0
    return counts


def _scan(config: Config, topic: str, *, since_ms: int | None, timeout: float, missing_ok: bool) -> Iterator[Message]:
    reader = kafka.tool_reader(config.kafka, timeout=timeout, logger=clientlog.client_logger())
    try:
        yield from read_to_end(reader, topic, since_ms=since_ms, timeout=timeout)
    except UnknownTopic as exc:
        if not missing_ok:
            raise ToolError(str(exc), exit_code=ExitCode.KAFKA_FAILED) from None
    except ScanTimeout as exc:
        raise ToolError(f"reading {topic}: {exc}", exit_code=ExitCode.BROKER_UNREACHABLE) from None


def _record(message: Message) -> DlqRecord:
    _, timestamp = message.timestamp()
    return DlqRecord.of(topic=message.topic(), partition=message.partition(), offset=message.offset(),
                        key=message.key(), value=message.value(), headers=message.headers(), timestamp_ms=timestamp)


def _describe(record: DlqRecord) -> str:
    return f"{record.id} (dlq {record.partition}@{record.offset})"


def print_table(summaries: list[dict[str, Any]]) -> None:
    """The summaries as aligned columns, control characters and long errors cut."""
    header = ("ID", "REASON", "ATTEMPTS", "FAILED AT", "ORIGINAL", "DLQ", "ERROR")
    rows = [header] + [(
        _cell(s["id"], 40), s["reason"], "-" if s["attempts"] is None else str(s["attempts"]), s["failed_at"] or "-",
        f"{s['original_topic'] or '-'}[{_or_dash(s['original_partition'])}]@{_or_dash(s['original_offset'])}",
        f"{s['dlq_partition']}@{s['dlq_offset']}", _cell(s["error"], 80),
    ) for s in summaries]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    if not summaries:
        print("(no dead letters)")


def _cell(text: str, width: int) -> str:
    clean = "".join(c if c.isprintable() else " " for c in text)
    return clean if len(clean) <= width else clean[: width - 1] + "…"


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)
