"""``notifyd trace ID``: what the delivery ledger knows of one notification, with times."""

from __future__ import annotations

import argparse
import json
import sys

from notifyd.config.findings import ConfigError
from notifyd.config.loading import load_config
from notifyd.config.settings import DEFAULT_CONFIG_PATH, Config, LedgerSettings
from notifyd.exitcodes import ExitCode
from notifyd.ledger.history import Step, history, render
from notifyd.ledger.opening import LedgerUnavailable, open_store


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "trace",
        help="show a notification's history from the delivery ledger",
        description="Claimed, failed attempts with their errors, duplicates suppressed and the outcome (sent with "
        "the provider's id, dead-lettered or skipped). Exit 0 if found, 6 if the ledger has no record of it, "
        "1 on an invalid config, 2 if no channel has a ledger or it cannot be opened.",
    )
    parser.add_argument("id", help="the notification id")
    parser.add_argument("--config", default=DEFAULT_CONFIG_PATH, help=f"default: {DEFAULT_CONFIG_PATH}")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config, writes_state=False)
    except ConfigError as exc:
        print(f"notifyd: {exc}", file=sys.stderr)
        return ExitCode.INVALID
    except OSError as exc:
        print(f"notifyd: cannot read {args.config}: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    ledgers = _ledgers(config)
    if not ledgers:
        print("notifyd: no channel of this config uses a delivery ledger", file=sys.stderr)
        return ExitCode.USAGE
    try:
        steps = _steps(ledgers, args.id)
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


def _ledgers(config: Config) -> list[LedgerSettings]:
    """The distinct ledgers the config's channels use (usually one)."""
    found = [channel.ledger for channel in config.channels.values() if channel.ledger is not None]
    return list(dict.fromkeys(found))


def _steps(ledgers: list[LedgerSettings], notification_id: str) -> list[Step]:
    records, events = [], []
    for settings in ledgers:
        store = open_store(settings)
        try:
            found_records, found_events = store.trace(notification_id)
        finally:
            store.close()
        records += found_records
        events += found_events
    return history(records, events)
