"""``notifyd send``: publish a notification (or a file of them) to a channel's topic."""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Iterable
from typing import Any

from notifyd.config.settings import Config
from notifyd.exitcodes import EXIT_CODES_HELP, ExitCode
from notifyd.records.notification import InvalidNotification, notification_problems
from notifyd.records.schedule import moment_fields
from notifyd.tools import clientlog
from notifyd.tools.client import DeliveryFailed, Publisher, UnknownChannel, prepare
from notifyd.tools.runner import (
    ToolError,
    add_common_arguments,
    admin_client,
    channel_of,
    probe,
    run_tool,
    unreachable,
)
from notifyd.tools.timespec import BadTime, parse_ahead, rfc3339


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "send",
        help="publish a notification to a channel's first topic and print its id",
        description="Validate a notification against schemas/notification.schema.json, produce it to the "
                    "channel's first topic and wait for the broker's acknowledgement. With --file, every "
                    "line is checked first and nothing is sent if one is bad.",
        epilog=EXIT_CODES_HELP,
    )
    add_common_arguments(parser)
    parser.add_argument("--channel", required=True, help="the channel to send through")
    recipient = parser.add_mutually_exclusive_group()
    recipient.add_argument("--to", help="the address (email, phone number, device token, URL)")
    recipient.add_argument("--user-id", help="a user the channel resolves to an address")
    content = parser.add_mutually_exclusive_group()
    content.add_argument("--body", help="the message text")
    content.add_argument("--template", help="a template of the channel, rendered with --data")
    parser.add_argument("--subject")
    parser.add_argument("--category", help="the kind of notification (marketing, security ...), for opt-outs")
    parser.add_argument("--data", metavar="JSON", help="template variables / payload, a JSON object")
    parser.add_argument("--id", help="the notification id (default: a new UUID)")
    parser.add_argument("--key", help="the Kafka record key (e.g. the user, to keep their order)")
    parser.add_argument("--at", metavar="TIME", help="deliver no earlier than TIME (send_at): +10m, in 2h, "
                        "2026-12-04T09:00:00Z (RFC 3339 with an offset) or epoch seconds; with --file, for "
                        "each line without its own")
    parser.add_argument("--expires", metavar="TIME", help="never deliver at or after TIME (expires_at), "
                        "same forms as --at; the notification is then dead-lettered as expired")
    parser.add_argument("--priority", choices=("high", "normal"), help="high: never held by the user's quiet hours")
    parser.add_argument("--file", metavar="PATH",
                        help="send every line of a JSON Lines file (one notification object a line; - for stdin)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_tool(args, lambda config: send(config, args))


def send(config: Config, args: argparse.Namespace) -> int:
    """Send what ``args`` describe; prints each id sent."""
    notifications = _from_file(args) if args.file else [_checked(_from_flags(args))]
    _schedule(notifications, args)
    _check_topic(config, args)
    progress = _Progress(len(notifications), shown=bool(args.file) and sys.stderr.isatty())
    try:
        with Publisher(config, timeout=args.timeout, logger=clientlog.client_logger()) as publisher:
            if args.file:
                publisher.send_many(args.channel, notifications, progress=progress)
                progress.finish()
                ids = [n["id"] for n in notifications]
            else:
                ids = [publisher.send(args.channel, key=args.key, **notifications[0])]
    except KeyboardInterrupt:  # caught outside the publisher: its close() has waited for what was queued
        raise ToolError(f"interrupted: {progress.done} of {len(notifications)} notification(s) acknowledged by the "
                        "broker (ids are printed only once all are); the others may have been written or not",
                        exit_code=ExitCode.INTERRUPTED) from None
    except UnknownChannel as exc:
        raise ToolError(str(exc), exit_code=ExitCode.USAGE) from None
    except InvalidNotification as exc:
        raise ToolError(f"invalid notification: {exc}", exit_code=ExitCode.BAD_INPUT) from None
    except DeliveryFailed as exc:
        if exc.unreachable:
            raise unreachable(config, str(exc)) from None
        raise ToolError(str(exc), exit_code=ExitCode.KAFKA_FAILED) from None
    for notification_id in ids:
        print(notification_id)
    return ExitCode.OK


def _check_topic(config: Config, args: argparse.Namespace) -> None:
    # Without this, a missing topic on a broker that does not auto-create topics shows up
    # only as a delivery timeout, indistinguishable from an unreachable broker.
    topic = channel_of(config, args.channel).topics[0]
    found = probe(admin_client(config, timeout=args.timeout), config, timeout=args.timeout).topics.get(topic)
    if found is None or found.error is not None:
        raise ToolError(f"topic {topic!r} does not exist (notifyd topics ensure creates it)", exit_code=ExitCode.KAFKA_FAILED)


def _from_flags(args: argparse.Namespace) -> dict[str, Any]:
    fields = {"id": args.id, "to": args.to, "user_id": args.user_id, "body": args.body,
              "template": args.template, "subject": args.subject, "category": args.category,
              "priority": args.priority}
    if args.data is not None:
        try:
            fields["data"] = json.loads(args.data)
        except json.JSONDecodeError as exc:
            raise ToolError(f"--data is not valid JSON: {exc}", exit_code=ExitCode.BAD_INPUT) from None
    return fields


def _checked(fields: dict[str, Any]) -> dict[str, Any]:
    """The flags' notification, refused before the broker is asked anything (as ``--file`` lines are).

    The publisher's own check (``prepare``), run early; what it prepares is dropped, and
    ``Publisher.send`` prepares the notification again.
    """
    try:
        prepare(fields)
    except InvalidNotification as exc:
        raise ToolError(f"invalid notification: {exc}", exit_code=ExitCode.BAD_INPUT) from None
    return fields


def _schedule(notifications: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Set ``--at`` and ``--expires`` on every notification that does not name its own."""
    now = time.time()
    times = {field: _moment(flag, value, now) for field, flag, value in
             (("send_at", "--at", args.at), ("expires_at", "--expires", args.expires)) if value is not None}
    if len(times) == 2 and times["expires_at"] <= times["send_at"]:
        raise ToolError("--expires is not after --at: the notification would never be sent", exit_code=ExitCode.USAGE)
    if times.get("expires_at", now + 1) <= now:
        raise ToolError("--expires has passed: the notification would never be sent", exit_code=ExitCode.USAGE)
    for notification in notifications:
        for field, moment in times.items():
            notification.setdefault(field, rfc3339(moment))
    doomed = [n["id"] for n in notifications if _never_sent(moment_fields(n), now)]
    if doomed:  # a line's own expires_at: the flags' own are checked above
        raise ToolError(f"{len(doomed)} notification(s) would never be sent: expires_at has passed or is not after "
                        f"send_at ({', '.join(doomed[:5])}{', ...' if len(doomed) > 5 else ''})",
                        exit_code=ExitCode.USAGE)


def _never_sent(moments: dict[str, float], now: float) -> bool:
    expires_at = moments.get("expires_at")
    return expires_at is not None and expires_at <= max(now, moments.get("send_at", now))


def _moment(flag: str, text: str, now: float) -> float:
    try:
        return parse_ahead(text, now=now)
    except BadTime as exc:
        raise ToolError(f"{flag}: {exc}", exit_code=ExitCode.USAGE) from None


def _from_file(args: argparse.Namespace) -> list[dict[str, Any]]:
    conflicting = [flag for flag in ("to", "user_id", "body", "template", "subject", "category", "data", "id", "key",
                                     "priority")
                   if getattr(args, flag) is not None]
    if conflicting:
        raise ToolError(f"--file cannot be combined with --{conflicting[0].replace('_', '-')}", exit_code=ExitCode.USAGE)
    try:
        if args.file == "-":
            notifications, problems = parse_lines(sys.stdin)
        else:
            with open(args.file, encoding="utf-8") as lines:
                notifications, problems = parse_lines(lines)
    except (OSError, UnicodeDecodeError) as exc:
        raise ToolError(f"cannot read {args.file}: {exc}", exit_code=ExitCode.USAGE) from None
    if problems:
        raise ToolError(f"{args.file}: nothing sent:\n" + "\n".join(problems), exit_code=ExitCode.BAD_INPUT)
    if not notifications:  # an empty file or stdin: exit 0 with nothing printed read as a success
        raise ToolError(f"{args.file}: no notification in it; nothing sent", exit_code=ExitCode.BAD_INPUT)
    return notifications


def parse_lines(lines: Iterable[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Notifications of a JSON Lines text and every problem as ``line N: ...``; blank lines are skipped.

    Lines without an id get one here, so the ids printed are the ids sent.
    """
    notifications, problems = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            notification = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        if isinstance(notification, dict):
            notification.setdefault("id", str(uuid.uuid4()))
        found = notification_problems(notification)
        problems.extend(f"line {number}: {problem}" for problem in found)
        if not found:
            notifications.append(notification)
    return notifications, problems


class _Progress:
    """How many the broker acknowledged; ``shown``: also a one-line ``\\r`` counter on the terminal."""

    def __init__(self, total: int, *, shown: bool) -> None:
        self.total = total
        self.done = 0
        self._visible = shown
        self._shown = -1

    def __call__(self, done: int) -> None:
        self.done = done
        if not self._visible:
            return
        if done == self.total or done - self._shown >= max(1, self.total // 100):
            self._shown = done
            print(f"\rsent {done}/{self.total} ({100 * done // max(1, self.total)}%)", end="", file=sys.stderr)

    def finish(self) -> None:
        if self._visible:
            print(file=sys.stderr)
