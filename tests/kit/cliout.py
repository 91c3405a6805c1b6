"""What an operator command prints when its broker does not answer, read from a process of its own."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.kit.daemon import ROOT


def unreachable_run(*argv: str) -> subprocess.CompletedProcess[str]:
    """``notifyd ARGV`` as its own process, which must exit 3 within 10 s.

    A process of its own, because librdkafka writes its lines to file descriptor 2: in the
    test process, a client left over from another test could write there too.
    """
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "notifyd", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 3, done.stderr
    assert time.monotonic() - started < 10
    return done


def assert_one_line_saying_why(err: str) -> None:
    """One line, ending with the cause librdkafka saw; none of librdkafka's own ``%3|…|FAIL|…`` lines."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "broker unreachable" in lines[0] and "Connection refused" in lines[0], err
