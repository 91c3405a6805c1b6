"""``notifyd trace ID``: what the delivery ledger knows of one notification, with times."""

from __future__ import annotations

import argparse
import json
import os
import sys

from notifyd.config.findings import ConfigError
from notifyd.config.loading import load_config
from notifyd.config.settings import DEFAULT_CONFIG_PATH, Config, LedgerSettings
from notifyd.exitcodes import ExitCode
from notifyd.ledger.history import Step, history, render
from notifyd.ledger.opening import LedgerUnavailable, open_store
from notifyd.tools.runner import config_path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "trace",
        help="show a notification's history from the delivery ledger",
        description="Claimed, failed attempts with their errors, duplicates suppressed and the outcome (sent with "
        "the provider's id, dead-lettered or skipped). Exit 0 if found, 6 if the ledger has no record of it, "
        "1 on an invalid config, 2 if no channel has a ledger or it cannot be opened.",
    )
    parser.add_argument("id", help="the notification id")
    parser.add_argument("--config", default=None, metavar="PATH",
                        help=f"config file (default: $NOTIFYD_CONFIG, else {DEFAULT_CONFIG_PATH})")
    parser.add_argument("--channel", metavar="C", help="only this channel's history")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = config_path(args)
    try:
        config = load_config(path, writes_state=False)
    except ConfigError as exc:
        print(f"notifyd: {exc}", file=sys.stderr)
        return ExitCode.INVALID
    except (OSError, UnicodeDecodeError) as exc:
        print(f"notifyd: cannot read {path}: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    if args.channel is not None and args.channel not in config.channels:
        print(f"notifyd: no channel {args.channel!r} in {path}", file=sys.stderr)
        return ExitCode.USAGE
    ledgers = _ledgers(config, args.channel)
    if not ledgers:
        print("notifyd: no channel of this config uses a delivery ledger", file=sys.stderr)
        return ExitCode.USAGE
    try:
        steps = [step for step in _steps(ledgers, args.id) if args.channel in (None, step.channel)]
    except LedgerUnavailable as exc:
        print(f"notifyd: {config.redact(str(exc))}", file=sys.stderr)
        return ExitCode.USAGE
    if not steps:
        print(f"notifyd: the ledger has no record of {args.id!r}", file=sys.stderr)
        return ExitCode.NOT_FOUND
    if args.format == "json":
        print(json.dumps({"id": args.id, "history": [step.as_dict() for step in steps]}, indent=2))
    else:
        print(render(args.id, steps))
    return ExitCode.OK


def _ledgers(config: Config, channel: str | None) -> list[LedgerSettings]:
    """The distinct ledgers the config's channels (or ``channel``) use: usually one."""
    found = [settings.ledger for name, settings in config.channels.items()
             if settings.ledger is not None and channel in (None, name)]
    return list(dict.fromkeys(found))


def _steps(ledgers: list[LedgerSettings], notification_id: str) -> list[Step]:
    records, events = [], []
    for settings in ledgers:
        _must_exist(settings)
        store = open_store(settings)
        try:
            found_records, found_events = store.trace(notification_id)
        finally:
            store.close()
        records += found_records
        events += found_events
    return history(records, events)


def _must_exist(settings: LedgerSettings) -> None:
    """A SQLite ledger that is not there: say so, rather than create an empty one and find nothing in it.

    Its default place depends on the user and on ``$STATE_DIRECTORY``: run as another user,
    trace would have read (and made) a ledger the daemon never wrote.
    """
    if settings.type == "sqlite" and settings.path and not os.path.exists(settings.path):
        raise LedgerUnavailable(f"no ledger at {settings.path}: the daemon writes it there once it runs; run trace "
                                "as the daemon's user, or with its STATE_DIRECTORY or the config's state_dir")
