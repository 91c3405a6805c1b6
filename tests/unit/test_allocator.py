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
