"""``notifyd run`` as the benchmark drives it: config, start, READY=1, /metrics, RSS, stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from notifyd.tools.devbroker import free_port

ROOT = Path(__file__).resolve().parent.parent
# librdkafka's default session timeout makes a group join take ~23 s on Tansu (shared/BROKER.md).
FAST_GROUP = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}
SAMPLE_PERIOD = 0.05  # seconds between /metrics samples while a rate is measured


def write_config(path: Path, *, bootstrap: str, channels: dict[str, Any], ledger: bool | None = False) -> Path:
    """A config file for ``channels``, metrics on the port the daemon is given.

    The delivery ledger (on by default in notifyd) is off here, so the cases measure what
    they measured before it was a default; case 6 (``bench/ledger.py``) turns it on per channel.
    ``ledger=None`` leaves the top-level key out, for channels that say it themselves in a
    tree from before it took ``false`` (case 9, ``bench/nocost.py``).
    """
    data = {
        "kafka": {"bootstrap_servers": bootstrap, "config": {**FAST_GROUP, "auto.commit.interval.ms": 1000}},
        "metrics": {"listen": "127.0.0.1:${NOTIFYD_METRICS_PORT}"},
        "logging": {"level": "info"},
        "shutdown_timeout": 10,
        "ledger": ledger,
        "channels": channels,
    }
    if ledger is None:
        del data["ledger"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Daemon:
    """One supervisor process; stderr goes to a log file, sd_notify to a socket of ours.

    ``root`` is the tree whose notifyd runs (its working directory and first on PYTHONPATH):
    this one, or another checkout of it (case 9, ``bench/nocost.py``).
    """

    def __init__(self, config: Path, workdir: Path, *, root: Path = ROOT) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.config, self.log_path, self.root = config, workdir / "daemon.log", root
        self.metrics_port = free_port()
        self._notify_path = workdir / "notify.sock"
        self._notify_path.unlink(missing_ok=True)
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(str(self._notify_path))
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> Daemon:
        env = {**os.environ, "NOTIFY_SOCKET": str(self._notify_path), "NOTIFYD_METRICS_PORT": str(self.metrics_port),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(self.root), os.environ.get("PYTHONPATH")])),
               # A state directory of the run's own: never the host's /var/lib/notifyd or ~/.local/state.
               "STATE_DIRECTORY": str(self.log_path.parent / "state")}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with open(self.log_path, "ab") as log:
            self.started_at = time.monotonic()
            self.process = subprocess.Popen([sys.executable, "-m", "notifyd", "run", "--config", str(self.config)],
                                            cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT)
        return self

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Wait for ``READY=1``; returns the seconds since ``start``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if self.process.poll() is not None:
                raise RuntimeError(f"notifyd exited with {self.process.returncode}; see {self.log_path}")
            self._notify.settimeout(min(left, 0.5))
            try:
                datagram = self._notify.recv(4096).decode()
            except TimeoutError:
                continue
            if "READY=1" in datagram.splitlines():
                return time.monotonic() - self.started_at
        raise TimeoutError(f"no READY=1 within {timeout} s; see {self.log_path}")

    def delivered(self) -> float:
        """``notifyd_notifications_delivered_total`` summed over channels."""
        return self.metric("notifyd_notifications_delivered_total")

    def metric(self, name: str, **labels: str) -> float:
        """The samples of ``name`` whose labels include ``labels``, summed (one ``/metrics`` scrape)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
                   if sample.name == name and labels.items() <= sample.labels.items())

    def events(self, name: str) -> list[dict[str, Any]]:
        """Log lines (JSON objects) whose ``event`` is ``name``, oldest first."""
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{") and f'"{name}"' in line:
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if event.get("event") == name:
                    found.append(event)
        return found

    def channel_pids(self) -> list[int]:
        """PIDs of the channel processes started so far."""
        return [event["pid"] for event in self.events("channel process started")]

    def assigned(self, topic: str | None = None) -> set[str]:
        """Partitions the daemon's channel processes own now, as ``topic[n]``: of ``topic`` only, when given.

        Without a topic the channels' delay-tier partitions count too: their consumers log
        their assignments with the same event.
        """
        owned: set[str] = set()
        for line in self.log_path.read_text(errors="replace").splitlines():
            if '"partitions assigned"' in line or '"partitions revoked"' in line or '"partitions lost"' in line:
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a killed process
                    continue
                names = set(event.get("partitions", []))
                owned = owned | names if event["event"] == "partitions assigned" else owned - names
        return owned if topic is None else {name for name in owned if name.startswith(f"{topic}[")}

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL if it does not drain in time."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._notify.close()
        self._notify_path.unlink(missing_ok=True)


def watch(daemons: list[Daemon], total: int, *, timeout: float, probe: Any = None, baseline: float = 0.0,
          period: float = SAMPLE_PERIOD) -> list[tuple[float, float]]:
    """Poll the daemons' delivered counters until ``total`` more than ``baseline``; ``(time, count)`` samples.

    ``probe`` (if given) is called at every sample, e.g. to record memory under load.
    Each sample is a ``/metrics`` scrape, which costs the supervisor CPU; a case that
    only waits for the end (not a rate) passes a longer ``period``.
    """
    samples: list[tuple[float, float]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = sum(daemon.delivered() for daemon in daemons) - baseline
        samples.append((time.monotonic(), count))
        if probe is not None:
            probe()
        if count >= total:
            return samples
        time.sleep(period)  # the rate comes from sample times, not from this
    raise TimeoutError(f"{samples[-1][1] if samples else 0:.0f} of {total} delivered within {timeout} s")
