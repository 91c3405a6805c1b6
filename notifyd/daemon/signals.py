"""The supervisor's signals: handlers that only record, and a pipe that wakes the main loop.

The handlers do no work (no logging, no locks): they append the signal number, and
``signal.set_wakeup_fd`` writes a byte that ends the main loop's ``wait``. The loop then
takes the recorded signals and acts on them.
"""

from __future__ import annotations

import os
import signal
from collections import deque

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)


class SignalInbox:
    """Signals received and not yet acted on; ``fileno`` becomes readable when one arrives."""

    def __init__(self) -> None:
        self._pending: deque[int] = deque()
        self._reader, self._writer = -1, -1

    def install(self) -> None:
        """Open the wake-up pipe and record ``HANDLED`` signals from now on."""
        self._reader, self._writer = os.pipe()
        os.set_blocking(self._reader, False)
        os.set_blocking(self._writer, False)
        signal.set_wakeup_fd(self._writer, warn_on_full_buffer=False)
        for signum in HANDLED:
            signal.signal(signum, self._record)

    def fileno(self) -> int:
        return self._reader

    def _record(self, signum: int, frame: object) -> None:
        self._pending.append(signum)

    def clear_wakeups(self) -> None:
        """Empty the pipe once ``wait`` has returned for it."""
        try:
            while os.read(self._reader, 512):
                pass
        except BlockingIOError:
            pass

    def take(self) -> list[int]:
        """The recorded signals, oldest first, forgotten once taken."""
        taken = []
        while self._pending:
            taken.append(self._pending.popleft())
        return taken

    def close(self) -> None:
        signal.set_wakeup_fd(-1)
        os.close(self._reader)
        os.close(self._writer)
