"""Every exit code of a notifyd process, in one place: the CLI's, the daemon's, a channel process's."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a notifyd process's exit status means."""

    OK = 0                  # done; a channel process: drained on request
    FAILED = 1              # the quickstart failed
    INVALID = 1             # validate-config and the tools: the config file is invalid
    CRASH = 1               # a channel process: anything unexpected; restarted with backoff
    USAGE = 2               # bad arguments, an unreadable file, an unknown channel
    BROKER_UNREACHABLE = 3  # no broker answered within --timeout
    BAD_INPUT = 4           # a notification given to a tool is not valid JSON or not a valid notification
    KAFKA_FAILED = 5        # the broker answered but refused or failed the operation
    NOT_FOUND = 6           # trace: the delivery ledger has no record of the notification
    RECYCLE = 75            # a channel process past its memory limit, drained: restarted at once, not a crash
    CONFIG = 78             # EX_CONFIG: the daemon cannot start a channel (config, handler import); no restart loop
    INTERRUPTED = 130       # Ctrl-C: the quickstart during start-up, an operator command (128 + SIGINT)
    OUTPUT_CLOSED = 141     # stdout's reader went away (| head): stopped quietly (128 + SIGPIPE, as a shell tool)


# The epilog of every operator command's --help.
EXIT_CODES_HELP = (
    "exit codes: 0 ok, 1 invalid config, 2 usage error / unreadable file / unknown channel, "
    "3 broker unreachable (after --timeout), 4 bad input, 5 Kafka operation failed"
)
