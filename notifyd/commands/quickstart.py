"""``notifyd quickstart``: the embedded default, for trying notifyd on a fresh machine."""

from __future__ import annotations

import argparse
import os
import sys

from notifyd.config import check_config
from notifyd.devbroker import BrokerUnavailable, EmbeddedBroker

DEFAULT_QUICKSTART_CONFIG = "config/quickstart.yaml"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "quickstart",
        help="start an embedded broker, run the daemon on the example config and send samples",
    )
    parser.add_argument("--config", default=DEFAULT_QUICKSTART_CONFIG)
    parser.add_argument("--port", type=int, default=0, help="broker port (default: a free one)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        broker = EmbeddedBroker(args.port or None).start()
    except BrokerUnavailable as exc:
        print(f"notifyd quickstart: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"embedded broker listening on {broker.bootstrap_servers}")
        environ = {**os.environ, "NOTIFYD_BOOTSTRAP": broker.bootstrap_servers}
        config, findings = check_config(args.config, environ)
        for finding in findings:
            print(finding, file=sys.stderr)
        if config is None:
            return 1
        print(f"{args.config}: valid ({len(config.channels)} channels)")
        return 0
    finally:
        broker.stop()
