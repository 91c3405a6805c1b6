"""The ``notifyd`` command line: ``main(argv) -> exit code``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from notifyd import __version__
from notifyd.exitcodes import ExitCode

# Each module defines ``register(subparsers)``, adding its sub-command with
# ``set_defaults(func=...)``; the function takes the parsed args and returns the exit code.
COMMAND_MODULES = (
    "notifyd.commands.validate",
    "notifyd.commands.run",
    "notifyd.commands.quickstart",
    "notifyd.commands.send",
    "notifyd.commands.dlq",
    "notifyd.commands.status",
    "notifyd.commands.topics",
    "notifyd.commands.trace",
    "notifyd.commands.worker",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="notifyd",
        description="Deliver notifications from Kafka by email, SMS, push, webhooks and chat.",
    )
    parser.add_argument("--version", action="version", version=f"notifyd {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:  # argparse exits 2 on usage errors, 0 on --help
        return int(exit_request.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    try:
        code = args.func(args)
        sys.stdout.flush()  # what is still buffered fails here, not in the interpreter's flush at exit
    except BrokenPipeError:
        return _output_closed()
    return code


def _output_closed() -> int:
    """Stop quietly when stdout's reader has gone (``notifyd status | head -1``), as a shell tool does."""
    # Python's own flush of stdout at exit would fail again and print "Exception ignored".
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return ExitCode.OUTPUT_CLOSED
