"""``notifyd validate-config PATH``: report every problem of a config file."""

from __future__ import annotations

import argparse
import json
import sys

from notifyd.config.loading import check_config
from notifyd.exitcodes import ExitCode


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate-config",
        help="check a config file and report every problem as FILE:LINE:COL",
        description="Exit 0 if valid, 1 if invalid, 2 on a usage error or an unreadable file.",
    )
    parser.add_argument("path", help="the YAML config file")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        config, findings = check_config(args.path)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"notifyd: cannot read {args.path}: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    if args.format == "json":
        report = {"file": args.path, "valid": config is not None, "errors": [f.as_dict() for f in findings]}
        print(json.dumps(report, indent=2))
    else:
        for finding in findings:
            print(finding)
        if config is not None:
            count = len(config.channels)
            print(f"{args.path}: valid ({count} channel{'' if count == 1 else 's'})")
        else:
            print(f"{args.path}: {len(findings)} problem(s)", file=sys.stderr)
    return ExitCode.OK if config is not None else ExitCode.INVALID
