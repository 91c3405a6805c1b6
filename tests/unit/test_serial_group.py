"""The suite's serial group holds: ``make test``'s xdist workers never run two serial tests at once.

It broke twice without a failure anywhere: the group mark was added after xdist had read
the marks, and pytest 9.2 ignores the node id xdist rewrites (pytest-xdist#1386). The
reliability scenarios then ran on both workers at once, and the default-listener test could
take the metrics port between the quickstart's check and its daemon's bind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERIAL_TEST = "tests/reliability/test_reload_storm.py::test_a_scrape_while_a_process_creates_its_metrics_file_succeeds"
OTHER_TEST = "tests/unit/test_redaction.py::test_whole_tokens_only"


def test_make_tests_worker_split_keeps_the_serial_tests_in_their_group(tmp_path: Path) -> None:
    environment = {**os.environ, "NOTIFYD_RESULTS_DIR": str(tmp_path / "results")}
    run = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v", "-p",
                          "no:cacheprovider", f"--basetemp={tmp_path / 'base'}", SERIAL_TEST, OTHER_TEST],
                         cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
    assert f"{SERIAL_TEST}@serial" in run.stdout, run.stdout[-3000:]
    assert f"{OTHER_TEST}@" not in run.stdout
