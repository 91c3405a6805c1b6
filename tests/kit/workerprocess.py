"""``notifyd worker`` as a real process (what the supervisor starts), for tests that SIGKILL it."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from notifyd.exitcodes import ExitCode

ROOT = Path(__file__).resolve().parents[2]


def start_worker(config: Path, log: Path, channel: str = "c") -> subprocess.Popen[bytes]:
    """One channel process of ``config``; its output appended to ``log``."""
    with open(log, "ab") as output:
        return subprocess.Popen([sys.executable, "-m", "notifyd", "worker", "--config", str(config),
                                 "--channel", channel], cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL it and check that the signal is what ended it."""
    process.send_signal(signal.SIGKILL)
    assert process.wait(10) == -signal.SIGKILL


def finish(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM it and check that it drained and exited cleanly."""
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == ExitCode.OK
