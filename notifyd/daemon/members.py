"""One channel process as the supervisor sees it: spawning, stopping, its last news."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from notifyd.config.settings import ChannelSettings, Config
from notifyd.daemon.restarts import RestartState
from notifyd.daemon.stalls import StackDump

# The supervisor's own signals stay blocked while a child starts, so a signal that
# arrives mid-spawn is neither run by the child (which resets its handlers) nor lost.
_BLOCKED_WHILE_SPAWNING = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD}


@dataclass
class Member:
    """One process (group member) of a channel, alive or waiting to be started."""

    channel: str
    index: int
    settings: ChannelSettings
    restart: RestartState = field(default_factory=RestartState)
    process: BaseProcess | None = None
    connection: Connection | None = None
    started_at: float = 0.0
    last_heartbeat: float = 0.0
    ready: bool = False
    partitions: int | None = None        # owned after the last assignment; None until the first
    missing_topics: tuple[str, ...] = ()  # subscribed but absent, when it owns nothing
    broker_down: bool = False
    ledger_error: str | None = None      # why its delivery ledger failed, from its last heartbeat
    stop_deadline: float | None = None   # set once asked to drain; SIGKILL after it
    restart_at: float | None = None      # set while waiting to be (re)started
    retire: bool = False                 # do not restart after it exits
    down_reason: str | None = None
    stack_file: str | None = None        # where it dumps its stacks on SIGUSR1
    stall: StackDump | None = None       # the dump asked for once its heartbeat stopped

    @property
    def name(self) -> str:
        return f"{self.channel}[{self.index}]"

    @property
    def alive(self) -> bool:
        return self.process is not None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def spawn(self, config: Config) -> None:
        """Start the channel process with the ``spawn`` method (no inherited Kafka state)."""
        from notifyd.channel.worker import child_main

        context = multiprocessing.get_context("spawn")
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(
            target=child_main,
            args=(config, self.channel, self.index, writer, self.stack_file),
            name=f"notifyd:{self.name}",
        )
        previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED_WHILE_SPAWNING)
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        writer.close()  # only the child writes; our copy would hide its EOF
        now = time.monotonic()
        self.process, self.connection = process, reader
        self.started_at = self.last_heartbeat = now
        self.ready = self.broker_down = False
        self.ledger_error = None
        self.partitions = None
        self.stop_deadline = self.restart_at = None
        self.down_reason = None
        self.stall = None

    def request_stop(self, *, deadline: float) -> None:
        """Ask the process to drain (SIGTERM); the supervisor kills it after ``deadline``."""
        if self.process is None or self.stop_deadline is not None:
            return
        self.stop_deadline = deadline
        _signal(self.process, signal.SIGTERM)

    def kill(self) -> None:
        if self.process is not None:
            _signal(self.process, signal.SIGKILL)

    def reap(self) -> int | None:
        """The exit code if the process has ended (negative: killed by that signal)."""
        if self.process is None:
            return None
        self.process.join(0)
        code = self.process.exitcode
        if code is None:
            return None
        if self.connection is not None:
            self.connection.close()
        self.process.close()
        self.process, self.connection = None, None
        self.ready, self.partitions = False, None
        return code


def _signal(process: BaseProcess, signum: int) -> None:
    try:
        os.kill(process.pid, signum)
    except (ProcessLookupError, TypeError):
        pass  # already gone; reap() will see it
