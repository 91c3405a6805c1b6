"""The prometheus-client multiprocess directory: setup, scraping and bounded growth.

Every process writes its series to files named ``<type>_<pid>.db``. When a channel
process dies, its live gauges are removed and its counters and histograms are folded
into one ``<type>_archive.db`` per type, so totals stay monotonic across restarts
while the directory holds a bounded number of files however often children restart.
"""

from __future__ import annotations

import glob
import math
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"
_ACCUMULATED_TYPES = ("counter", "histogram", "summary")
_HEADER_BYTES = 8  # an initialized file starts with its used size and padding


def prepare_directory(environ: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    """Choose and empty the directory; returns it and whether notifyd created it.

    Must run before prometheus_client is first imported in this process: the library
    picks its value storage at import time.
    """
    environ = os.environ if environ is None else environ
    configured = environ.get(ENV_VAR) or (
        os.path.join(environ["RUNTIME_DIRECTORY"], "metrics") if environ.get("RUNTIME_DIRECTORY") else None
    )
    if configured:
        directory = Path(configured)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):  # series of a previous run of the daemon
            stale.unlink()
        created = False
    else:
        directory = Path(tempfile.mkdtemp(prefix="notifyd-metrics-"))
        created = True
    os.environ[ENV_VAR] = str(directory)
    return directory, created


class MetricsDirectory:
    """Scrapes and compacts one multiprocess directory; the two never overlap."""

    def __init__(self, path: Path, *, remove_on_close: bool = False) -> None:
        self.path = path
        self._remove_on_close = remove_on_close
        self._lock = threading.Lock()

    def scrape(self) -> bytes:
        """The text exposition of every process's series together."""
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry()
        registry.register(_InitializedFiles(self.path))
        with self._lock:
            return generate_latest(registry)

    def process_died(self, pid: int) -> None:
        """Drop ``pid``'s live gauges and fold its counters into the archive."""
        from prometheus_client import multiprocess

        with self._lock:
            multiprocess.mark_process_dead(pid, str(self.path))
            for kind in _ACCUMULATED_TYPES:
                dead_file = self.path / f"{kind}_{pid}.db"
                if dead_file.exists():
                    _fold_into(dead_file, self.path / f"{kind}_archive.db")
                    dead_file.unlink()
            for leftover in glob.glob(str(self.path / f"gauge_*_{pid}.db")):
                os.remove(leftover)  # non-live gauge modes: notifyd uses none, but never leak

    def close(self) -> None:
        if self._remove_on_close:
            shutil.rmtree(self.path, ignore_errors=True)


class _InitializedFiles:
    """prometheus_client's MultiProcessCollector, minus files a process is still creating and removed gauges.

    A starting process's file is empty between its open() and its truncate() to the
    initial size; the library would fail the whole scrape reading it (struct.error).
    A gauge sample whose merged value is NaN is one a process removed
    (``notifyd.metrics.REMOVED``): the library has no removal in multiprocess mode.
    """

    def __init__(self, path: Path) -> None:
        self._path = path

    def collect(self):
        from prometheus_client.multiprocess import MultiProcessCollector

        files = [name for name in glob.glob(str(self._path / "*.db")) if _size(name) >= _HEADER_BYTES]
        for metric in MultiProcessCollector.merge(files, accumulate=True):
            if metric.type == "gauge":
                metric.samples = [s for s in metric.samples if not math.isnan(s.value)]
            yield metric


def _size(name: str) -> int:
    try:
        return os.path.getsize(name)
    except OSError:
        return 0


def _fold_into(source: Path, archive: Path) -> None:
    from prometheus_client.mmap_dict import MmapedDict

    target = MmapedDict(str(archive))
    try:
        for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(str(source)):
            current, _ = target.read_value(key)
            target.write_value(key, current + value, timestamp)
    finally:
        target.close()
