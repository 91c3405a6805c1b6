"""What the operator commands share: the config option, exit codes and broker errors.

``send``, ``dlq``, ``status`` and ``topics`` each load the config the daemon runs with
and talk to its brokers with a deadline, so an unreachable broker is an error after
``--timeout`` seconds, never a hang.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata

from notifyd.config import kafka
from notifyd.config.findings import ConfigError
from notifyd.config.loading import load_config
from notifyd.config.settings import DEFAULT_CONFIG_PATH, ChannelSettings, Config
from notifyd.exitcodes import ExitCode
from notifyd.tools import clientlog

DEFAULT_TIMEOUT = 10.0
# librdkafka fails an admin request at its request_timeout; a wait on the request's future
# only that long can lose the race (a bare TimeoutError) and leave it pending on a dying handle.
FUTURE_GRACE = 5.0
# A metadata wait blocks in librdkafka, where Python cannot act on a Ctrl-C: a probe's first
# wait is this long, and each next one twice the last (a big cluster's answer can take longer).
FIRST_PROBE_WAIT = 0.5

_UNREACHABLE = {KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN,
                KafkaError._MSG_TIMED_OUT, KafkaError._RESOLVE}


class ToolError(Exception):
    """A failure an operator command reports as one message and an exit code."""

    def __init__(self, message: str, *, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config`` and ``--timeout``, the options of every operator command."""
    parser.add_argument("--config", default=None, metavar="PATH",
                        help=f"config file (default: $NOTIFYD_CONFIG, else {DEFAULT_CONFIG_PATH})")
    parser.add_argument("--timeout", type=positive_seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"give up on an unresponsive broker after this long (default: {DEFAULT_TIMEOUT:g})")


def positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds over 0 (``nan`` or ``-1`` reached librdkafka before)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds over 0")
    return seconds


def positive_count(text: str) -> int:
    """An argparse type: a whole number over 0."""
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number over 0")
    return count


def config_path(args: argparse.Namespace) -> str:
    """``--config``, else ``$NOTIFYD_CONFIG``, else the default path."""
    return args.config or os.environ.get("NOTIFYD_CONFIG") or DEFAULT_CONFIG_PATH


def run_tool(args: argparse.Namespace, work: Callable[[Config], int]) -> int:
    """Load the config named by ``args`` and run ``work`` on it, turning failures into exit codes."""
    path = config_path(args)
    clientlog.forget()  # the last error line of an earlier run in this process says nothing of this one
    try:
        config = load_config(path, writes_state=False)
    except ConfigError as exc:
        for finding in exc.findings:
            print(finding, file=sys.stderr)
        return ExitCode.INVALID
    except (OSError, UnicodeDecodeError) as exc:
        print(f"notifyd: cannot read {path}: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        return work(config)
    except ToolError as exc:
        print(f"notifyd {args.command}: {config.redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KafkaException as exc:
        error = as_tool_error(exc, config)
        print(f"notifyd {args.command}: {config.redact(str(error))}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"notifyd {args.command}: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED


def channel_of(config: Config, name: str) -> ChannelSettings:
    """The channel ``name``, or a ``ToolError`` naming the channels there are."""
    try:
        return config.channels[name]
    except KeyError:
        known = ", ".join(sorted(config.channels))
        message = f"unknown channel {name!r} (channels in {config.path}: {known})"
        raise ToolError(message, exit_code=ExitCode.USAGE) from None


def dlq_of(channel: ChannelSettings) -> str:
    """The channel's dead-letter topic, or a ``ToolError`` if it has none."""
    if not channel.dlq:
        raise ToolError(f"channel {channel.name!r} has no dlq topic configured", exit_code=ExitCode.USAGE)
    return channel.dlq


def as_tool_error(exc: KafkaException, config: Config) -> ToolError:
    """A Kafka failure as a ``ToolError``: unreachable brokers get ``ExitCode.BROKER_UNREACHABLE``."""
    error = exc.args[0] if exc.args else None
    if isinstance(error, KafkaError) and error.code() in _UNREACHABLE:
        return unreachable(config, error.str())
    return ToolError(f"Kafka error: {exc}", exit_code=ExitCode.KAFKA_FAILED)


def unreachable(config: Config, detail: str) -> ToolError:
    """The error of a broker that did not answer, ending with the clients' last error line (why)."""
    message = f"broker unreachable at {config.kafka.bootstrap_servers}: {detail}"
    if (why := clientlog.last_error()) is not None:
        message += f" (last client error: {why})"
    return ToolError(message, exit_code=ExitCode.BROKER_UNREACHABLE)


def admin_client(config: Config, *, timeout: float) -> AdminClient:
    """An admin client whose requests give up after ``timeout`` seconds."""
    return AdminClient(kafka.tool_admin(config.kafka, timeout=timeout, logger=clientlog.client_logger()))


def probe(admin: AdminClient, config: Config, *, timeout: float) -> ClusterMetadata:
    """Metadata of every topic, or ``ExitCode.BROKER_UNREACHABLE`` if no broker answers within ``timeout``.

    Never one topic by name: an admin client's metadata request for a named topic makes
    brokers with topic auto-creation create it.
    """
    try:
        return _metadata_within(admin, timeout)
    except KafkaException as exc:
        admin.poll(0)  # an admin client hands its log lines over only here
        raise as_tool_error(exc, config) from None


def _metadata_within(admin: AdminClient, timeout: float) -> ClusterMetadata:
    """``list_topics`` in waits that double from ``FIRST_PROBE_WAIT``, until one answers or ``timeout`` has passed.

    A wait with no answer fails as the broker being unreachable, and the next one asks
    again. A Ctrl-C is acted on when the current wait ends, which is never much later than
    the probe has waited so far, instead of at the end of ``--timeout``.
    """
    deadline, wait = time.monotonic() + timeout, FIRST_PROBE_WAIT
    while True:
        left = deadline - time.monotonic()
        try:
            return admin.list_topics(timeout=max(min(left, wait), 0.001))
        except KafkaException as exc:
            if exc.args[0].code() not in _UNREACHABLE or left <= wait:
                raise
        wait *= 2
