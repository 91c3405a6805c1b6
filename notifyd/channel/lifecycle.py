"""What a channel process and the supervisor tell each other.

A channel process reports events over a one-way pipe (``multiprocessing`` Connection):
``ready`` once its consumer is subscribed and polling, ``assigned`` after each
assignment (``partitions``: how many it owns now, 0 when the group settled with none
for it or none of its topics exists, then named in ``missing_topics``; the supervisor's
readiness waits for the first), ``heartbeat`` about every second
from its poll loop (the proof it is not stuck; ``ledger_error`` says why its delivery
ledger's storage failed, if it did), ``broker_down`` / ``broker_up`` when it
loses and regains every broker, and ``draining`` when it starts to stop. It ends with one
of the ``notifyd.exitcodes`` codes; the supervisor decides from the code whether to restart it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

HEARTBEAT_INTERVAL = 1.0

EVENT_READY = "ready"
EVENT_ASSIGNED = "assigned"
EVENT_HEARTBEAT = "heartbeat"
EVENT_BROKER_DOWN = "broker_down"
EVENT_BROKER_UP = "broker_up"
EVENT_DRAINING = "draining"


@dataclass(frozen=True)
class StatusEvent:
    """One event from a channel process."""

    name: str
    channel: str
    member: int
    pid: int
    at: float = field(default_factory=time.monotonic)
    fields: dict[str, Any] = field(default_factory=dict)


class StatusReporter:
    """The channel-process side of the pipe; never raises (a gone parent is not an error)."""

    def __init__(self, connection: Connection | None, *, channel: str, member: int, pid: int) -> None:
        self._connection = connection
        self._channel, self._member, self._pid = channel, member, pid
        self._last_heartbeat = 0.0
        # Rebalance and error callbacks send from the consumer's I/O thread, heartbeats
        # from the loop's: two unlocked sends could interleave their bytes on the pipe.
        self._lock = threading.Lock()
        self.ledger_problem: Callable[[], str | None] = lambda: None  # the ledger's, once it is open

    def send(self, name: str, **fields: Any) -> None:
        connection = self._connection
        if connection is None:
            return
        try:
            with self._lock:
                connection.send(StatusEvent(name, self._channel, self._member, self._pid, fields=fields))
        except (OSError, ValueError, EOFError):
            self._connection = None

    def heartbeat(self, **fields: Any) -> None:
        """Send a heartbeat if the last one is older than ``HEARTBEAT_INTERVAL``."""
        now = time.monotonic()
        if now - self._last_heartbeat >= HEARTBEAT_INTERVAL:
            self._last_heartbeat = now
            self.send(EVENT_HEARTBEAT, ledger_error=self.ledger_problem(), **fields)
