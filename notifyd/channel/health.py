"""Reasons a channel process should stop on its own: an orphaned process, a memory limit."""

from __future__ import annotations

import os
import resource
import sys
import time

from notifyd.channel import allocator

MEMORY_CHECK_INTERVAL = 5.0
REASON_PARENT_GONE = "parent_gone"
REASON_MEMORY_LIMIT = "memory_limit"


def resident_bytes() -> int:
    """This process's resident set size now (peak size where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


class ProcessChecks:
    """Cheap checks the poll loop makes every round; ``stop_reason()`` is None while all is well.

    Every ``MEMORY_CHECK_INTERVAL`` it also trims the heap (``allocator.trim``).
    """

    def __init__(self, *, parent_pid: int | None, memory_limit_mb: int | None) -> None:
        self._parent_pid = parent_pid
        self._limit = memory_limit_mb * 1024 * 1024 if memory_limit_mb else None
        self._next_memory_check = 0.0

    def stop_reason(self) -> str | None:
        """``parent_gone``, ``memory_limit`` or None."""
        if self._parent_pid is not None and os.getppid() != self._parent_pid:
            return REASON_PARENT_GONE
        if time.monotonic() >= self._next_memory_check:
            self._next_memory_check = time.monotonic() + MEMORY_CHECK_INTERVAL
            allocator.trim()  # first: the limit is about memory in use, not memory glibc kept
            if self._limit is not None and resident_bytes() > self._limit:
                return REASON_MEMORY_LIMIT
        return None
