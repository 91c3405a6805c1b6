"""A stalled channel process's thread stacks, asked for before it is killed.

A channel process whose poll loop stops heart-beating is killed and restarted; without
its stacks nobody learns where it was stuck. As gunicorn does for a stuck worker, the
supervisor first sends SIGUSR1, on which the child's ``faulthandler`` writes every
thread's stack to a file the supervisor named; the supervisor waits a bounded time for
the dump to be complete (its size stops changing), logs it, and only then kills.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

DUMP_SIGNAL = signal.SIGUSR1
DUMP_WAIT = 2.0          # seconds the supervisor waits for a dump before killing without one
MAX_DUMP_BYTES = 64 * 1024


def stack_file(directory: Path | None, channel: str, index: int) -> str | None:
    """Where member ``index`` of ``channel`` writes its stacks (None: no dumps)."""
    return str(directory / f"stacks-{channel}-{index}.txt") if directory is not None else None


@dataclass
class StackDump:
    """One requested dump: when it was asked for and how large the file was at the last look."""

    path: str
    requested_at: float
    last_size: int = -1
    killed: bool = False

    @classmethod
    def request(cls, path: str, pid: int) -> StackDump:
        """Empty the file and signal the process to fill it."""
        open(path, "w").close()
        try:
            os.kill(pid, DUMP_SIGNAL)
        except ProcessLookupError:
            pass  # gone meanwhile; the reaper sees it
        return cls(path, time.monotonic())

    def ready(self, now: float) -> bool:
        """Whether the dump is complete (its size unchanged since the last look) or waited for long enough."""
        size = _size(self.path)
        complete, self.last_size = size > 0 and size == self.last_size, size
        return complete or now - self.requested_at >= DUMP_WAIT

    def read(self) -> str:
        """The dump's text (its first ``MAX_DUMP_BYTES``), or a note that there is none."""
        try:
            with open(self.path, "rb") as file:
                text = file.read(MAX_DUMP_BYTES).decode("utf-8", errors="replace")
        except OSError as exc:
            return f"(no stack dump: {exc})"
        return text or f"(no stack dump within {DUMP_WAIT} s)"


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
