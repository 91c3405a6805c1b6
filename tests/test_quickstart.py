"""The README's run command: embedded broker, daemon, samples delivered."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.kafka


def test_quickstart_delivers_its_samples_and_stops_cleanly() -> None:
    result = subprocess.run([sys.executable, "-m", "notifyd", "quickstart", "--exit", "--samples", "2"],
                            cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "==> 4 of 4 sample notifications delivered" in result.stdout
    assert '"event": "notification delivered"' in result.stderr
    assert '"event": "supervisor stopped"' in result.stderr
