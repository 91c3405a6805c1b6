"""glibc's allocator in a channel process: two arenas, and freed memory handed back to the OS.

glibc gives each thread that allocates an arena of its own (up to eight a core) and keeps
freed memory mapped, and a channel process allocates from the poll loop, librdkafka's
threads and the handler pool. With two arenas and a trim at each memory check, a channel at
concurrency 1,000 stayed ~2 MiB smaller (issue 23), and ``memory_limit_mb`` judges memory
in use rather than memory glibc kept. Where the C library is not glibc, all of it does nothing.

glibc also raises its mmap threshold to the size of each mmapped block freed, so after
librdkafka's first fetch buffer (up to 1 MiB) the later ones come from the heap, where
freed ones stay until a trim; a fixed threshold keeps them mmapped, unmapped when freed.
"""

from __future__ import annotations

import ctypes
import os
from functools import cache
from typing import Any

M_ARENA_MAX = -8  # mallopt's parameter numbers, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
ARENAS = 2
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value, kept: setting it turns its growth off


@cache
def _glibc() -> Any:
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None  # glibc's own


def cap_arenas(arenas: int = ARENAS) -> None:
    """Have every thread share ``arenas`` malloc arenas; call before any thread starts.

    A ``MALLOC_ARENA_MAX`` set in the environment wins.
    """
    _mallopt(M_ARENA_MAX, arenas, unless="MALLOC_ARENA_MAX")


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> None:
    """Serve every block of ``threshold`` bytes or more by mmap, as glibc does until its first such free.

    A ``MALLOC_MMAP_THRESHOLD_`` set in the environment wins.
    """
    _mallopt(M_MMAP_THRESHOLD, threshold, unless="MALLOC_MMAP_THRESHOLD_")


def _mallopt(parameter: int, value: int, *, unless: str) -> None:
    """Set one of glibc's malloc parameters, unless the environment variable ``unless`` already did."""
    libc = _glibc()
    if libc is not None and unless not in os.environ:
        libc.mallopt(parameter, value)


def trim() -> None:
    """Hand the free memory of every arena back to the OS."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
