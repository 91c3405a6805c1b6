"""``notifyd worker --config PATH --channel NAME``: one channel process in the foreground."""

from __future__ import annotations

import argparse
import sys

from notifyd.config.loading import check_config
from notifyd.exitcodes import ExitCode


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run one channel's process in the foreground, without a supervisor",
        description="Consume and deliver one channel until SIGTERM/SIGINT. "
                    "Exit 0 when drained, 78 on a config or handler error, 1 on a crash.",
    )
    parser.add_argument("--config", required=True, help="the YAML config file")
    parser.add_argument("--channel", required=True, help="the channel to run")
    parser.add_argument("--member", type=int, default=0, help="index of this process within the channel")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        config, findings = check_config(args.config)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"notifyd: cannot read {args.config}: {exc}", file=sys.stderr)
        return ExitCode.CONFIG
    if config is None:
        for finding in findings:
            print(finding, file=sys.stderr)
        return ExitCode.CONFIG
    if args.channel not in config.channels:
        known = ", ".join(sorted(config.channels))
        print(f"notifyd: no channel {args.channel!r} in {args.config} (channels: {known})", file=sys.stderr)
        return ExitCode.CONFIG
    processes = config.channels[args.channel].processes
    if not 0 <= args.member < processes:  # a member the rate shares and the readiness report would not know
        print(f"notifyd: --member {args.member} is not one of channel {args.channel!r}'s {processes} process(es) "
              f"(0 to {processes - 1})", file=sys.stderr)
        return ExitCode.USAGE
    from notifyd.channel.worker import run_channel_process  # imports confluent-kafka only for this command

    return run_channel_process(config, args.channel, member=args.member)
