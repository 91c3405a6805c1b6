"""glibc's allocator settings in a channel process: harmless to call, and the memory check trims."""

from __future__ import annotations

import subprocess
import sys

from notifyd.channel import allocator
from notifyd.channel.health import ProcessChecks


def test_capping_arenas_and_trimming_leave_a_process_working() -> None:
    code = ("from notifyd.channel import allocator; allocator.cap_arenas(); allocator.trim();"
            "import threading; t = threading.Thread(target=lambda: bytearray(10**6)); t.start(); t.join();"
            "allocator.trim(); print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr


def test_the_memory_check_trims_even_without_a_limit(monkeypatch) -> None:
    trims = []
    monkeypatch.setattr(allocator, "trim", lambda: trims.append(1))
    checks = ProcessChecks(parent_pid=None, memory_limit_mb=None)
    assert checks.stop_reason() is None
    assert checks.stop_reason() is None  # within the interval: no second trim
    assert trims == [1]


MAPPED_AFTER_A_LARGER_FREE = """
import ctypes
from notifyd.channel import allocator

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
if FIX:
    allocator.fix_mmap_threshold()
libc.free(libc.malloc(4 << 20))  # glibc's own rule: the threshold grows to 4 MiB here
before = libc.mallinfo2().hblkhd
block = libc.malloc(1 << 20)
print(libc.mallinfo2().hblkhd - before >= 1 << 20)
"""


def test_a_fixed_mmap_threshold_keeps_a_fetch_sized_block_mapped_after_a_larger_one_was_freed() -> None:
    # The heap would keep it once freed (until a trim); mapped, it goes back to the OS with its free.
    for fix, mapped in ((False, "False"), (True, "True")):
        done = subprocess.run([sys.executable, "-c", f"FIX = {fix}\n{MAPPED_AFTER_A_LARGER_FREE}"],
                              capture_output=True, text=True, timeout=60, check=False)
        assert (done.returncode, done.stdout.strip()) == (0, mapped), (fix, done.stderr)
